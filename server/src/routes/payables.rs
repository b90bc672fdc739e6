//! Payables: what a program owes a provider once a claim's last stage approved it. Each is
//! signed with the program's payables key (`evoucher_core::payable`, never a voucher key) and
//! printed as an account-payable PDF carrying the signed payable in a QR code, which a payment
//! switch checks with `evoucher payable verify` before it pays.
//!
//! States: `payable` (ready for a payment batch) → `exported` (in a batch sent to the switch)
//! → `paid` | `failed` (from the switch's result). A failed payable can be re-queued; an
//! exported one can be re-issued for another batch only explicitly (audited).

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use evoucher_core::keys::{IssuerKey, Jwk};
use evoucher_core::payable::{self, Account, Approval, Payable, PayableTrust};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{body_limit, MAX_JSON};
use crate::audit::{self, Event};
use crate::auth::{need, Perm::*, Principal, Scope};
use crate::error::ApiJson;
use crate::limits::ClientAddr;
use crate::{now, ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/payables/trust", get(trust))
        .route("/api/v1/payables", need(ReadClaims, Scope::Any, get(list)))
        .route(
            "/api/v1/payables/{id}",
            need(ReadClaims, Scope::Payable, get(one)),
        )
        .route(
            "/api/v1/payables/{id}/pdf",
            need(ReadClaims, Scope::Payable, get(pdf)),
        )
        .route(
            "/api/v1/payables/{id}/requeue",
            need(
                ManagePayments,
                Scope::Payable,
                body_limit(post(requeue), MAX_JSON),
            ),
        )
        .route(
            "/api/v1/payables/{id}/reissue",
            need(
                ManagePayments,
                Scope::Payable,
                body_limit(post(reissue), MAX_JSON),
            ),
        )
}

/// The program's payables key (made on first use, sealed at rest like issuer keys).
async fn key(
    c: &mut sqlx::AnyConnection,
    s: &AppState,
    program: &str,
) -> Result<IssuerKey, ApiError> {
    let found = sqlx::query(
        "SELECT kid, sealed_private FROM payables_keys WHERE program_id = $1 AND retired_at IS NULL",
    )
    .bind(program)
    .fetch_optional(&mut *c)
    .await?;
    if let Some(k) = found {
        let kid: String = k.try_get("kid")?;
        let d = s
            .sealer
            .open(&kid, &k.try_get::<String, _>("sealed_private")?)?;
        let jwk = Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            d: Some(
                String::from_utf8(d.to_vec())
                    .map_err(|_| ApiError::Internal("sealed key".into()))?,
            ),
            ..Default::default()
        };
        return IssuerKey::from_jwk(&jwk).map_err(|e| ApiError::Internal(e.to_string()));
    }
    let key = IssuerKey::generate().map_err(|e| ApiError::Internal(e.to_string()))?;
    let jwk = key.private_jwk();
    let kid = key.kid().to_b64();
    let sealed = s
        .sealer
        .seal(&kid, jwk.d.clone().unwrap_or_default().as_bytes())?;
    sqlx::query("INSERT INTO payables_keys (kid, program_id, public_x, sealed_private, created_at, retired_at) VALUES ($1, $2, $3, $4, $5, NULL)")
        .bind(&kid)
        .bind(program)
        .bind(jwk.x.clone().unwrap_or_default())
        .bind(sealed)
        .bind(now())
        .execute(&mut *c)
        .await?;
    Ok(key)
}

/// Make the payable of a claim whose last stage just approved it, inside that transaction.
/// Returns its id.
pub(crate) async fn make(
    c: &mut sqlx::AnyConnection,
    s: &AppState,
    claim: &str,
) -> Result<String, ApiError> {
    let r = sqlx::query(
        "SELECT c.program_id, c.provider_id, c.currency, c.approved, c.line_count, c.period_from, c.period_to, p.name AS provider_name, p.payout \
         FROM claims c JOIN providers p ON p.id = c.provider_id WHERE c.id = $1",
    )
    .bind(claim)
    .fetch_one(&mut *c)
    .await?;
    let program: String = r.try_get("program_id")?;
    let provider: String = r.try_get("provider_id")?;
    let account: Account = r
        .try_get::<Option<String>, _>("payout")?
        .and_then(|p| serde_json::from_str(&p).ok())
        .ok_or_else(|| {
            ApiError::Conflict(
                "the provider has no payout account: the program manager records it, then approve again".into(),
            )
        })?;
    let approvals: Vec<Approval> = sqlx::query(
        "SELECT stage, role, actor_name, at FROM claim_steps WHERE claim_id = $1 AND action = 'approve' ORDER BY seq",
    )
    .bind(claim)
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|a| {
        Ok(Approval {
            stage: u32::try_from(a.try_get::<i64, _>("stage")?).unwrap_or(0),
            role: a.try_get("role")?,
            by: a.try_get("actor_name")?,
            at: a.try_get("at")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    // One digest over the documents' digests, sorted: a document added or changed shows.
    let mut docs: Vec<String> =
        sqlx::query("SELECT sha256 FROM claim_documents WHERE claim_id = $1")
            .bind(claim)
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|d| d.try_get("sha256"))
            .collect::<Result<_, sqlx::Error>>()?;
    docs.sort();
    let mut h = Sha256::new();
    for d in &docs {
        h.update(hex::decode(d).unwrap_or_default());
    }
    let amount: i64 = r
        .try_get::<Option<i64>, _>("approved")?
        .ok_or_else(|| ApiError::Internal("a payable without an approved amount".into()))?;
    let id = format!("PAY-{}", crate::secret::random_token(12)?);
    let t = now();
    let p = Payable {
        id: id.clone(),
        claim: claim.to_owned(),
        program: program.clone(),
        payee: provider.clone(),
        payee_name: r.try_get("provider_name")?,
        account: account.clone(),
        amount: u64::try_from(amount).unwrap_or(0),
        currency: r.try_get("currency")?,
        redemptions: u64::try_from(r.try_get::<i64, _>("line_count")?).unwrap_or(0),
        from: r.try_get::<Option<i64>, _>("period_from")?.unwrap_or(t),
        to: r.try_get::<Option<i64>, _>("period_to")?.unwrap_or(t),
        approvals,
        documents: hex::encode(h.finalize()),
        issued_at: t,
    };
    let k = key(c, s, &program).await?;
    let signed = payable::sign(&p, &k)
        .map_err(|e| ApiError::BadRequest(format!("the payable cannot be made: {e}")))?;
    sqlx::query("INSERT INTO payables (id, claim_id, program_id, provider_id, amount, currency, account_kind, kid, text, state, batch_id, failure, issued_at, paid_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'payable', NULL, NULL, $10, NULL, $10)")
        .bind(&id)
        .bind(claim)
        .bind(&program)
        .bind(&provider)
        .bind(amount)
        .bind(&p.currency)
        .bind(match account {
            Account::Bank { .. } => "bank",
            Account::Mobile { .. } => "mobile",
        })
        .bind(k.kid().to_b64())
        .bind(&signed.text)
        .bind(t)
        .execute(&mut *c)
        .await?;
    Ok(id)
}

/// A stored payable, read back from its signed text (what the PDF and the files print).
pub(crate) async fn stored(
    s: &AppState,
    id: &str,
) -> Result<(Payable, String, serde_json::Value), ApiError> {
    let r = sqlx::query("SELECT * FROM payables WHERE id = $1")
        .bind(id)
        .fetch_optional(&s.db)
        .await?
        .ok_or(ApiError::NotFound("no such payable"))?;
    let text: String = r.try_get("text")?;
    let p = read_text(s, &text).await?;
    let row = serde_json::json!({
        "id": id,
        "claim": r.try_get::<String, _>("claim_id")?,
        "program": r.try_get::<String, _>("program_id")?,
        "provider": r.try_get::<String, _>("provider_id")?,
        "amount": r.try_get::<i64, _>("amount")?,
        "currency": r.try_get::<String, _>("currency")?,
        "account_kind": r.try_get::<String, _>("account_kind")?,
        "kid": r.try_get::<String, _>("kid")?,
        "state": r.try_get::<String, _>("state")?,
        "batch": r.try_get::<Option<String>, _>("batch_id")?,
        "failure": r.try_get::<Option<String>, _>("failure")?,
        "issued_at": r.try_get::<i64, _>("issued_at")?,
        "paid_at": r.try_get::<Option<i64>, _>("paid_at")?,
        "text": text,
        "payee_name": p.payee_name,
        "account": p.account,
    });
    Ok((p, text, row))
}

/// A payable's signed text verified against the program keys the server holds (a stored text
/// that no longer verifies is an internal error, never printed).
async fn read_text(s: &AppState, text: &str) -> Result<Payable, ApiError> {
    let mut c = s.db.acquire().await?;
    let trust = trust_in(&mut c).await?;
    read_with(&trust, text)
}

/// A stored payable's text, read with the server's own payables keys.
pub(crate) fn read_with(trust: &PayableTrust, text: &str) -> Result<Payable, ApiError> {
    payable::verify(text, trust)
        .map(|(p, _)| p)
        .map_err(|e| ApiError::Internal(format!("a stored payable does not verify: {e}")))
}

/// The server's payables keys, on this connection (inside a transaction too).
pub(crate) async fn trust_in(c: &mut sqlx::AnyConnection) -> Result<PayableTrust, ApiError> {
    PayableTrust::from_jwks_json(&jwks_in(c).await?.to_string())
        .map_err(|e| ApiError::Internal(format!("payables keys: {e}")))
}

async fn jwks(s: &AppState) -> Result<serde_json::Value, ApiError> {
    let mut c = s.db.acquire().await?;
    jwks_in(&mut c).await
}

/// Every program's payables keys, as a JWKS marked for payables.
async fn jwks_in(c: &mut sqlx::AnyConnection) -> Result<serde_json::Value, ApiError> {
    let rows = sqlx::query(
        "SELECT k.kid, k.public_x, k.program_id, k.created_at FROM payables_keys k ORDER BY k.created_at, k.kid",
    )
    .fetch_all(&mut *c)
    .await?;
    let keys: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            Ok(serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                "kid": r.try_get::<String, _>("kid")?,
                "x": r.try_get::<String, _>("public_x")?,
                "evoucher_use": payable::KEY_USE,
                "evoucher_program": r.try_get::<String, _>("program_id")?,
            }))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(serde_json::json!({ "keys": keys }))
}

/// The payables keys a payment switch trusts (public; a program may have none yet).
async fn trust(State(s): State<AppState>) -> Result<Response, ApiError> {
    let body = jwks(&s).await?.to_string();
    Ok(([(header::CONTENT_TYPE, "application/jwk-set+json")], body).into_response())
}

#[derive(Deserialize)]
pub(crate) struct PayableFilter {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub program: Option<String>,
    #[serde(default)]
    pub offset: i64,
    #[serde(default = "super::default_limit")]
    pub limit: i64,
}

pub(crate) async fn list_for(
    s: &AppState,
    who: &Principal,
    f: &PayableFilter,
) -> Result<serde_json::Value, ApiError> {
    let p = super::Paging {
        offset: f.offset,
        limit: f.limit,
    }
    .check()?;
    let provider = who.own_provider().map(str::to_owned);
    let filters = super::Filters::new(
        &[
            ("y.state", &f.state),
            ("y.program_id", &f.program),
            ("y.provider_id", &provider),
        ],
        "y.program_id",
        who.program_limit(),
    );
    let from = format!(
        "FROM payables y JOIN providers p ON p.id = y.provider_id WHERE {}",
        filters.terms().join(" AND ")
    );
    let bind = |sql: String| filters.bind(sqlx::query(sqlx::AssertSqlSafe(sql)));
    let total: i64 = bind(format!("SELECT COUNT(*) AS n {from}"))
        .fetch_one(&s.db)
        .await?
        .try_get("n")?;
    let rows = bind(format!(
        "SELECT y.id, y.claim_id, y.program_id, y.provider_id, p.name AS provider_name, y.amount, y.currency, y.account_kind, y.state, y.batch_id, y.failure, y.issued_at, y.paid_at {from} ORDER BY y.issued_at DESC, y.id LIMIT {} OFFSET {}",
        p.limit, p.offset
    ))
    .fetch_all(&s.db)
    .await?;
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            Ok(serde_json::json!({
                "id": r.try_get::<String, _>("id")?,
                "claim": r.try_get::<String, _>("claim_id")?,
                "program": r.try_get::<String, _>("program_id")?,
                "provider": r.try_get::<String, _>("provider_id")?,
                "provider_name": r.try_get::<String, _>("provider_name")?,
                "amount": r.try_get::<i64, _>("amount")?,
                "currency": r.try_get::<String, _>("currency")?,
                "account_kind": r.try_get::<String, _>("account_kind")?,
                "state": r.try_get::<String, _>("state")?,
                "batch": r.try_get::<Option<String>, _>("batch_id")?,
                "failure": r.try_get::<Option<String>, _>("failure")?,
                "issued_at": r.try_get::<i64, _>("issued_at")?,
                "paid_at": r.try_get::<Option<i64>, _>("paid_at")?,
            }))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(serde_json::json!({"payables": list, "total": total, "offset": p.offset}))
}

async fn list(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(f): Query<PayableFilter>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(list_for(&s, &who, &f).await?))
}

pub(crate) async fn one(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(stored(&s, &id).await?.2))
}

/// The account-payable document.
pub(crate) async fn pdf_bytes(s: &AppState, id: &str) -> Result<Vec<u8>, ApiError> {
    let (p, text, _) = stored(s, id).await?;
    let name: String = sqlx::query("SELECT name FROM programs WHERE id = $1")
        .bind(&p.program)
        .fetch_one(&s.db)
        .await?
        .try_get("name")?;
    let mut doc = crate::pdf::Pdf::with_fonts(s.letter_fonts.clone());
    crate::pdf::payable(&mut doc, &name, &p, &text)
        .map_err(|e| ApiError::Internal(format!("payable PDF: {e}")))?;
    Ok(doc.finish())
}

async fn pdf(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let bytes = pdf_bytes(&s, &id).await?;
    let mut r = bytes.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{id}.pdf\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Why {
    #[serde(default)]
    pub reason: Option<String>,
}

/// Move a payable back to `payable` from `from` (a failed payment, or an export to do again),
/// with the claim following; audited.
pub(crate) async fn back_to_payable(
    s: &AppState,
    who: &Principal,
    client: ClientAddr,
    id: &str,
    from: &str,
    action: &'static str,
    reason: Option<String>,
) -> Result<serde_json::Value, ApiError> {
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if action == "payable.reissue" && reason.is_none() {
        return Err(ApiError::BadRequest(
            "re-issuing an exported payable for another payment batch needs the reason".into(),
        ));
    }
    let mut tx = s.begin_write().await?;
    let r = sqlx::query("SELECT state, claim_id, batch_id FROM payables WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound("no such payable"))?;
    let state: String = r.try_get("state")?;
    if state != from {
        return Err(ApiError::Conflict(format!(
            "the payable is {state}; only a {from} one can be {}",
            if from == "failed" {
                "re-queued"
            } else {
                "re-issued"
            }
        )));
    }
    let claim: String = r.try_get("claim_id")?;
    let batch: Option<String> = r.try_get("batch_id")?;
    let t = now();
    let moved = sqlx::query("UPDATE payables SET state = 'payable', batch_id = NULL, updated_at = $1 WHERE id = $2 AND state = $3")
        .bind(t)
        .bind(id)
        .bind(from)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if moved != 1 {
        return Err(ApiError::Conflict(
            "the payable changed meanwhile; reload it".into(),
        ));
    }
    sqlx::query("UPDATE claims SET state = 'payable', updated_at = $1 WHERE id = $2")
        .bind(t)
        .bind(&claim)
        .execute(&mut *tx)
        .await?;
    audit::by(
        &mut tx,
        s,
        who,
        client,
        Event::new(
            action,
            "payable",
            id,
            serde_json::json!({"before": {"state": state, "batch": batch}, "after": {"state": "payable"}, "reason": reason}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(stored(s, id).await?.2)
}

async fn requeue(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let w: Why = if body.iter().all(u8::is_ascii_whitespace) {
        Why::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?
    };
    Ok(Json(
        back_to_payable(&s, &who, client, &id, "failed", "payable.requeue", w.reason).await?,
    ))
}

async fn reissue(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    Path(id): Path<String>,
    ApiJson(w): ApiJson<Why>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        back_to_payable(
            &s,
            &who,
            client,
            &id,
            "exported",
            "payable.reissue",
            w.reason,
        )
        .await?,
    ))
}
