//! Reimbursement claims: a provider claims its accepted redemptions of one program, with
//! supporting documents; reviewers decide it stage by stage; the last approval makes the
//! payable (`payables`). See docs/reimbursement.md.
//!
//! The server re-derives everything it will pay on: which redemptions are claimable (accepted,
//! not voided, this provider's devices, this program's vouchers, in no other live claim), what
//! each is worth (cash, plus items at the program's unit prices), the totals. A claim carries
//! ids, never amounts a client could choose. A redemption is in at most one live claim: the
//! `claimed` table's primary key decides, however many claims are submitted at once.
//!
//! Claims are made by a provider's phone (device token, `/api/v1/sync/claims…`) or a provider
//! account (`/api/v1/claims…`), in three idempotent steps: create (a client key finds the same
//! claim again), upload each document (`PUT` by its SHA-256: sending it twice stores it once),
//! submit. States: `draft` → `submitted` (stage 1, 2, …) → `payable` → `paid` | `failed`; or
//! `returned` (a question; the provider adds documents and submits again, back to stage 1),
//! `rejected` (a reason; its redemptions may be claimed again), `withdrawn` (by the provider,
//! from draft or returned).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{body_limit, placeholders, value_rows, MAX_JSON};
use crate::audit::{self, Actor, Event};
use crate::auth::{device, need, Device, Perm::*, Principal, Scope};
use crate::error::ApiJson;
use crate::limits::ClientAddr;
use crate::users::Role;
use crate::{now, ApiError, AppState};

/// Most redemptions in one claim ("everything unclaimed" takes the oldest this many).
pub const MAX_LINES: usize = 10_000;
/// Largest supporting document.
pub const MAX_DOCUMENT: usize = evoucher_core::claims::MAX_DOCUMENT;
/// Most documents on one claim.
pub const MAX_DOCUMENTS: i64 = 20;
/// Longest note, question or reason.
const MAX_TEXT: usize = 2000;
/// A redemption synced this long after it was made is flagged for the reviewer.
const LATE_SYNC: i64 = 3 * 86_400;

pub fn router() -> Router<AppState> {
    Router::new()
        // A provider's phone, with its device token.
        .route(
            "/api/v1/sync/claims",
            device(body_limit(post(create_claim), MAX_JSON)).merge(device(get(device_list))),
        )
        .route("/api/v1/sync/claims/{id}", device(get(device_one)))
        .route(
            "/api/v1/sync/claims/{id}/documents/{sha256}",
            device(body_limit(put(put_document), MAX_DOCUMENT)),
        )
        .route(
            "/api/v1/sync/claims/{id}/submit",
            device(body_limit(post(submit_claim), MAX_JSON)),
        )
        .route(
            "/api/v1/sync/claims/{id}/withdraw",
            device(body_limit(post(withdraw_claim), MAX_JSON)),
        )
        // People: provider accounts make claims, reviewers decide them, others read.
        .route(
            "/api/v1/claims",
            need(ReadClaims, Scope::Any, get(list)).merge(need(
                SubmitClaims,
                Scope::Any,
                body_limit(post(create_claim), MAX_JSON),
            )),
        )
        .route(
            "/api/v1/claims/{id}",
            need(ReadClaims, Scope::Claim, get(one)),
        )
        .route(
            "/api/v1/claims/{id}/documents/{sha256}",
            need(ReadClaims, Scope::Claim, get(document)).merge(need(
                SubmitClaims,
                Scope::Claim,
                body_limit(put(put_document), MAX_DOCUMENT),
            )),
        )
        .route(
            "/api/v1/claims/{id}/submit",
            need(
                SubmitClaims,
                Scope::Claim,
                body_limit(post(submit_claim), MAX_JSON),
            ),
        )
        .route(
            "/api/v1/claims/{id}/withdraw",
            need(
                SubmitClaims,
                Scope::Claim,
                body_limit(post(withdraw_claim), MAX_JSON),
            ),
        )
        .route(
            "/api/v1/claims/{id}/decision",
            need(
                ReviewClaims,
                Scope::Claim,
                body_limit(post(decide), MAX_JSON),
            ),
        )
}

/// Who makes or changes a claim on a provider's side.
#[derive(Clone)]
pub(crate) struct Submitter {
    pub provider: String,
    /// `device:<id>` or the account's id.
    pub id: String,
    pub actor: Actor,
}

impl Submitter {
    fn of_device(d: &Device) -> Submitter {
        Submitter {
            provider: d.provider.clone(),
            id: format!("device:{}", d.id),
            actor: Actor::device(&d.id),
        }
    }

    pub(crate) fn of_user(who: &Principal) -> Result<Submitter, ApiError> {
        let Principal::User(u) = who else {
            return Err(ApiError::Forbidden(
                "claims are made by a provider's account or phone, not the admin token".into(),
            ));
        };
        let provider = u
            .provider_id
            .clone()
            .ok_or_else(|| ApiError::Forbidden("only a provider account makes claims".into()))?;
        Ok(Submitter {
            provider,
            id: u.id.clone(),
            actor: Actor::user(u),
        })
    }

    async fn record(
        &self,
        c: &mut sqlx::AnyConnection,
        s: &AppState,
        client: ClientAddr,
        e: Event,
    ) -> Result<(), ApiError> {
        audit::record(c, s.postgres, &self.actor, client.0, e).await
    }
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::BadRequest(m.into())
}

fn clean_text(what: &str, t: Option<String>) -> Result<Option<String>, ApiError> {
    match t.map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()) {
        None => Ok(None),
        Some(x) if x.chars().count() > MAX_TEXT => {
            Err(bad(format!("{what}: at most {MAX_TEXT} characters")))
        }
        Some(x) => Ok(Some(x)),
    }
}

// ---- what a redemption is worth ----

/// A program's terms for claims.
pub(crate) struct Terms {
    pub currency: String,
    pub prices: BTreeMap<String, i64>,
    pub stages: Vec<Role>,
}

pub(crate) async fn terms(c: &mut sqlx::AnyConnection, program: &str) -> Result<Terms, ApiError> {
    let r = sqlx::query("SELECT currency, item_prices, stages FROM programs WHERE id = $1")
        .bind(program)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(ApiError::NotFound("no such program"))?;
    let currency: Option<String> = r.try_get("currency")?;
    let currency = currency.ok_or_else(|| {
        bad("the program has no currency: reimbursement needs one (set it, and unit prices for its items)")
    })?;
    let prices: BTreeMap<String, i64> =
        serde_json::from_str(&r.try_get::<String, _>("item_prices")?).unwrap_or_default();
    let stages: Vec<String> =
        serde_json::from_str(&r.try_get::<String, _>("stages")?).unwrap_or_default();
    let stages = stages
        .iter()
        .filter_map(|x| Role::parse(x))
        .collect::<Vec<_>>();
    if stages.is_empty() {
        return Err(ApiError::Internal(
            "a program without approval stages".into(),
        ));
    }
    Ok(Terms {
        currency,
        prices,
        stages,
    })
}

/// The value of one redemption in the program's currency: its cash amount plus its items at
/// the program's unit prices. Refused: another currency, an item without a price, overflow.
pub(crate) fn value(
    t: &Terms,
    amount: Option<i64>,
    currency: Option<&str>,
    items_json: &str,
) -> Result<i64, String> {
    let mut v: i64 = 0;
    if let Some(a) = amount.filter(|a| *a != 0) {
        if currency != Some(t.currency.as_str()) {
            return Err(format!(
                "a redemption in {} where the program pays in {}",
                currency.unwrap_or("no currency"),
                t.currency
            ));
        }
        v = a;
    }
    let items: Vec<serde_json::Value> = serde_json::from_str(items_json).unwrap_or_default();
    for it in &items {
        let code = it["code"].as_str().unwrap_or("");
        let qty = it["quantity"].as_i64().unwrap_or(0);
        if qty == 0 {
            continue;
        }
        let price = t.prices.get(code).ok_or_else(|| {
            format!("item {code:?} has no unit price in the program: the program manager sets it before items can be claimed")
        })?;
        v = qty
            .checked_mul(*price)
            .and_then(|x| x.checked_add(v))
            .ok_or("a value over 2^63 - 1")?;
    }
    Ok(v)
}

// ---- making a claim ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewClaim {
    /// The submitter's own key for this claim (1 to 64 characters): sending the same key again
    /// finds the same claim.
    pub key: String,
    pub program: String,
    /// These redemptions (ids); without them, every unclaimed one up to `up_to`.
    #[serde(default)]
    pub redemptions: Option<Vec<String>>,
    /// With no `redemptions`: redemptions made up to this time (default now).
    #[serde(default)]
    pub up_to: Option<i64>,
    #[serde(default)]
    pub note: Option<String>,
}

/// The redemptions a provider may claim in a program, with their value, or why one listed
/// cannot be claimed.
const CLAIMABLE: &str = "SELECT r.id, r.amount, r.currency, r.items, r.at FROM redemptions r \
     JOIN devices d ON d.id = r.device_id JOIN vouchers v ON v.id = r.voucher_id \
     WHERE d.provider_id = $1 AND v.program_id = $2 AND r.kind = 'redeem' AND r.status = 'accepted' \
     AND NOT EXISTS (SELECT 1 FROM redemptions x WHERE x.voids = r.id AND x.kind = 'void' AND x.status = 'accepted') \
     AND NOT EXISTS (SELECT 1 FROM claimed c WHERE c.redemption_id = r.id)";

/// Why a listed redemption cannot be claimed.
async fn why_not(
    c: &mut sqlx::AnyConnection,
    provider: &str,
    program: &str,
    id: &str,
) -> Result<String, ApiError> {
    let Some(r) = sqlx::query(
        "SELECT r.kind, r.status, d.provider_id, v.program_id, \
         (SELECT claim_id FROM claimed c WHERE c.redemption_id = r.id) AS claim, \
         (SELECT COUNT(*) FROM redemptions x WHERE x.voids = r.id AND x.kind = 'void' AND x.status = 'accepted') AS voided \
         FROM redemptions r JOIN devices d ON d.id = r.device_id LEFT JOIN vouchers v ON v.id = r.voucher_id WHERE r.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    else {
        return Ok(format!("redemption {id} is not on the server (sync it first)"));
    };
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    let prov: String = r.try_get("provider_id")?;
    let prog: Option<String> = r.try_get("program_id")?;
    let claim: Option<String> = r.try_get("claim")?;
    let voided: i64 = r.try_get("voided")?;
    Ok(if prov != provider {
        format!("redemption {id} is another provider's")
    } else if kind != "redeem" {
        format!("{id} is a void, not a redemption")
    } else if status != "accepted" {
        format!("redemption {id} is {status}, not accepted: only accepted redemptions are paid")
    } else if prog.as_deref() != Some(program) {
        format!("redemption {id} is of another program")
    } else if voided > 0 {
        format!("redemption {id} was voided")
    } else if let Some(cl) = claim {
        format!("redemption {id} is already in claim {cl}")
    } else {
        format!("redemption {id} cannot be claimed")
    })
}

pub(crate) async fn create(
    s: &AppState,
    who: &Submitter,
    client: ClientAddr,
    n: NewClaim,
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    if n.key.is_empty() || n.key.len() > 64 || n.key.chars().any(char::is_control) {
        return Err(bad("key: 1 to 64 printable characters"));
    }
    let note = clean_text("note", n.note)?;
    let mut tx = s.begin_write().await?;
    // The same key again: the same claim (a phone that lost the answer sends it again).
    if let Some(r) =
        sqlx::query("SELECT id, program_id FROM claims WHERE provider_id = $1 AND client_key = $2")
            .bind(&who.provider)
            .bind(&n.key)
            .fetch_optional(&mut *tx)
            .await?
    {
        let id: String = r.try_get("id")?;
        if r.try_get::<String, _>("program_id")? != n.program {
            return Err(ApiError::Conflict(format!(
                "key {} was used for claim {id} of another program",
                n.key
            )));
        }
        drop(tx);
        return Ok((StatusCode::OK, claim_json(s, &id, false).await?));
    }
    let t = terms(&mut tx, &n.program).await?;
    let payout: Option<String> = sqlx::query("SELECT payout FROM providers WHERE id = $1")
        .bind(&who.provider)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("payout"))
        .transpose()?
        .flatten();
    if payout.is_none() {
        return Err(bad(
            "the provider has no payout account (bank or mobile money): the program manager records it before claims can be made",
        ));
    }
    let rows = match &n.redemptions {
        Some(ids) => {
            if ids.is_empty() || ids.len() > MAX_LINES {
                return Err(bad(format!("redemptions: 1 to {MAX_LINES} ids")));
            }
            let mut uniq = ids.clone();
            uniq.sort();
            uniq.dedup();
            if uniq.len() != ids.len() {
                return Err(bad("redemptions: an id is listed twice"));
            }
            let mut found = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(500) {
                let sql = format!("{CLAIMABLE} AND r.id IN ({})", placeholders(3, chunk.len()));
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&who.provider)
                    .bind(&n.program);
                for id in chunk {
                    q = q.bind(id);
                }
                found.extend(q.fetch_all(&mut *tx).await?);
            }
            if found.len() != ids.len() {
                let have: std::collections::HashSet<String> = found
                    .iter()
                    .filter_map(|r| r.try_get::<String, _>("id").ok())
                    .collect();
                let missing = ids
                    .iter()
                    .find(|i| !have.contains(*i))
                    .cloned()
                    .unwrap_or_default();
                return Err(bad(
                    why_not(&mut tx, &who.provider, &n.program, &missing).await?
                ));
            }
            found
        }
        None => {
            let up_to = n.up_to.unwrap_or_else(now);
            let sql = format!("{CLAIMABLE} AND r.at <= $3 ORDER BY r.at, r.id LIMIT {MAX_LINES}");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&who.provider)
                .bind(&n.program)
                .bind(up_to)
                .fetch_all(&mut *tx)
                .await?
        }
    };
    if rows.is_empty() {
        return Err(bad(
            "nothing to claim: no accepted redemption of this provider in this program is unclaimed",
        ));
    }
    // The server's valuation of every line.
    let mut lines: Vec<(String, i64, i64)> = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: String = r.try_get("id")?;
        let v = value(
            &t,
            r.try_get("amount")?,
            r.try_get::<Option<String>, _>("currency")?.as_deref(),
            &r.try_get::<String, _>("items")?,
        )
        .map_err(|e| bad(format!("redemption {id}: {e}")))?;
        lines.push((id, v, r.try_get("at")?));
    }
    let total = lines
        .iter()
        .try_fold(0i64, |a, l| a.checked_add(l.1))
        .ok_or_else(|| bad("the claim's total is over 2^63 - 1: claim fewer redemptions"))?;
    let from = lines.iter().map(|l| l.2).min().unwrap_or(0);
    let to = lines.iter().map(|l| l.2).max().unwrap_or(0);
    let id = format!("CLM-{}", crate::secret::random_token(12)?);
    let t_now = now();
    let stages: Vec<&str> = t.stages.iter().map(|r| r.as_str()).collect();
    // One statement: two creates with the same key at once, one inserts, the other finds it.
    let made = sqlx::query("INSERT INTO claims (id, program_id, provider_id, client_key, created_by, state, stage, stages, currency, claimed, approved, line_count, period_from, period_to, note, question, reason, created_at, submitted_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'draft', 1, $6, $7, $8, NULL, $9, $10, $11, $12, NULL, NULL, $13, NULL, $13) ON CONFLICT (provider_id, client_key) DO NOTHING")
        .bind(&id)
        .bind(&n.program)
        .bind(&who.provider)
        .bind(&n.key)
        .bind(&who.id)
        .bind(serde_json::to_string(&stages).unwrap_or_default())
        .bind(&t.currency)
        .bind(total)
        .bind(lines.len() as i64)
        .bind(from)
        .bind(to)
        .bind(note.clone())
        .bind(t_now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if made == 0 {
        return Err(ApiError::Conflict(format!(
            "key {} is being used by another request at this moment: send it again",
            n.key
        )));
    }
    // Claim the redemptions: the primary key lets each into one live claim only.
    let mut taken = 0u64;
    for chunk in lines.chunks(300) {
        let sql = format!(
            "INSERT INTO claimed (redemption_id, claim_id) VALUES {} ON CONFLICT (redemption_id) DO NOTHING",
            value_rows(chunk.len(), 2)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for l in chunk {
            q = q.bind(&l.0).bind(&id);
        }
        taken += q.execute(&mut *tx).await?.rows_affected();
        let sql = format!(
            "INSERT INTO claim_lines (claim_id, redemption_id, amount, approved, note) VALUES {}",
            value_rows(chunk.len(), 5)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for l in chunk {
            q = q
                .bind(&id)
                .bind(&l.0)
                .bind(l.1)
                .bind(None::<i64>)
                .bind(None::<String>);
        }
        q.execute(&mut *tx).await?;
    }
    if taken != lines.len() as u64 {
        // Another claim took some of them between our read and our insert: nothing is kept.
        return Err(ApiError::Conflict(format!(
            "{} of these redemptions were claimed by another claim at the same moment: nothing was made; claim again",
            lines.len() as u64 - taken
        )));
    }
    step(
        &mut tx,
        &id,
        1,
        "create",
        "provider",
        &who.id,
        &who.actor.name,
        Some(total),
        note.as_deref(),
    )
    .await?;
    who.record(
        &mut tx,
        s,
        client,
        Event::new(
            "claim.create",
            "claim",
            &id,
            serde_json::json!({"after": {"program": n.program, "provider": who.provider, "lines": lines.len(), "claimed": total, "currency": t.currency}}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, claim_json(s, &id, false).await?))
}

/// Append a step to a claim's history.
#[allow(clippy::too_many_arguments)]
async fn step(
    c: &mut sqlx::AnyConnection,
    claim: &str,
    stage: i64,
    action: &str,
    role: &str,
    actor: &str,
    actor_name: &str,
    amount: Option<i64>,
    text: Option<&str>,
) -> Result<(), ApiError> {
    sqlx::query("INSERT INTO claim_steps (claim_id, seq, stage, action, role, actor, actor_name, amount, text, at) VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM claim_steps WHERE claim_id = $1), $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(claim)
        .bind(stage)
        .bind(action)
        .bind(role)
        .bind(actor)
        .bind(actor_name)
        .bind(amount)
        .bind(text.map(str::to_owned))
        .bind(now())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// A claim of this submitter's provider, locked for a change (PostgreSQL), or 404.
async fn own_claim(
    c: &mut sqlx::AnyConnection,
    s: &AppState,
    who: &Submitter,
    id: &str,
) -> Result<(String, i64), ApiError> {
    let sql = format!(
        "SELECT state, stage, provider_id FROM claims WHERE id = $1{}",
        if s.postgres { " FOR UPDATE" } else { "" }
    );
    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(ApiError::NotFound("no such claim"))?;
    if r.try_get::<String, _>("provider_id")? != who.provider {
        return Err(ApiError::NotFound("no such claim"));
    }
    Ok((r.try_get("state")?, r.try_get("stage")?))
}

pub use evoucher_core::claims::sniff;

/// A file name fit to show: no path, no control characters, at most 100 characters.
fn file_name(headers: &HeaderMap, media: &str) -> String {
    let raw = headers
        .get("x-file-name")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>'))
        .take(100)
        .collect();
    if clean.trim().is_empty() {
        match media {
            "image/jpeg" => "document.jpg",
            "image/png" => "document.png",
            _ => "document.pdf",
        }
        .to_owned()
    } else {
        clean
    }
}

pub(crate) async fn add_document(
    s: &AppState,
    who: &Submitter,
    client: ClientAddr,
    id: &str,
    sha256: &str,
    name: String,
    bytes: &[u8],
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let digest = hex::encode(Sha256::digest(bytes));
    if !sha256.eq_ignore_ascii_case(&digest) {
        return Err(bad(
            "the document's SHA-256 is not the one in the address: it was damaged on the way; send it again",
        ));
    }
    if bytes.is_empty() {
        return Err(bad("an empty document"));
    }
    let media = sniff(bytes).ok_or_else(|| {
        bad("a supporting document is a JPEG or PNG photo or a PDF (by its content, not its name)")
    })?;
    let mut tx = s.begin_write().await?;
    let (state, _) = own_claim(&mut tx, s, who, id).await?;
    if sqlx::query("SELECT 1 FROM claim_documents WHERE claim_id = $1 AND sha256 = $2")
        .bind(id)
        .bind(&digest)
        .fetch_optional(&mut *tx)
        .await?
        .is_some()
    {
        // Sent before: stored once.
        return Ok((
            StatusCode::OK,
            serde_json::json!({"sha256": digest, "media_type": media, "stored": "before"}),
        ));
    }
    if state != "draft" && state != "returned" {
        return Err(ApiError::Conflict(format!(
            "documents are added to a draft or returned claim; this one is {state}"
        )));
    }
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM claim_documents WHERE claim_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
    if count >= MAX_DOCUMENTS {
        return Err(bad(format!("at most {MAX_DOCUMENTS} documents on a claim")));
    }
    sqlx::query("INSERT INTO claim_documents (claim_id, sha256, media_type, size, name, data, uploaded_by, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(id)
        .bind(&digest)
        .bind(media)
        .bind(bytes.len() as i64)
        .bind(&name)
        .bind(bytes.to_vec())
        .bind(&who.id)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE claims SET updated_at = $1 WHERE id = $2")
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    who.record(
        &mut tx,
        s,
        client,
        Event::new(
            "claim.document",
            "claim",
            id,
            serde_json::json!({"after": {"sha256": digest, "media_type": media, "size": bytes.len()}}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        serde_json::json!({"sha256": digest, "media_type": media, "stored": "now"}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Submit {
    /// On a returned claim: the answer to the reviewer's question.
    #[serde(default)]
    pub note: Option<String>,
}

pub(crate) async fn submit(
    s: &AppState,
    who: &Submitter,
    client: ClientAddr,
    id: &str,
    b: Submit,
) -> Result<serde_json::Value, ApiError> {
    let note = clean_text("note", b.note)?;
    let mut tx = s.begin_write().await?;
    let (state, _) = own_claim(&mut tx, s, who, id).await?;
    match state.as_str() {
        "draft" | "returned" => {}
        // Sent again after a lost answer: already done.
        "submitted" | "payable" | "paid" | "failed" => {
            drop(tx);
            return claim_json(s, id, false).await;
        }
        other => {
            return Err(ApiError::Conflict(format!(
                "a {other} claim cannot be submitted"
            )))
        }
    }
    let t = now();
    sqlx::query("UPDATE claims SET state = 'submitted', stage = 1, question = NULL, submitted_at = $1, updated_at = $1 WHERE id = $2")
        .bind(t)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let action = if state == "draft" {
        "submit"
    } else {
        "resubmit"
    };
    step(
        &mut tx,
        id,
        1,
        action,
        "provider",
        &who.id,
        &who.actor.name,
        None,
        note.as_deref(),
    )
    .await?;
    who.record(
        &mut tx,
        s,
        client,
        Event::new(
            if state == "draft" {
                "claim.submit"
            } else {
                "claim.resubmit"
            },
            "claim",
            id,
            serde_json::json!({"before": {"state": state}, "after": {"state": "submitted"}}),
        ),
    )
    .await?;
    tx.commit().await?;
    claim_json(s, id, false).await
}

/// Let go of a claim's redemptions (rejected or withdrawn): they may be claimed again.
async fn release(c: &mut sqlx::AnyConnection, id: &str) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM claimed WHERE claim_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

pub(crate) async fn withdraw(
    s: &AppState,
    who: &Submitter,
    client: ClientAddr,
    id: &str,
) -> Result<serde_json::Value, ApiError> {
    let mut tx = s.begin_write().await?;
    let (state, stage) = own_claim(&mut tx, s, who, id).await?;
    match state.as_str() {
        "draft" | "returned" => {}
        "withdrawn" => {
            drop(tx);
            return claim_json(s, id, false).await;
        }
        other => {
            return Err(ApiError::Conflict(format!(
                "a {other} claim cannot be withdrawn (only a draft or a returned one)"
            )))
        }
    }
    sqlx::query("UPDATE claims SET state = 'withdrawn', updated_at = $1 WHERE id = $2")
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    release(&mut tx, id).await?;
    step(
        &mut tx,
        id,
        stage,
        "withdraw",
        "provider",
        &who.id,
        &who.actor.name,
        None,
        None,
    )
    .await?;
    who.record(
        &mut tx,
        s,
        client,
        Event::new(
            "claim.withdraw",
            "claim",
            id,
            serde_json::json!({"before": {"state": state}, "after": {"state": "withdrawn"}}),
        ),
    )
    .await?;
    tx.commit().await?;
    claim_json(s, id, false).await
}

// ---- deciding a claim ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LineDecision {
    pub redemption: String,
    /// The value approved for this line (at most what it was worth before this decision).
    pub approved: u64,
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Decision {
    /// The stage the reviewer decides (as they saw it): a claim that moved meanwhile is 409.
    pub stage: i64,
    /// `approve`, `reject` or `return`.
    pub decision: String,
    /// Required to reject (the reason) or return (the question).
    #[serde(default)]
    pub reason: Option<String>,
    /// With `approve`: lines approved at less than their value, each with a reason.
    #[serde(default)]
    pub lines: Vec<LineDecision>,
}

pub(crate) async fn decide_as(
    s: &AppState,
    who: &Principal,
    client: ClientAddr,
    id: &str,
    d: Decision,
) -> Result<serde_json::Value, ApiError> {
    let Principal::User(u) = who else {
        return Err(ApiError::Forbidden(
            "claims are decided by people with the stage's role, not the admin token".into(),
        ));
    };
    let reason = clean_text("reason", d.reason)?;
    if !matches!(d.decision.as_str(), "approve" | "reject" | "return") {
        return Err(bad("decision: approve, reject or return"));
    }
    if d.decision != "approve" && reason.is_none() {
        return Err(bad(if d.decision == "reject" {
            "a rejection needs its reason"
        } else {
            "returning a claim needs the question for the provider"
        }));
    }
    if d.decision != "approve" && !d.lines.is_empty() {
        return Err(bad("lines are approved at less only with approve"));
    }
    let mut tx = s.begin_write().await?;
    let sql = format!(
        "SELECT state, stage, stages, provider_id, program_id FROM claims WHERE id = $1{}",
        if s.postgres { " FOR UPDATE" } else { "" }
    );
    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound("no such claim"))?;
    let state: String = r.try_get("state")?;
    let stage: i64 = r.try_get("stage")?;
    let stages: Vec<String> =
        serde_json::from_str(&r.try_get::<String, _>("stages")?).unwrap_or_default();
    if state != "submitted" || stage != d.stage {
        return Err(ApiError::Conflict(format!(
            "the claim changed since you saw it: it is {state}{}; reload it",
            if state == "submitted" {
                format!(" at stage {stage}")
            } else {
                String::new()
            }
        )));
    }
    let role = stages
        .get(usize::try_from(stage - 1).unwrap_or(usize::MAX))
        .cloned()
        .ok_or_else(|| ApiError::Internal("a claim past its stages".into()))?;
    // Segregation of duties: one person decides one stage of a claim (said
    // first: it is the rule a person who approved stage 1 runs into at stage 2).
    let earlier: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM claim_steps WHERE claim_id = $1 AND actor = $2 AND action = 'approve'",
    )
    .bind(id)
    .bind(&u.id)
    .fetch_one(&mut *tx)
    .await?
    .try_get("n")?;
    if earlier > 0 {
        return Err(ApiError::Forbidden(
            "you approved an earlier stage of this claim: another person decides this one".into(),
        ));
    }
    if u.role.as_str() != role {
        return Err(ApiError::Forbidden(format!(
            "stage {stage} of this claim is decided by the {} role; yours is {}",
            role.replace('_', " "),
            u.role.as_str().replace('_', " ")
        )));
    }
    let t = now();
    let action = d.decision.as_str();
    let mut after = serde_json::json!({"state": state, "stage": stage});
    let mut approved_total = None;
    match action {
        "approve" => {
            for l in &d.lines {
                let reason = l.reason.trim();
                if reason.is_empty() || reason.chars().count() > MAX_TEXT {
                    return Err(bad(format!(
                        "line {}: a reduction needs its reason",
                        l.redemption
                    )));
                }
                let Some(lr) = sqlx::query(
                    "SELECT amount, approved FROM claim_lines WHERE claim_id = $1 AND redemption_id = $2",
                )
                .bind(id)
                .bind(&l.redemption)
                .fetch_optional(&mut *tx)
                .await?
                else {
                    return Err(bad(format!("{} is not a line of this claim", l.redemption)));
                };
                let current: i64 = lr
                    .try_get::<Option<i64>, _>("approved")?
                    .unwrap_or(lr.try_get("amount")?);
                let want = i64::try_from(l.approved).unwrap_or(i64::MAX);
                if want > current {
                    return Err(bad(format!(
                        "line {}: {} is more than its value now ({current}); a reviewer lowers, never raises",
                        l.redemption, l.approved
                    )));
                }
                sqlx::query("UPDATE claim_lines SET approved = $1, note = $2 WHERE claim_id = $3 AND redemption_id = $4")
                    .bind(want)
                    .bind(format!("stage {stage} ({}): {reason}", u.name))
                    .bind(id)
                    .bind(&l.redemption)
                    .execute(&mut *tx)
                    .await?;
            }
            // What is approved is what the lines still are worth now: a line voided since
            // the claim was made counts nothing.
            let total: i64 = sqlx::query(
                "SELECT CAST(COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM redemptions x WHERE x.voids = l.redemption_id AND x.kind = 'void' AND x.status = 'accepted') THEN 0 ELSE COALESCE(l.approved, l.amount) END), 0) AS BIGINT) AS total FROM claim_lines l WHERE l.claim_id = $1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("total")?;
            if total <= 0 {
                return Err(bad(
                    "nothing would be paid: reject the claim instead, with the reason",
                ));
            }
            approved_total = Some(total);
            let last = stage as usize >= stages.len();
            let moved = sqlx::query(
                "UPDATE claims SET stage = stage + 1, approved = $1, state = $2, updated_at = $3 WHERE id = $4 AND state = 'submitted' AND stage = $5",
            )
            .bind(total)
            .bind(if last { "payable" } else { "submitted" })
            .bind(t)
            .bind(id)
            .bind(stage)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved != 1 {
                return Err(ApiError::Conflict(
                    "the claim changed since you saw it; reload it".into(),
                ));
            }
            step(
                &mut tx,
                id,
                stage,
                "approve",
                &role,
                &u.id,
                &u.name,
                Some(total),
                reason.as_deref(),
            )
            .await?;
            after = serde_json::json!({"state": if last { "payable" } else { "submitted" }, "stage": stage + 1, "approved": total, "reduced_lines": d.lines.len()});
            if last {
                let p = super::payables::make(&mut tx, s, id).await?;
                after["payable"] = p.into();
            }
        }
        "reject" | "return" => {
            let next = if action == "reject" {
                "rejected"
            } else {
                "returned"
            };
            let moved = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE claims SET state = $1, {} = $2, updated_at = $3 WHERE id = $4 AND state = 'submitted' AND stage = $5",
                if action == "reject" { "reason" } else { "question" }
            )))
            .bind(next)
            .bind(reason.clone())
            .bind(t)
            .bind(id)
            .bind(stage)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved != 1 {
                return Err(ApiError::Conflict(
                    "the claim changed since you saw it; reload it".into(),
                ));
            }
            if action == "reject" {
                release(&mut tx, id).await?;
            }
            step(
                &mut tx,
                id,
                stage,
                action,
                &role,
                &u.id,
                &u.name,
                None,
                reason.as_deref(),
            )
            .await?;
            after = serde_json::json!({"state": next, "stage": stage});
        }
        _ => return Err(bad("decision: approve, reject or return")),
    }
    audit::by(
        &mut tx,
        s,
        who,
        client,
        Event::new(
            match action {
                "approve" => "claim.approve",
                "reject" => "claim.reject",
                _ => "claim.return",
            },
            "claim",
            id,
            serde_json::json!({"before": {"state": state, "stage": stage}, "after": after, "approved": approved_total}),
        ),
    )
    .await?;
    tx.commit().await?;
    claim_json(s, id, false).await
}

// ---- reading ----

/// A claim as the API shows it; with `lines`, every line with its flags.
pub(crate) async fn claim_json(
    s: &AppState,
    id: &str,
    lines: bool,
) -> Result<serde_json::Value, ApiError> {
    let mut c = s.db.acquire().await?;
    let r = sqlx::query("SELECT c.*, p.name AS provider_name FROM claims c JOIN providers p ON p.id = c.provider_id WHERE c.id = $1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(ApiError::NotFound("no such claim"))?;
    let stages: Vec<String> =
        serde_json::from_str(&r.try_get::<String, _>("stages")?).unwrap_or_default();
    let state: String = r.try_get("state")?;
    let stage: i64 = r.try_get("stage")?;
    let waiting = (state == "submitted")
        .then(|| {
            stages
                .get(usize::try_from(stage - 1).unwrap_or(usize::MAX))
                .cloned()
        })
        .flatten();
    let documents: Vec<serde_json::Value> = sqlx::query(
        "SELECT sha256, media_type, size, name, uploaded_at FROM claim_documents WHERE claim_id = $1 ORDER BY uploaded_at, sha256",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|d| {
        Ok(serde_json::json!({
            "sha256": d.try_get::<String, _>("sha256")?,
            "media_type": d.try_get::<String, _>("media_type")?,
            "size": d.try_get::<i64, _>("size")?,
            "name": d.try_get::<String, _>("name")?,
            "uploaded_at": d.try_get::<i64, _>("uploaded_at")?,
        }))
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let steps: Vec<serde_json::Value> = sqlx::query(
        "SELECT seq, stage, action, role, actor_name, amount, text, at FROM claim_steps WHERE claim_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|x| {
        Ok(serde_json::json!({
            "seq": x.try_get::<i64, _>("seq")?,
            "stage": x.try_get::<i64, _>("stage")?,
            "action": x.try_get::<String, _>("action")?,
            "role": x.try_get::<String, _>("role")?,
            "by": x.try_get::<String, _>("actor_name")?,
            "amount": x.try_get::<Option<i64>, _>("amount")?,
            "text": x.try_get::<Option<String>, _>("text")?,
            "at": x.try_get::<i64, _>("at")?,
        }))
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let payable = sqlx::query(
        "SELECT id, state, amount, currency, paid_at, failure FROM payables WHERE claim_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .map(|p| {
        Ok::<_, sqlx::Error>(serde_json::json!({
            "id": p.try_get::<String, _>("id")?,
            "state": p.try_get::<String, _>("state")?,
            "amount": p.try_get::<i64, _>("amount")?,
            "currency": p.try_get::<String, _>("currency")?,
            "paid_at": p.try_get::<Option<i64>, _>("paid_at")?,
            "failure": p.try_get::<Option<String>, _>("failure")?,
        }))
    })
    .transpose()?;
    let mut out = serde_json::json!({
        "id": id,
        "program": r.try_get::<String, _>("program_id")?,
        "provider": r.try_get::<String, _>("provider_id")?,
        "provider_name": r.try_get::<String, _>("provider_name")?,
        "state": state,
        "stage": stage,
        "stages": stages,
        "waiting_for": waiting,
        "currency": r.try_get::<String, _>("currency")?,
        "claimed": r.try_get::<i64, _>("claimed")?,
        "approved": r.try_get::<Option<i64>, _>("approved")?,
        "line_count": r.try_get::<i64, _>("line_count")?,
        "period": {"from": r.try_get::<Option<i64>, _>("period_from")?, "to": r.try_get::<Option<i64>, _>("period_to")?},
        "note": r.try_get::<Option<String>, _>("note")?,
        "question": r.try_get::<Option<String>, _>("question")?,
        "reason": r.try_get::<Option<String>, _>("reason")?,
        "created_at": r.try_get::<i64, _>("created_at")?,
        "submitted_at": r.try_get::<Option<i64>, _>("submitted_at")?,
        "updated_at": r.try_get::<i64, _>("updated_at")?,
        "documents": documents,
        "steps": steps,
        "payable": payable,
    });
    if lines {
        out["lines"] =
            serde_json::Value::Array(claim_lines(&mut c, id, 0, MAX_LINES as i64).await?);
    }
    Ok(out)
}

/// A claim's lines, with what a reviewer needs: voucher, beneficiary (pseudonymous id), when,
/// which device, cash and items, the value claimed and approved, and flags.
pub(crate) async fn claim_lines(
    c: &mut sqlx::AnyConnection,
    id: &str,
    offset: i64,
    limit: i64,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let rows = sqlx::query(
        "SELECT l.redemption_id, l.amount AS value, l.approved, l.note, r.voucher_id, r.device_id, r.amount, r.currency, r.items, r.at, r.received_at, v.beneficiary_id, \
         (SELECT COUNT(*) FROM redemptions x WHERE x.voids = l.redemption_id AND x.kind = 'void' AND x.status = 'accepted') AS voided, \
         (SELECT MIN(o.claim_id) FROM claim_lines o JOIN claims oc ON oc.id = o.claim_id WHERE o.redemption_id = l.redemption_id AND oc.state = 'rejected' AND o.claim_id <> l.claim_id) AS rejected_in \
         FROM claim_lines l JOIN redemptions r ON r.id = l.redemption_id JOIN vouchers v ON v.id = r.voucher_id \
         WHERE l.claim_id = $1 ORDER BY r.at, l.redemption_id LIMIT $2 OFFSET $3",
    )
    .bind(id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            let mut flags = Vec::new();
            if r.try_get::<i64, _>("voided")? > 0 {
                flags.push("voided since it was claimed".to_owned());
            }
            if let Some(other) = r.try_get::<Option<String>, _>("rejected_in")? {
                flags.push(format!("was in rejected claim {other}"));
            }
            let at: i64 = r.try_get("at")?;
            let received: i64 = r.try_get("received_at")?;
            if received - at > LATE_SYNC {
                flags.push(format!("synced {} days after it was made", (received - at) / 86_400));
            }
            Ok(serde_json::json!({
                "redemption": r.try_get::<String, _>("redemption_id")?,
                "voucher": r.try_get::<String, _>("voucher_id")?,
                "beneficiary": r.try_get::<String, _>("beneficiary_id")?,
                "device": r.try_get::<String, _>("device_id")?,
                "at": at,
                "amount": r.try_get::<Option<i64>, _>("amount")?,
                "currency": r.try_get::<Option<String>, _>("currency")?,
                "items": serde_json::from_str::<serde_json::Value>(&r.try_get::<String, _>("items")?).unwrap_or_default(),
                "value": r.try_get::<i64, _>("value")?,
                "approved": r.try_get::<Option<i64>, _>("approved")?,
                "note": r.try_get::<Option<String>, _>("note")?,
                "flags": flags,
            }))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

#[derive(Deserialize)]
pub(crate) struct ClaimFilter {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub program: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    /// Claims waiting for this role (`accountant`, `cash_manager`, …).
    #[serde(default)]
    pub waiting_for: Option<String>,
    #[serde(default)]
    pub offset: i64,
    #[serde(default = "super::default_limit")]
    pub limit: i64,
}

/// Claims, newest first: a provider's own; a limited account's programs only.
pub(crate) async fn list_for(
    s: &AppState,
    provider_only: Option<&str>,
    programs: Option<&[String]>,
    mut f: ClaimFilter,
) -> Result<serde_json::Value, ApiError> {
    if let Some(own) = provider_only {
        f.provider = Some(own.to_owned());
    }
    let p = super::Paging {
        offset: f.offset,
        limit: f.limit,
    }
    .check()?;
    let filters = super::Filters::new(
        &[
            ("c.state", &f.state),
            ("c.program_id", &f.program),
            ("c.provider_id", &f.provider),
        ],
        "c.program_id",
        programs,
    );
    let mut terms = filters.terms();
    let query = |sql: String| filters.bind(sqlx::query(sqlx::AssertSqlSafe(sql)));
    let (total, ids): (usize, Vec<String>) = match &f.waiting_for {
        // Paged by the database.
        None => {
            let from = format!("FROM claims c WHERE {}", terms.join(" AND "));
            let total: i64 = query(format!("SELECT COUNT(*) AS n {from}"))
                .fetch_one(&s.db)
                .await?
                .try_get("n")?;
            let ids = query(format!(
                "SELECT c.id {from} ORDER BY c.updated_at DESC, c.id LIMIT {} OFFSET {}",
                p.limit, p.offset
            ))
            .fetch_all(&s.db)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<_, _>>()?;
            (usize::try_from(total).unwrap_or(0), ids)
        }
        // A reviewer's queue: submitted claims whose current stage is this role's, decided
        // from each claim's own stages (kept with the claim, as JSON).
        Some(role) => {
            terms.push("c.state = 'submitted'".into());
            let rows = query(format!(
                "SELECT c.id, c.stages, c.stage FROM claims c WHERE {} ORDER BY c.updated_at DESC, c.id",
                terms.join(" AND ")
            ))
            .fetch_all(&s.db)
            .await?;
            let waiting: Vec<String> = rows
                .iter()
                .filter(|r| {
                    let stages: Vec<String> = r
                        .try_get::<String, _>("stages")
                        .ok()
                        .and_then(|x| serde_json::from_str(&x).ok())
                        .unwrap_or_default();
                    let stage = r.try_get::<i64, _>("stage").unwrap_or(0);
                    stages.get(usize::try_from(stage - 1).unwrap_or(usize::MAX)) == Some(role)
                })
                .filter_map(|r| r.try_get::<String, _>("id").ok())
                .collect();
            let page = waiting
                .iter()
                .skip(p.offset as usize)
                .take(p.limit as usize)
                .cloned()
                .collect();
            (waiting.len(), page)
        }
    };
    let mut claims = Vec::new();
    for id in &ids {
        claims.push(claim_json(s, id, false).await?);
    }
    Ok(serde_json::json!({"claims": claims, "total": total, "offset": p.offset, "limit": p.limit}))
}

// ---- handlers ----

/// Who makes or changes a claim, from the route's guard: a phone's device token, or a
/// provider account (the same handlers serve `/api/v1/sync/claims…` and `/api/v1/claims…`).
impl axum::extract::FromRequestParts<AppState> for Submitter {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &AppState,
    ) -> Result<Self, ApiError> {
        if let Some(d) = parts.extensions.get::<Device>() {
            return Ok(Submitter::of_device(d));
        }
        match parts.extensions.get::<Principal>() {
            Some(who) => Submitter::of_user(who),
            None => Err(ApiError::Internal("a claim route without its guard".into())),
        }
    }
}

async fn create_claim(
    State(s): State<AppState>,
    who: Submitter,
    client: ClientAddr,
    ApiJson(n): ApiJson<NewClaim>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let (st, v) = create(&s, &who, client, n).await?;
    Ok((st, Json(v)))
}

async fn put_document(
    State(s): State<AppState>,
    who: Submitter,
    client: ClientAddr,
    headers: HeaderMap,
    Path((id, sha)): Path<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let media = sniff(&body).unwrap_or("application/pdf");
    let name = file_name(&headers, media);
    let (st, v) = add_document(&s, &who, client, &id, &sha, name, &body).await?;
    Ok((st, Json(v)))
}

async fn submit_claim(
    State(s): State<AppState>,
    who: Submitter,
    client: ClientAddr,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let b = optional_json::<Submit>(&body)?;
    Ok(Json(submit(&s, &who, client, &id, b).await?))
}

async fn withdraw_claim(
    State(s): State<AppState>,
    who: Submitter,
    client: ClientAddr,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(withdraw(&s, &who, client, &id).await?))
}

async fn device_list(
    State(s): State<AppState>,
    Extension(d): Extension<Device>,
    Query(f): Query<ClaimFilter>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(list_for(&s, Some(&d.provider), None, f).await?))
}

async fn device_one(
    State(s): State<AppState>,
    Extension(d): Extension<Device>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // With its lines: the phone shows each redemption as claimed, then paid.
    let v = claim_json(&s, &id, true).await?;
    if v["provider"] != d.provider.as_str() {
        return Err(ApiError::NotFound("no such claim"));
    }
    Ok(Json(v))
}

/// An optional JSON body: empty is the default.
fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| bad(format!("the body is not the JSON expected: {e}")))
}

async fn list(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(f): Query<ClaimFilter>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        list_for(&s, who.own_provider(), who.program_limit(), f).await?,
    ))
}

#[derive(Deserialize)]
pub(crate) struct LinesQuery {
    #[serde(default)]
    pub lines: Option<String>,
}

pub(crate) async fn one(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LinesQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let lines = q.lines.as_deref().is_none_or(|x| x != "0" && x != "false");
    Ok(Json(claim_json(&s, &id, lines).await?))
}

/// A supporting document, served only as what it was found to be (JPEG, PNG, PDF), never
/// sniffed by the browser, sandboxed, PDFs as downloads.
pub(crate) async fn document(
    State(s): State<AppState>,
    Path((id, sha)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let r = sqlx::query(
        "SELECT media_type, name, data FROM claim_documents WHERE claim_id = $1 AND sha256 = $2",
    )
    .bind(&id)
    .bind(sha.to_ascii_lowercase())
    .fetch_optional(&s.db)
    .await?
    .ok_or(ApiError::NotFound("no such document"))?;
    let media: String = r.try_get("media_type")?;
    let data: Vec<u8> = r.try_get("data")?;
    let media = match sniff(&data) {
        Some(m) if m == media => m,
        _ => return Err(ApiError::Internal("a stored document changed type".into())),
    };
    let mut resp = data.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; img-src 'self'; sandbox"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static(if media == "application/pdf" {
            "attachment; filename=\"document.pdf\""
        } else {
            "inline"
        }),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(resp)
}

async fn decide(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    Path(id): Path<String>,
    ApiJson(d): ApiJson<Decision>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(decide_as(&s, &who, client, &id, d).await?))
}
