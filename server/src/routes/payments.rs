//! Payment files for the payment switch, and its results.
//!
//! A cash manager exports a program's payables in a batch: bank accounts as an ISO 20022
//! `pain.001.001.09` credit transfer initiation, mobile money wallets as a CSV for bulk
//! payment. A payable goes into one batch only (it becomes `exported`); putting it in another
//! needs an explicit, audited re-issue. A batch is idempotent by the caller's key and its file
//! is kept, so downloading it again gives the same bytes. The switch's answer, an ISO 20022
//! `pain.002` status report or a CSV, marks payables `paid` or `failed`, and their claims
//! follow.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use evoucher_core::payable::Account;
use evoucher_core::voucher::currency_exponent;
use serde::Deserialize;
use sqlx::Row;

use super::{body_limit, placeholders, MAX_JSON};
use crate::audit::{self, Event};
use crate::auth::{need, Perm::*, Principal, Scope};
use crate::error::ApiJson;
use crate::limits::ClientAddr;
use crate::{now, ApiError, AppState};

/// The largest result file taken (a pain.002 of many thousand transactions).
pub const MAX_RESULTS: usize = 16 * 1024 * 1024;
/// The namespace of the payment files written.
pub const PAIN_001: &str = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/payments/batches",
            need(ReadClaims, Scope::Any, get(batches)).merge(need(
                ManagePayments,
                Scope::Any,
                body_limit(post(new_batch), MAX_JSON),
            )),
        )
        .route(
            "/api/v1/payments/batches/{id}/file",
            need(ManagePayments, Scope::Any, get(file)),
        )
        .route(
            "/api/v1/payments/results",
            need(
                ManagePayments,
                Scope::Any,
                body_limit(post(results), MAX_RESULTS),
            ),
        )
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::BadRequest(m.into())
}

/// The account a program pays from: the debtor of its payment files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payer {
    /// The paying organisation's name.
    pub name: String,
    /// Its account: an IBAN or another account number.
    pub account: String,
    /// Its bank's BIC, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bic: Option<String>,
}

impl Payer {
    pub fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.chars().count() > 140 {
            return Err("payer.name: 1 to 140 characters".into());
        }
        if self.account.trim().is_empty()
            || self.account.len() > 34
            || !self.account.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(
                "payer.account: an IBAN or account number, 1 to 34 letters and digits".into(),
            );
        }
        if let Some(b) = &self.bic {
            if !((b.len() == 8 || b.len() == 11)
                && b.bytes()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
            {
                return Err("payer.bic: 8 or 11 letters and digits".into());
            }
        }
        Ok(())
    }
}

/// `amount` minor units as a decimal of major units (`2500`, KES → `25.00`).
pub fn decimal(amount: i64, currency: &str) -> String {
    let e = currency_exponent(currency);
    if e == 0 {
        return amount.to_string();
    }
    let d = 10i64.pow(e);
    format!("{}.{:0width$}", amount / d, amount % d, width = e as usize)
}

/// XML text with the five special characters escaped and control characters dropped.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// At most `n` characters (ISO 20022 text fields are `MaxNText`).
fn max(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// An account identification: an IBAN when it is one, else another id.
fn account_id(number: &str) -> String {
    let compact: String = number.chars().filter(|c| !c.is_whitespace()).collect();
    let iban = compact.len() >= 15
        && compact.len() <= 34
        && compact[..2].bytes().all(|b| b.is_ascii_uppercase())
        && compact[2..4].bytes().all(|b| b.is_ascii_digit())
        && compact[4..].bytes().all(|b| b.is_ascii_alphanumeric());
    if iban {
        format!("<Id><IBAN>{}</IBAN></Id>", xml(&compact))
    } else {
        format!("<Id><Othr><Id>{}</Id></Othr></Id>", xml(&max(&compact, 34)))
    }
}

fn agent(bic: Option<&str>, name: Option<&str>) -> String {
    match (bic, name) {
        (Some(b), _) => format!("<FinInstnId><BICFI>{}</BICFI></FinInstnId>", xml(b)),
        (None, Some(n)) => format!("<FinInstnId><Nm>{}</Nm></FinInstnId>", xml(&max(n, 140))),
        (None, None) => "<FinInstnId><Othr><Id>NOTPROVIDED</Id></Othr></FinInstnId>".into(),
    }
}

/// One payable in a batch.
pub struct Line {
    pub id: String,
    pub claim: String,
    pub amount: i64,
    pub currency: String,
    pub account: Account,
    pub payee_name: String,
}

/// A pain.001.001.09 credit transfer initiation of bank payables.
pub fn pain_001(batch: &str, t: i64, program: &str, payer: &Payer, lines: &[Line]) -> String {
    let currency = lines.first().map(|l| l.currency.as_str()).unwrap_or("XXX");
    let total: i64 = lines.iter().map(|l| l.amount).sum();
    let when = evoucher_core::time::rfc3339(t);
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"{PAIN_001}\">\n<CstmrCdtTrfInitn>\n<GrpHdr><MsgId>{}</MsgId><CreDtTm>{when}</CreDtTm><NbOfTxs>{}</NbOfTxs><CtrlSum>{}</CtrlSum><InitgPty><Nm>{}</Nm></InitgPty></GrpHdr>\n<PmtInf><PmtInfId>{}</PmtInfId><PmtMtd>TRF</PmtMtd><BtchBookg>false</BtchBookg><NbOfTxs>{}</NbOfTxs><CtrlSum>{}</CtrlSum><ReqdExctnDt><Dt>{}</Dt></ReqdExctnDt><Dbtr><Nm>{}</Nm></Dbtr><DbtrAcct>{}</DbtrAcct><DbtrAgt>{}</DbtrAgt><ChrgBr>SLEV</ChrgBr>\n",
        xml(batch),
        lines.len(),
        decimal(total, currency),
        xml(&max(&payer.name, 140)),
        xml(batch),
        lines.len(),
        decimal(total, currency),
        &when[..10],
        xml(&max(&payer.name, 140)),
        account_id(&payer.account),
        agent(payer.bic.as_deref(), None),
    );
    for l in lines {
        let Account::Bank {
            holder,
            number,
            bank,
            bic,
        } = &l.account
        else {
            continue;
        };
        x.push_str(&format!(
            "<CdtTrfTxInf><PmtId><InstrId>{}</InstrId><EndToEndId>{}</EndToEndId></PmtId><Amt><InstdAmt Ccy=\"{}\">{}</InstdAmt></Amt><CdtrAgt>{}</CdtrAgt><Cdtr><Nm>{}</Nm></Cdtr><CdtrAcct>{}</CdtrAcct><RmtInf><Ustrd>{}</Ustrd></RmtInf></CdtTrfTxInf>\n",
            xml(&l.id),
            xml(&l.id),
            xml(&l.currency),
            decimal(l.amount, &l.currency),
            agent(bic.as_deref(), Some(bank)),
            xml(&max(holder, 140)),
            account_id(number),
            xml(&max(&format!("{program} claim {} payable {}", l.claim, l.id), 140)),
        ));
    }
    x.push_str("</PmtInf>\n</CstmrCdtTrfInitn>\n</Document>\n");
    x
}

/// A CSV for bulk mobile money payment.
pub fn mobile_csv(program: &str, lines: &[Line]) -> String {
    let mut out = String::from("payable,msisdn,operator,holder,amount,currency,reference\n");
    for l in lines {
        let Account::Mobile {
            holder,
            msisdn,
            operator,
        } = &l.account
        else {
            continue;
        };
        let cells = [
            l.id.clone(),
            msisdn.clone(),
            operator.clone(),
            holder.clone(),
            decimal(l.amount, &l.currency),
            l.currency.clone(),
            format!("{program} claim {}", l.claim),
        ];
        let row: Vec<String> = cells
            .iter()
            .map(|c| {
                let c = evoucher_core::roster::safe_cell(c);
                if c.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", c.replace('"', "\"\""))
                } else {
                    c.into_owned()
                }
            })
            .collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewBatch {
    /// `pain.001` (bank accounts) or `csv` (mobile money).
    pub format: String,
    pub program: String,
    /// These payables (default: every one of the program ready for this format).
    #[serde(default)]
    pub payables: Option<Vec<String>>,
    /// The caller's key: asking again with it gives the same batch.
    #[serde(default)]
    pub key: Option<String>,
}

pub(crate) async fn make_batch(
    s: &AppState,
    who: &Principal,
    client: ClientAddr,
    b: NewBatch,
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let kind = match b.format.as_str() {
        "pain.001" => "bank",
        "csv" => "mobile",
        _ => {
            return Err(bad(
                "format: pain.001 (bank accounts) or csv (mobile money)",
            ))
        }
    };
    if let Some(k) = &b.key {
        if k.is_empty() || k.len() > 64 {
            return Err(bad("key: 1 to 64 characters"));
        }
    }
    if let Some(limit) = who.program_limit() {
        if !limit.contains(&b.program) {
            return Err(ApiError::Forbidden(
                "your account is not for this program".into(),
            ));
        }
    }
    let mut tx = s.begin_write().await?;
    if let Some(k) = &b.key {
        if let Some(r) = sqlx::query("SELECT id FROM payment_batches WHERE client_key = $1")
            .bind(k)
            .fetch_optional(&mut *tx)
            .await?
        {
            let id: String = r.try_get("id")?;
            drop(tx);
            return Ok((StatusCode::OK, batch_json(s, &id).await?));
        }
    }
    let prog = sqlx::query("SELECT payer FROM programs WHERE id = $1")
        .bind(&b.program)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound("no such program"))?;
    let payer: Option<Payer> = prog
        .try_get::<Option<String>, _>("payer")?
        .and_then(|p| serde_json::from_str(&p).ok());
    let payer = match (kind, payer) {
        ("bank", None) => {
            return Err(bad(
                "the program has no paying account (payer): the program manager sets it before bank payments can be exported",
            ))
        }
        (_, p) => p,
    };
    let mut sql = "SELECT id, claim_id, amount, currency, text FROM payables WHERE program_id = $1 AND account_kind = $2 AND state = 'payable'".to_owned();
    let listed = b.payables.clone().unwrap_or_default();
    if !listed.is_empty() {
        if listed.len() > 10_000 {
            return Err(bad("payables: at most 10,000 in one batch"));
        }
        sql.push_str(&format!(" AND id IN ({})", placeholders(3, listed.len())));
    }
    sql.push_str(" ORDER BY issued_at, id");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&b.program)
        .bind(kind);
    for id in &listed {
        q = q.bind(id);
    }
    let rows = q.fetch_all(&mut *tx).await?;
    if !listed.is_empty() && rows.len() != listed.len() {
        return Err(ApiError::Conflict(format!(
            "{} of the listed payables are not ready for a {} batch of this program (another state, program or kind of account)",
            listed.len() - rows.len(),
            b.format
        )));
    }
    if rows.is_empty() {
        return Err(bad(format!(
            "nothing to pay: no payable of {} with a {kind} account is waiting",
            b.program
        )));
    }
    let trust = super::payables::trust_in(&mut tx).await?;
    let mut lines = Vec::with_capacity(rows.len());
    for r in &rows {
        // What goes to the switch is read from the signed payable, not from loose columns.
        let p = super::payables::read_with(&trust, &r.try_get::<String, _>("text")?)?;
        if p.amount as i64 != r.try_get::<i64, _>("amount")?
            || p.id != r.try_get::<String, _>("id")?
        {
            return Err(ApiError::Internal(
                "a payable's row and signed text differ".into(),
            ));
        }
        lines.push(Line {
            id: p.id.clone(),
            claim: p.claim.clone(),
            amount: p.amount as i64,
            currency: p.currency.clone(),
            account: p.account.clone(),
            payee_name: p.payee_name.clone(),
        });
    }
    let currency = lines[0].currency.clone();
    if lines.iter().any(|l| l.currency != currency) {
        return Err(bad("a batch is in one currency"));
    }
    let total = lines
        .iter()
        .try_fold(0i64, |a, l| a.checked_add(l.amount))
        .ok_or_else(|| bad("the batch total is over 2^63 - 1: export fewer payables"))?;
    let id = format!("BAT-{}", crate::secret::random_token(12)?);
    let t = now();
    let content = match (kind, &payer) {
        ("bank", Some(p)) => pain_001(&id, t, &b.program, p, &lines),
        _ => mobile_csv(&b.program, &lines),
    };
    let ids: Vec<&str> = lines.iter().map(|l| l.id.as_str()).collect();
    sqlx::query("INSERT INTO payment_batches (id, client_key, format, currency, total, payables, content, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(&id)
        .bind(b.key.clone())
        .bind(&b.format)
        .bind(&currency)
        .bind(total)
        .bind(serde_json::to_string(&ids).unwrap_or_default())
        .bind(&content)
        .bind(who.actor().id)
        .bind(t)
        .execute(&mut *tx)
        .await?;
    let mut moved = 0;
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE payables SET state = 'exported', batch_id = $1, updated_at = $2 WHERE state = 'payable' AND id IN ({})",
            placeholders(3, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&id).bind(t);
        for p in chunk {
            q = q.bind(*p);
        }
        moved += q.execute(&mut *tx).await?.rows_affected();
    }
    if moved != ids.len() as u64 {
        return Err(ApiError::Conflict(
            "some payables were exported by another batch at the same moment: nothing was exported; try again".into(),
        ));
    }
    audit::by(
        &mut tx,
        s,
        who,
        client,
        Event::new(
            "payments.batch",
            "payment_batch",
            &id,
            serde_json::json!({"after": {"format": b.format, "program": b.program, "payables": ids.len(), "total": total, "currency": currency}}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, batch_json(s, &id).await?))
}

async fn batch_json(s: &AppState, id: &str) -> Result<serde_json::Value, ApiError> {
    let r = sqlx::query("SELECT id, format, currency, total, payables, created_by, created_at FROM payment_batches WHERE id = $1")
        .bind(id)
        .fetch_optional(&s.db)
        .await?
        .ok_or(ApiError::NotFound("no such batch"))?;
    Ok(serde_json::json!({
        "id": id,
        "format": r.try_get::<String, _>("format")?,
        "currency": r.try_get::<String, _>("currency")?,
        "total": r.try_get::<i64, _>("total")?,
        "payables": serde_json::from_str::<serde_json::Value>(&r.try_get::<String, _>("payables")?).unwrap_or_default(),
        "created_at": r.try_get::<i64, _>("created_at")?,
        "file": format!("/api/v1/payments/batches/{id}/file"),
    }))
}

async fn batches(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let ids: Vec<String> =
        sqlx::query("SELECT id FROM payment_batches ORDER BY created_at DESC, id LIMIT 200")
            .fetch_all(&s.db)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, sqlx::Error>>()?;
    let mut out = Vec::new();
    for id in &ids {
        out.push(batch_json(&s, id).await?);
    }
    Ok(Json(serde_json::json!({ "batches": out })))
}

async fn new_batch(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    ApiJson(b): ApiJson<NewBatch>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let (st, v) = make_batch(&s, &who, client, b).await?;
    Ok((st, Json(v)))
}

pub(crate) async fn file_of(s: &AppState, id: &str) -> Result<(String, String), ApiError> {
    let r = sqlx::query("SELECT format, content FROM payment_batches WHERE id = $1")
        .bind(id)
        .fetch_optional(&s.db)
        .await?
        .ok_or(ApiError::NotFound("no such batch"))?;
    Ok((r.try_get("format")?, r.try_get("content")?))
}

async fn file(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let (format, content) = file_of(&s, &id).await?;
    let (ctype, ext) = if format == "pain.001" {
        ("application/xml", "xml")
    } else {
        ("text/csv; charset=utf-8", "csv")
    };
    let mut r = content.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}.{ext}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// One status from the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub payable: String,
    /// `paid`, `failed`, or `pending` (accepted but not settled: nothing changes).
    pub outcome: &'static str,
    pub reason: Option<String>,
}

/// Read a pain.002 status report: each transaction's original end-to-end id (the payable) and
/// status; a rejected group without transaction statuses fails every payable of the batch it
/// names.
pub fn read_pain_002(
    xml_text: &str,
    batch_payables: impl Fn(&str) -> Vec<String>,
) -> Result<Vec<Status>, String> {
    let doc = roxmltree::Document::parse(xml_text).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element();
    let ns = root.tag_name().namespace().unwrap_or("");
    if !ns.starts_with("urn:iso:std:iso:20022:tech:xsd:pain.002.") {
        return Err(format!("not a pain.002 status report (namespace {ns:?})"));
    }
    let outcome = |code: &str| match code {
        "ACSC" | "ACCC" => "paid",
        "RJCT" => "failed",
        _ => "pending",
    };
    let mut out = Vec::new();
    for tx in doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "TxInfAndSts")
    {
        let Some(e2e) = text_of(child(tx, "OrgnlEndToEndId")) else {
            return Err("a TxInfAndSts without OrgnlEndToEndId".into());
        };
        let Some(sts) = text_of(child(tx, "TxSts")) else {
            return Err(format!("{e2e}: no TxSts"));
        };
        let reason = child(tx, "StsRsnInf").and_then(|r| {
            let code = child(r, "Rsn")
                .and_then(|x| child(x, "Cd"))
                .and_then(|x| x.text());
            let info = child(r, "AddtlInf").and_then(|x| x.text());
            match (code, info) {
                (None, None) => None,
                (c, i) => Some(
                    [c, i]
                        .iter()
                        .flatten()
                        .copied()
                        .collect::<Vec<_>>()
                        .join(": "),
                ),
            }
        });
        out.push(Status {
            payable: e2e,
            outcome: outcome(&sts),
            reason,
        });
    }
    if out.is_empty() {
        // A whole message rejected: every payable of the batch it answers.
        for g in doc
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == "OrgnlGrpInfAndSts")
        {
            let msg = text_of(child(g, "OrgnlMsgId")).unwrap_or_default();
            if text_of(child(g, "GrpSts")).as_deref() == Some("RJCT") {
                let reason = child(g, "StsRsnInf")
                    .and_then(|r| child(r, "Rsn"))
                    .and_then(|x| child(x, "Cd"))
                    .and_then(|x| x.text())
                    .map(str::to_owned);
                for p in batch_payables(&msg) {
                    out.push(Status {
                        payable: p,
                        outcome: "failed",
                        reason: reason.clone(),
                    });
                }
            }
        }
    }
    Ok(out)
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn text_of(n: Option<roxmltree::Node<'_, '_>>) -> Option<String> {
    n.and_then(|x| x.text()).map(|t| t.trim().to_owned())
}

/// Read a CSV of results: `payable,status,reason` with status `paid` or `failed`.
pub fn read_results_csv(text: &str) -> Result<Vec<Status>, String> {
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = r.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(p), Some(st)) = (col("payable"), col("status")) else {
        return Err("the CSV needs payable and status columns".into());
    };
    let why = col("reason");
    let mut out = Vec::new();
    for (i, row) in r.records().enumerate() {
        let row = row.map_err(|e| format!("line {}: {e}", i + 2))?;
        let outcome = match row.get(st).unwrap_or("").to_ascii_lowercase().as_str() {
            "paid" => "paid",
            "failed" => "failed",
            other => {
                return Err(format!(
                    "line {}: status {other:?} is not paid or failed",
                    i + 2
                ))
            }
        };
        out.push(Status {
            payable: row.get(p).unwrap_or("").to_owned(),
            outcome,
            reason: why
                .and_then(|w| row.get(w))
                .filter(|x| !x.is_empty())
                .map(str::to_owned),
        });
    }
    Ok(out)
}

pub(crate) async fn apply_results(
    s: &AppState,
    who: &Principal,
    client: ClientAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| bad("the results file is not UTF-8"))?;
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut tx = s.begin_write().await?;
    let statuses = if ctype.contains("csv") {
        read_results_csv(text).map_err(bad)?
    } else {
        // Group rejections name the batch; its payables are read first.
        let batches: Vec<(String, Vec<String>)> =
            sqlx::query("SELECT id, payables FROM payment_batches")
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get::<String, _>("id")?,
                        serde_json::from_str(&r.try_get::<String, _>("payables")?)
                            .unwrap_or_default(),
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()?;
        read_pain_002(text, |msg| {
            batches
                .iter()
                .find(|b| b.0 == msg)
                .map(|b| b.1.clone())
                .unwrap_or_default()
        })
        .map_err(bad)?
    };
    let t = now();
    let (mut paid, mut failed, mut unchanged) = (0, 0, 0);
    let mut unknown = Vec::new();
    for st in &statuses {
        let Some(r) = sqlx::query("SELECT state, claim_id FROM payables WHERE id = $1")
            .bind(&st.payable)
            .fetch_optional(&mut *tx)
            .await?
        else {
            unknown.push(st.payable.clone());
            continue;
        };
        let state: String = r.try_get("state")?;
        let claim: String = r.try_get("claim_id")?;
        if st.outcome == "pending" || state != "exported" {
            // Already recorded (the same file twice), or not sent: nothing changes.
            unchanged += 1;
            continue;
        }
        sqlx::query("UPDATE payables SET state = $1, paid_at = $2, failure = $3, updated_at = $4 WHERE id = $5 AND state = 'exported'")
            .bind(st.outcome)
            .bind((st.outcome == "paid").then_some(t))
            .bind(st.reason.clone())
            .bind(t)
            .bind(&st.payable)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE claims SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(st.outcome)
            .bind(t)
            .bind(&claim)
            .execute(&mut *tx)
            .await?;
        if st.outcome == "paid" {
            paid += 1;
        } else {
            failed += 1;
        }
    }
    audit::by(
        &mut tx,
        s,
        who,
        client,
        Event::new(
            "payments.result",
            "payment_result",
            format!("{} statuses", statuses.len()),
            serde_json::json!({"after": {"paid": paid, "failed": failed, "unchanged": unchanged, "unknown": unknown.len()}}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(
        serde_json::json!({"paid": paid, "failed": failed, "unchanged": unchanged, "unknown": unknown}),
    )
}

async fn results(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        apply_results(&s, &who, client, &headers, &body).await?,
    ))
}
