//! Redemption sync: devices push their ledger entries in order; the server checks each entry's
//! place in the device's chain, its hash, the device signature and the provider, re-verifies
//! the voucher, and records it as `accepted`, `conflict` (redeemed beyond its rule across
//! devices: the one that arrives later is flagged) or `invalid` (the voucher does not verify
//! or was cancelled before the redemption). Idempotent by entry id; a push commits as one
//! transaction, so a push cut off midway (server killed, connection lost) stores nothing and is
//! sent again whole.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use evoucher_core::ledger::{Entry, EntryKind, ItemQty};
use evoucher_core::voucher::{RedemptionRule, Voucher};
use evoucher_core::TrustStore;
use serde::Deserialize;
use sqlx::Row;

use super::devices::device_from;
use super::{body_limit, lock_for_writes, placeholders, value_rows};
use crate::error::ApiJson;
use crate::{now, ApiError, AppState};

/// Most entries accepted in one push.
pub const MAX_BATCH: usize = 1000;
/// Largest push body: 1,000 entries of about 1 to 2 KB of JSON each (the voucher text is kept
/// in every entry).
pub const MAX_PUSH_BYTES: usize = 4 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/sync/redemptions",
            body_limit(post(push), MAX_PUSH_BYTES),
        )
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

/// What can be checked of an entry without the database: its hash, the device's signature and
/// the voucher itself (signature, validity at the entry's time, id).
struct Checked {
    hash_ok: bool,
    signed: bool,
    /// The verified voucher (`None` for voids), or why it does not verify.
    voucher: Result<Option<Voucher>, String>,
}

fn check(e: &Entry, public: &[u8; 32], trust: &TrustStore) -> Checked {
    let voucher = if e.kind == EntryKind::Void {
        Ok(None)
    } else {
        match evoucher_core::verify(&e.voucher_text, trust, e.at) {
            Ok(v) if v.voucher.id == e.voucher_id => Ok(Some(v.voucher)),
            Ok(_) => Err("voucher id does not match the voucher text".into()),
            Err(err) => Err(format!("voucher does not verify: {err}")),
        }
    };
    Checked {
        hash_ok: e.computed_hash().as_slice() == e.hash.as_slice(),
        signed: e.signed_by(public),
        voucher,
    }
}

/// [`check`] every entry but those in `skip` (stored already: they answer their stored
/// status, so a push resent after a lost answer or a server restart is not checked again),
/// spread over the machine's cores (signature checks dominate a push). One result per entry,
/// in order; a check that panicked fails the whole push rather than shifting results onto
/// other entries.
fn check_all(
    entries: &[Entry],
    skip: &std::collections::HashSet<String>,
    public: &[u8; 32],
    trust: &TrustStore,
) -> Result<Vec<Option<Checked>>, ApiError> {
    let one = |e: &Entry| (!skip.contains(&e.id)).then(|| check(e, public, trust));
    let todo = entries.len() - skip.len().min(entries.len());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(todo.div_ceil(64).max(1));
    if threads <= 1 {
        return Ok(entries.iter().map(one).collect());
    }
    let chunk = entries.len().div_ceil(threads);
    std::thread::scope(|sc| {
        let parts: Vec<_> = entries
            .chunks(chunk)
            .map(|c| sc.spawn(move || c.iter().map(one).collect::<Vec<_>>()))
            .collect();
        let mut out = Vec::with_capacity(entries.len());
        for h in parts {
            out.extend(
                h.join()
                    .map_err(|_| ApiError::Internal("an entry check panicked".into()))?,
            );
        }
        Ok(out)
    })
}

/// The ids of `entries` this device has stored already (read before the push's transaction;
/// it only ever grows).
async fn stored_ids(
    s: &AppState,
    device: &str,
    entries: &[Entry],
) -> Result<std::collections::HashSet<String>, ApiError> {
    let sql = format!(
        "SELECT id FROM redemptions WHERE device_id = $1 AND id IN ({})",
        placeholders(2, entries.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(device);
    for e in entries {
        q = q.bind(e.id.as_str());
    }
    let mut out = std::collections::HashSet::new();
    for r in q.fetch_all(&s.db).await? {
        out.insert(r.try_get::<String, _>("id")?);
    }
    Ok(out)
}

/// A redemption accepted earlier (or earlier in this push) that counts against its voucher.
struct Prior {
    id: String,
    amount: i64,
    items: Vec<ItemQty>,
}

/// A row to insert.
struct NewRow<'a> {
    e: &'a Entry,
    status: &'static str,
    conflict_with: Option<String>,
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
    if p.entries.is_empty() {
        return Ok(Json(serde_json::json!({ "results": [] })));
    }
    let trust = all_keys(&s).await?;
    let entries = std::sync::Arc::new(p.entries);
    let stored = stored_ids(&s, &device, &entries).await?;
    let checked = {
        let entries = entries.clone();
        tokio::task::spawn_blocking(move || check_all(&entries, &stored, &public, &trust))
            .await
            .map_err(|_| ApiError::Internal("entry checks failed".into()))??
    };

    // One transaction per push: all of it is stored, or (server killed, database error) none of
    // it, and the device sends it again. On PostgreSQL, pushes from different devices are
    // serialised on the redemptions table so two of them cannot both accept the same voucher.
    let mut tx = s.db.begin().await?;
    lock_for_writes(&mut tx, &s, "redemptions").await?;
    let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    let sql = format!(
        "SELECT id, device_id, status, conflict_with FROM redemptions WHERE id IN ({})",
        placeholders(1, ids.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in &ids {
        q = q.bind(*id);
    }
    let mut known = std::collections::HashMap::new();
    for r in q.fetch_all(&mut *tx).await? {
        known.insert(
            r.try_get::<String, _>("id")?,
            (
                r.try_get::<String, _>("device_id")?,
                r.try_get::<String, _>("status")?,
                r.try_get::<Option<String>, _>("conflict_with")?,
            ),
        );
    }
    let d = sqlx::query("SELECT last_seq, last_hash FROM devices WHERE id = $1")
        .bind(&device)
        .fetch_one(&mut *tx)
        .await?;
    let (mut last_seq, mut last_hash): (i64, String) =
        (d.try_get("last_seq")?, d.try_get("last_hash")?);

    // The vouchers of the entries to judge (stored ones answer their stored status).
    let mut vids: Vec<String> = entries
        .iter()
        .filter(|e| !known.contains_key(&e.id))
        .map(|e| e.voucher_id.to_hex())
        .collect();
    vids.sort();
    vids.dedup();
    let mut revoked = std::collections::HashMap::new();
    let mut prior: std::collections::HashMap<String, Vec<Prior>> = Default::default();
    for part in vids.chunks(500) {
        let sql = format!(
            "SELECT voucher_id, revoked_at FROM revocations WHERE voucher_id IN ({})",
            placeholders(1, part.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for v in part {
            q = q.bind(v.as_str());
        }
        for r in q.fetch_all(&mut *tx).await? {
            revoked.insert(
                r.try_get::<String, _>("voucher_id")?,
                r.try_get::<i64, _>("revoked_at")?,
            );
        }
        let sql = format!(
            "SELECT r.id, r.voucher_id, r.amount, r.items FROM redemptions r WHERE r.voucher_id IN ({}) AND r.kind = 'redeem' AND r.status = 'accepted' \
             AND NOT EXISTS (SELECT 1 FROM redemptions v WHERE v.kind = 'void' AND v.voids = r.id AND v.status = 'accepted') ORDER BY r.received_at, r.seq",
            placeholders(1, part.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for v in part {
            q = q.bind(v.as_str());
        }
        for r in q.fetch_all(&mut *tx).await? {
            prior
                .entry(r.try_get::<String, _>("voucher_id")?)
                .or_default()
                .push(Prior {
                    id: r.try_get("id")?,
                    amount: r.try_get::<Option<i64>, _>("amount")?.unwrap_or(0),
                    items: serde_json::from_str(&r.try_get::<String, _>("items")?)
                        .unwrap_or_default(),
                });
        }
    }

    // Programs that allow only some providers.
    let mut allowed: std::collections::HashMap<String, Vec<String>> = Default::default();
    for r in sqlx::query("SELECT id, providers FROM programs")
        .fetch_all(&mut *tx)
        .await?
    {
        let list: Vec<String> =
            serde_json::from_str(&r.try_get::<String, _>("providers")?).unwrap_or_default();
        if !list.is_empty() {
            allowed.insert(r.try_get("id")?, list);
        }
    }

    let mut results = Vec::with_capacity(entries.len());
    let mut rows: Vec<NewRow> = Vec::with_capacity(entries.len());
    for (e, c) in entries.iter().zip(&checked) {
        if let Some((owner, status, conflict_with)) = known.get(&e.id) {
            if *owner != device {
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
                status,
                Some("already received".into()),
                conflict_with.clone(),
            ));
            continue;
        }
        // Redemptions are never deleted: an id stored before the checks is still stored now.
        let c = c
            .as_ref()
            .ok_or_else(|| ApiError::Internal("an entry stored earlier is missing".into()))?;
        let reject = if e.seq != last_seq + 1 {
            Some(format!("expected seq {}", last_seq + 1))
        } else if hex::encode(&e.prev_hash) != last_hash {
            Some("prev_hash does not continue this device's chain".into())
        } else if !c.hash_ok {
            Some("hash does not match the entry".into())
        } else if !c.signed {
            Some("device signature is invalid".into())
        } else if e.provider != provider {
            Some("entry is for another provider".into())
        } else {
            None
        };
        if let Some(why) = reject {
            // The chain cannot continue past this entry: stop; what came before is kept.
            results.push(result(e, "rejected", Some(why), None));
            break;
        }
        let (status, reason, conflict_with) = judge(e, &c.voucher, &revoked, &allowed, &mut prior);
        last_seq = e.seq;
        last_hash = hex::encode(&e.hash);
        results.push(result(e, status, reason, conflict_with.clone()));
        rows.push(NewRow {
            e,
            status,
            conflict_with,
        });
    }

    let received = now();
    for part in rows.chunks(100) {
        let sql = format!(
            "INSERT INTO redemptions (id, device_id, seq, kind, voucher_id, voids, amount, currency, items, at, received_at, status, conflict_with, hash) VALUES {}",
            value_rows(part.len(), 14)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in part {
            let e = r.e;
            q = q
                .bind(e.id.clone())
                .bind(device.clone())
                .bind(e.seq)
                .bind(e.kind.as_str())
                .bind(e.voucher_id.to_hex())
                .bind(e.voids.clone())
                .bind(e.amount.map(|a| a as i64))
                .bind(e.currency.clone())
                .bind(serde_json::to_string(&e.items).unwrap_or_default())
                .bind(e.at)
                .bind(received)
                .bind(r.status)
                .bind(r.conflict_with.clone())
                .bind(hex::encode(&e.hash));
        }
        q.execute(&mut *tx).await?;
    }
    if !rows.is_empty() {
        sqlx::query("UPDATE devices SET last_seq = $1, last_hash = $2 WHERE id = $3")
            .bind(last_seq)
            .bind(&last_hash)
            .bind(&device)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Json(serde_json::json!({ "results": results })))
}

/// Decide an entry's status against the voucher and everything accepted before it (stored, or
/// earlier in this push); an accepted entry joins `prior`.
fn judge(
    e: &Entry,
    voucher: &Result<Option<Voucher>, String>,
    revoked: &std::collections::HashMap<String, i64>,
    allowed: &std::collections::HashMap<String, Vec<String>>,
    prior: &mut std::collections::HashMap<String, Vec<Prior>>,
) -> (&'static str, Option<String>, Option<String>) {
    let v = match voucher {
        Ok(None) => {
            // A void: the redemption it voids no longer counts.
            if let Some(target) = &e.voids {
                if let Some(list) = prior.get_mut(&e.voucher_id.to_hex()) {
                    list.retain(|p| &p.id != target);
                }
            }
            return ("accepted", None, None);
        }
        Ok(Some(v)) => v,
        Err(why) => return ("invalid", Some(why.clone()), None),
    };
    if allowed
        .get(&v.program)
        .is_some_and(|list| !list.contains(&e.provider))
    {
        return (
            "invalid",
            Some("the program does not allow this provider".into()),
            None,
        );
    }
    let vid = e.voucher_id.to_hex();
    if revoked.get(&vid).is_some_and(|t| *t <= e.at) {
        return (
            "invalid",
            Some("voucher was cancelled before this redemption".into()),
            None,
        );
    }
    let list = prior.entry(vid).or_default();
    let first = list.first().map(|p| p.id.clone());
    match v.rule {
        RedemptionRule::Single => {
            if first.is_some() {
                return (
                    "conflict",
                    Some("single-use voucher already redeemed".into()),
                    first,
                );
            }
        }
        RedemptionRule::Partial => {
            let used: i64 = list.iter().map(|p| p.amount).sum();
            let value = v.value.as_ref().map(|x| x.amount as i64).unwrap_or(0);
            if used + e.amount.unwrap_or(0) as i64 > value {
                return (
                    "conflict",
                    Some(format!("over-redeemed: {used} already used of {value}")),
                    first,
                );
            }
            for want in &e.items {
                let entitled = v
                    .items
                    .iter()
                    .find(|i| i.code == want.code)
                    .map(|i| i.quantity)
                    .unwrap_or(0);
                let taken: u64 = list
                    .iter()
                    .flat_map(|p| &p.items)
                    .filter(|i| i.code == want.code)
                    .map(|i| i.quantity)
                    .sum();
                if taken + want.quantity > entitled {
                    return (
                        "conflict",
                        Some(format!(
                            "over-redeemed: item {} {taken} already used of {entitled}",
                            want.code
                        )),
                        first,
                    );
                }
            }
        }
    }
    list.push(Prior {
        id: e.id.clone(),
        amount: e.amount.unwrap_or(0) as i64,
        items: e.items.clone(),
    });
    ("accepted", None, None)
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
