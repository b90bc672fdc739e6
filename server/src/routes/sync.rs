//! Redemption sync: devices push their ledger entries in order; the server checks each entry's
//! place in the device's chain, its hash, the device signature and the provider, re-verifies
//! the voucher, and records it as `accepted`, `conflict` (redeemed beyond its rule across
//! devices: the one that arrives later is flagged) or `invalid` (the voucher does not verify
//! or was cancelled before the redemption). Idempotent by entry id; each entry commits on its
//! own, so a batch cut off midway resumes where it stopped.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use evoucher_core::ledger::{Entry, EntryKind};
use evoucher_core::voucher::RedemptionRule;
use evoucher_core::TrustStore;
use serde::Deserialize;
use sqlx::Row;

use super::devices::device_from;
use crate::error::ApiJson;
use crate::{now, ApiError, AppState};

/// Most entries accepted in one push.
pub const MAX_BATCH: usize = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/sync/redemptions", post(push))
        .route("/api/v1/sync/status", get(status))
}

#[derive(Deserialize)]
struct Push {
    entries: Vec<Entry>,
}

/// Every issuer key the server has ever had (retired ones too): the vouchers they signed.
async fn all_keys(s: &AppState) -> Result<TrustStore, ApiError> {
    let rows = sqlx::query("SELECT kid, public_x FROM issuer_keys")
        .fetch_all(&s.db)
        .await?;
    let keys: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| Ok(serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": r.try_get::<String, _>("kid")?, "x": r.try_get::<String, _>("public_x")?})))
        .collect::<Result<_, sqlx::Error>>()?;
    TrustStore::from_jwks_json(&serde_json::json!({ "keys": keys }).to_string())
        .map_err(|e| ApiError::Internal(e.to_string()))
}

fn result(
    e: &Entry,
    status: &str,
    reason: Option<String>,
    conflict_with: Option<String>,
) -> serde_json::Value {
    serde_json::json!({"id": e.id, "seq": e.seq, "status": status, "reason": reason, "conflict_with": conflict_with})
}

async fn push(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(p): ApiJson<Push>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (device, provider, public) = device_from(&headers, &s).await?;
    if p.entries.len() > MAX_BATCH {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_BATCH} entries per push"
        )));
    }
    let trust = all_keys(&s).await?;
    let mut results = Vec::with_capacity(p.entries.len());
    for e in &p.entries {
        let mut tx = s.db.begin().await?;
        if let Some(r) =
            sqlx::query("SELECT device_id, status, conflict_with FROM redemptions WHERE id = $1")
                .bind(&e.id)
                .fetch_optional(&mut *tx)
                .await?
        {
            if r.try_get::<String, _>("device_id")? != device {
                results.push(result(
                    e,
                    "rejected",
                    Some("entry id belongs to another device".into()),
                    None,
                ));
                break;
            }
            results.push(result(
                e,
                &r.try_get::<String, _>("status")?,
                Some("already received".into()),
                r.try_get("conflict_with")?,
            ));
            continue;
        }
        let d = sqlx::query("SELECT last_seq, last_hash FROM devices WHERE id = $1")
            .bind(&device)
            .fetch_one(&mut *tx)
            .await?;
        let (last_seq, last_hash): (i64, String) =
            (d.try_get("last_seq")?, d.try_get("last_hash")?);
        let reject = if e.seq != last_seq + 1 {
            Some(format!("expected seq {}", last_seq + 1))
        } else if hex::encode(&e.prev_hash) != last_hash {
            Some("prev_hash does not continue this device's chain".into())
        } else if e.computed_hash().as_slice() != e.hash.as_slice() {
            Some("hash does not match the entry".into())
        } else if !e.signed_by(&public) {
            Some("device signature is invalid".into())
        } else if e.provider != provider {
            Some("entry is for another provider".into())
        } else {
            None
        };
        if let Some(why) = reject {
            // The chain cannot continue past this entry: stop, store nothing more.
            results.push(result(e, "rejected", Some(why), None));
            break;
        }
        let (status, reason, conflict_with) = judge(&mut tx, &trust, e).await?;
        sqlx::query("INSERT INTO redemptions (id, device_id, seq, kind, voucher_id, voids, amount, currency, items, at, received_at, status, conflict_with, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
            .bind(&e.id)
            .bind(&device)
            .bind(e.seq)
            .bind(e.kind.as_str())
            .bind(e.voucher_id.to_hex())
            .bind(e.voids.clone())
            .bind(e.amount.map(|a| a as i64))
            .bind(e.currency.clone())
            .bind(serde_json::to_string(&e.items).unwrap_or_default())
            .bind(e.at)
            .bind(now())
            .bind(status)
            .bind(conflict_with.clone())
            .bind(hex::encode(&e.hash))
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE devices SET last_seq = $1, last_hash = $2 WHERE id = $3")
            .bind(e.seq)
            .bind(hex::encode(&e.hash))
            .bind(&device)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        results.push(result(e, status, reason, conflict_with));
    }
    Ok(Json(serde_json::json!({ "results": results })))
}

/// Decide an entry's status against the voucher and everything accepted before it.
async fn judge(
    tx: &mut sqlx::AnyConnection,
    trust: &TrustStore,
    e: &Entry,
) -> Result<(&'static str, Option<String>, Option<String>), ApiError> {
    if e.kind == EntryKind::Void {
        return Ok(("accepted", None, None));
    }
    let v = match evoucher_core::verify(&e.voucher_text, trust, e.at) {
        Ok(v) if v.voucher.id == e.voucher_id => v.voucher,
        Ok(_) => {
            return Ok((
                "invalid",
                Some("voucher id does not match the voucher text".into()),
                None,
            ))
        }
        Err(err) => {
            return Ok((
                "invalid",
                Some(format!("voucher does not verify: {err}")),
                None,
            ))
        }
    };
    let vid = e.voucher_id.to_hex();
    if let Some(r) = sqlx::query("SELECT revoked_at FROM revocations WHERE voucher_id = $1")
        .bind(&vid)
        .fetch_optional(&mut *tx)
        .await?
    {
        if r.try_get::<i64, _>("revoked_at")? <= e.at {
            return Ok((
                "invalid",
                Some("voucher was cancelled before this redemption".into()),
                None,
            ));
        }
    }
    let rows = sqlx::query(
        "SELECT r.id, r.amount FROM redemptions r WHERE r.voucher_id = $1 AND r.kind = 'redeem' AND r.status = 'accepted' \
         AND NOT EXISTS (SELECT 1 FROM redemptions v WHERE v.kind = 'void' AND v.voids = r.id AND v.status = 'accepted') ORDER BY r.received_at, r.seq",
    )
    .bind(&vid)
    .fetch_all(&mut *tx)
    .await?;
    let first = rows
        .first()
        .map(|r| r.try_get::<String, _>("id"))
        .transpose()?;
    match v.rule {
        RedemptionRule::Single => {
            if let Some(other) = first {
                return Ok((
                    "conflict",
                    Some("single-use voucher already redeemed".into()),
                    Some(other),
                ));
            }
        }
        RedemptionRule::Partial => {
            let used: i64 = rows
                .iter()
                .map(|r| {
                    r.try_get::<Option<i64>, _>("amount")
                        .map(|a| a.unwrap_or(0))
                })
                .sum::<Result<i64, _>>()?;
            let value = v.value.as_ref().map(|x| x.amount as i64).unwrap_or(0);
            if used + e.amount.unwrap_or(0) as i64 > value {
                return Ok((
                    "conflict",
                    Some(format!("over-redeemed: {used} already used of {value}")),
                    first,
                ));
            }
        }
    }
    Ok(("accepted", None, None))
}

#[derive(Deserialize)]
struct After {
    #[serde(default)]
    after_seq: i64,
}

/// The statuses of this device's redemptions after a sequence number.
async fn status(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<After>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (device, _, _) = device_from(&headers, &s).await?;
    let rows = sqlx::query("SELECT id, seq, status, conflict_with FROM redemptions WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT 1000")
        .bind(&device)
        .bind(q.after_seq)
        .fetch_all(&s.db)
        .await?;
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| Ok(serde_json::json!({"id": r.try_get::<String, _>("id")?, "seq": r.try_get::<i64, _>("seq")?, "status": r.try_get::<String, _>("status")?, "conflict_with": r.try_get::<Option<String>, _>("conflict_with")?})))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(
        serde_json::json!({ "device_id": device, "redemptions": list }),
    ))
}
