//! Redemption sync: devices push their ledger entries in order. The server trusts nothing a
//! phone says: a device's signature proves which phone sent an entry, not that it is true.
//!
//! Each entry is first checked as a link of the device's chain (sequence, previous hash, hash,
//! device signature); an entry that breaks the chain is `rejected` and the push stops there
//! (nothing after it can be placed). A well-chained entry is stored and judged by the rulebook
//! the phones use ([`evoucher_core::rules`]) against what the *server* knows: the voucher
//! re-verified against every issuer key the server ever had, the provider and category the
//! server registered for the device, the program's allowed providers, the cancellation, and
//! every redemption already accepted by any device:
//! - `accepted`: payable;
//! - `conflict`: the voucher was already used (single-use) or not that much remains (partial),
//!   by redemptions accepted earlier; names the first of them;
//! - `invalid`: wrong in itself (another provider, category, amount, currency or items than
//!   the voucher allows, an amount out of range, expired, cancelled before, a void of another
//!   device's, an unknown or a not-accepted redemption);
//! - `suspect`: allowed by the rules but not believable: dated more than [`MAX_CLOCK_SKEW`]
//!   after the server received it, before the device was enrolled or before its previous entry,
//!   or a redemption of a voucher whose cancellation the device had already fetched.
//!
//! Only `accepted` redemptions count against vouchers and are ever paid. Idempotent by entry
//! id; a push commits as one transaction, so a push cut off midway stores nothing and is sent
//! again whole.

use std::collections::{HashMap, HashSet};

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use evoucher_core::ledger::{Entry, EntryKind, ItemQty};
use evoucher_core::rules::{self, Context, Counted, Taking, VoidTarget};
use evoucher_core::voucher::{Voucher, VoucherId, MAX_AMOUNT};
use evoucher_core::TrustStore;
use serde::Deserialize;
use sqlx::Row;

use super::{body_limit, lock_for_writes, placeholders, value_rows};
use crate::auth::{device, Device};
use crate::error::ApiJson;
use crate::{now, ApiError, AppState};

/// Most entries accepted in one push.
pub const MAX_BATCH: usize = 1000;
/// Largest push body: 1,000 entries of about 1 to 2 KB of JSON each (the voucher text is kept
/// in every entry).
pub const MAX_PUSH_BYTES: usize = 4 * 1024 * 1024;
/// How far a phone's clock may be ahead of or behind the server's before its entries are
/// `suspect` (10 minutes).
pub const MAX_CLOCK_SKEW: i64 = 600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/sync/redemptions",
            device(body_limit(post(push), MAX_PUSH_BYTES)),
        )
        .route("/api/v1/sync/status", device(get(status)))
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

/// A status with its reason and, for conflicts, the redemption it collides with.
#[derive(Debug, Clone)]
struct Judged {
    status: &'static str,
    reason: Option<String>,
    conflict_with: Option<String>,
}

impl Judged {
    fn accepted() -> Self {
        Judged {
            status: "accepted",
            reason: None,
            conflict_with: None,
        }
    }
    fn invalid(why: impl Into<String>) -> Self {
        Judged {
            status: "invalid",
            reason: Some(why.into()),
            conflict_with: None,
        }
    }
    fn suspect(why: impl Into<String>) -> Self {
        Judged {
            status: "suspect",
            reason: Some(why.into()),
            conflict_with: None,
        }
    }
}

fn result(e: &Entry, j: &Judged) -> serde_json::Value {
    serde_json::json!({"id": e.id, "seq": e.seq, "status": j.status, "reason": j.reason, "conflict_with": j.conflict_with})
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
    skip: &HashSet<String>,
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

/// `IN (…)` over `values`, 500 at a time: every row `q` finds, with `$1..` taken by `fixed`.
async fn rows_in(
    tx: &mut sqlx::AnyConnection,
    sql: &str,
    fixed: &[&str],
    values: &[String],
) -> Result<Vec<sqlx::any::AnyRow>, ApiError> {
    let mut out = Vec::new();
    for part in values.chunks(500) {
        let sql = sql.replace("{IN}", &placeholders(fixed.len() + 1, part.len()));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for f in fixed {
            q = q.bind(*f);
        }
        for v in part {
            q = q.bind(v.as_str());
        }
        out.extend(q.fetch_all(&mut *tx).await?);
    }
    Ok(out)
}

/// The ids of `entries` this device has stored already (read before the push's transaction;
/// it only ever grows).
async fn stored_ids(
    s: &AppState,
    device: &str,
    entries: &[Entry],
) -> Result<HashSet<String>, ApiError> {
    let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
    let mut c = s.db.acquire().await?;
    let rows = rows_in(
        &mut c,
        "SELECT id FROM redemptions WHERE device_id = $1 AND id IN ({IN})",
        &[device],
        &ids,
    )
    .await?;
    rows.iter()
        .map(|r| Ok(r.try_get::<String, _>("id")?))
        .collect()
}

/// A redemption accepted earlier (or earlier in this push) that counts against its voucher.
struct Prior {
    id: String,
    device: String,
    provider: String,
    at: i64,
    amount: Option<u64>,
    items: Vec<ItemQty>,
}

impl Prior {
    fn counted(&self) -> Counted<'_> {
        Counted {
            id: &self.id,
            at: self.at,
            provider: &self.provider,
            device: &self.device,
            amount: self.amount,
            items: &self.items,
        }
    }
}

/// A redemption a void may name, as the server knows it.
#[derive(Clone)]
struct Target {
    device: String,
    is_redemption: bool,
    voucher_id: VoucherId,
    accepted: bool,
    voided: bool,
    /// The claim that has it approved for payment (payable, paid or failed), if any: money
    /// decided on cannot be taken back by a phone.
    reimbursed: Option<String>,
}

/// Everything the judging of one push reads from the database, under the push's lock.
#[derive(Default)]
struct Known {
    /// Entries stored already: (device, judged).
    stored: HashMap<String, (String, Judged)>,
    /// Voucher id (hex) → (revoked_at, feed number).
    revoked: HashMap<String, (i64, i64)>,
    /// Voucher id (hex) → accepted, not voided redemptions, oldest first.
    prior: HashMap<String, Vec<Prior>>,
    /// Redemptions named by voids of this push, and this push's own entries as judged.
    targets: HashMap<String, Target>,
    /// Program → the providers allowed to redeem (programs that restrict them).
    allowed: HashMap<String, Vec<String>>,
    /// (cursor, head_seq) of each revocation pull of this device: it had every cancellation up
    /// to `cursor` once its chain was at `head_seq`.
    pulls: Vec<(i64, i64)>,
}

async fn load(
    tx: &mut sqlx::AnyConnection,
    dev: &Device,
    entries: &[Entry],
) -> Result<Known, ApiError> {
    let mut k = Known::default();
    let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
    for r in rows_in(
        tx,
        "SELECT id, device_id, status, reason, conflict_with FROM redemptions WHERE id IN ({IN})",
        &[],
        &ids,
    )
    .await?
    {
        let status: String = r.try_get("status")?;
        k.stored.insert(
            r.try_get("id")?,
            (
                r.try_get("device_id")?,
                Judged {
                    status: stored_status(&status),
                    reason: r.try_get("reason")?,
                    conflict_with: r.try_get("conflict_with")?,
                },
            ),
        );
    }
    let fresh: Vec<&Entry> = entries
        .iter()
        .filter(|e| !k.stored.contains_key(&e.id))
        .collect();
    let mut vids: Vec<String> = fresh.iter().map(|e| e.voucher_id.to_hex()).collect();
    vids.sort();
    vids.dedup();
    for r in rows_in(
        tx,
        "SELECT voucher_id, revoked_at, seq FROM revocations WHERE voucher_id IN ({IN})",
        &[],
        &vids,
    )
    .await?
    {
        k.revoked.insert(
            r.try_get("voucher_id")?,
            (r.try_get("revoked_at")?, r.try_get("seq")?),
        );
    }
    for r in rows_in(
        tx,
        "SELECT r.id, r.device_id, d.provider_id, r.voucher_id, r.at, r.amount, r.items FROM redemptions r \
         JOIN devices d ON d.id = r.device_id \
         WHERE r.voucher_id IN ({IN}) AND r.kind = 'redeem' AND r.status = 'accepted' \
         AND NOT EXISTS (SELECT 1 FROM redemptions v WHERE v.kind = 'void' AND v.voids = r.id AND v.status = 'accepted') \
         ORDER BY r.received_at, r.device_id, r.seq",
        &[],
        &vids,
    )
    .await?
    {
        k.prior
            .entry(r.try_get("voucher_id")?)
            .or_default()
            .push(Prior {
                id: r.try_get("id")?,
                device: r.try_get("device_id")?,
                provider: r.try_get("provider_id")?,
                at: r.try_get("at")?,
                amount: r
                    .try_get::<Option<i64>, _>("amount")?
                    .and_then(|a| u64::try_from(a).ok()),
                items: serde_json::from_str(&r.try_get::<String, _>("items")?)
                    .unwrap_or_default(),
            });
    }
    let named: Vec<String> = fresh.iter().filter_map(|e| e.voids.clone()).collect();
    for r in rows_in(
        tx,
        "SELECT r.id, r.device_id, r.kind, r.voucher_id, r.status, \
         (SELECT COUNT(*) FROM redemptions v WHERE v.kind = 'void' AND v.voids = r.id AND v.status = 'accepted') AS voided, \
         (SELECT MIN(c.id) FROM claimed x JOIN claims c ON c.id = x.claim_id WHERE x.redemption_id = r.id AND c.state IN ('payable', 'paid', 'failed')) AS reimbursed \
         FROM redemptions r WHERE r.id IN ({IN})",
        &[],
        &named,
    )
    .await?
    {
        let vid: String = r.try_get("voucher_id")?;
        let Some(voucher_id) = VoucherId::from_hex(&vid) else {
            continue;
        };
        k.targets.insert(
            r.try_get("id")?,
            Target {
                device: r.try_get("device_id")?,
                is_redemption: r.try_get::<String, _>("kind")? == "redeem",
                voucher_id,
                accepted: r.try_get::<String, _>("status")? == "accepted",
                voided: r.try_get::<i64, _>("voided")? > 0,
                reimbursed: r.try_get("reimbursed")?,
            },
        );
    }
    for r in sqlx::query("SELECT id, providers FROM programs")
        .fetch_all(&mut *tx)
        .await?
    {
        let list: Vec<String> =
            serde_json::from_str(&r.try_get::<String, _>("providers")?).unwrap_or_default();
        if !list.is_empty() {
            k.allowed.insert(r.try_get("id")?, list);
        }
    }
    for r in sqlx::query("SELECT cursor, head_seq FROM revocation_pulls WHERE device_id = $1")
        .bind(&dev.id)
        .fetch_all(&mut *tx)
        .await?
    {
        k.pulls.push((r.try_get("cursor")?, r.try_get("head_seq")?));
    }
    Ok(k)
}

/// The `'static` name of a stored status.
fn stored_status(s: &str) -> &'static str {
    match s {
        "accepted" => "accepted",
        "conflict" => "conflict",
        "suspect" => "suspect",
        _ => "invalid",
    }
}

/// Why an entry cannot be placed in the device's chain, if it cannot.
fn chain_break(e: &Entry, c: &Checked, last_seq: i64, last_hash: &str) -> Option<String> {
    if e.seq != last_seq + 1 {
        Some(format!("expected seq {}", last_seq + 1))
    } else if hex::encode(&e.prev_hash) != last_hash {
        Some("prev_hash does not continue this device's chain".into())
    } else if !c.hash_ok {
        Some("hash does not match the entry".into())
    } else if !c.signed {
        Some("device signature is invalid".into())
    } else {
        None
    }
}

/// Facts about the push and the device that the judging of each entry needs.
struct Scene<'a> {
    dev: &'a Device,
    received: i64,
    /// The `at` of the device's previous entry (stored, or earlier in this push).
    last_at: Option<i64>,
}

/// Decide an entry's status against the voucher and everything accepted before it (stored, or
/// earlier in this push). An accepted redemption joins `prior`; an accepted void takes its
/// redemption out of it.
fn judge(e: &Entry, c: &Checked, k: &mut Known, sc: &Scene<'_>) -> Judged {
    let dev = sc.dev;
    if e.provider != dev.provider {
        return Judged::invalid(format!(
            "entry is for provider {}, but this device is enrolled for {}",
            e.provider, dev.provider
        ));
    }
    let vid = e.voucher_id.to_hex();
    if e.kind == EntryKind::Void {
        let Some(target_id) = e.voids.as_deref() else {
            return Judged::invalid("a void that names no redemption");
        };
        let t = k.targets.get(target_id).map(|t| VoidTarget {
            is_redemption: t.is_redemption,
            device: &t.device,
            voucher_id: &t.voucher_id,
            accepted: t.accepted,
            voided: t.voided,
        });
        if let Err(why) = rules::check_void(t.as_ref(), &dev.id, &e.voucher_id) {
            return Judged::invalid(format!("void not accepted: {why}"));
        }
        if let Some(claim) = k.targets.get(target_id).and_then(|t| t.reimbursed.clone()) {
            return Judged::invalid(format!(
                "void not accepted: the redemption is approved for payment in claim {claim}; ask the program to correct it"
            ));
        }
        if let Some(t) = k.targets.get_mut(target_id) {
            t.voided = true;
        }
        if let Some(list) = k.prior.get_mut(&vid) {
            list.retain(|p| p.id != target_id);
        }
        return Judged::accepted();
    }
    let v = match &c.voucher {
        Ok(Some(v)) => v,
        Ok(None) => return Judged::invalid("a redemption without a voucher"),
        Err(why) => return Judged::invalid(why.clone()),
    };
    if k.allowed
        .get(&v.program)
        .is_some_and(|list| !list.contains(&dev.provider))
    {
        return Judged::invalid("the program does not allow this provider");
    }
    if e.amount.is_some_and(|a| a > MAX_AMOUNT) {
        return Judged::invalid("the amount is over the largest a voucher can carry (2^63 - 1)");
    }
    let revoked = k.revoked.get(&vid).copied();
    let list = k.prior.entry(vid).or_default();
    let counted: Vec<Counted<'_>> = list.iter().map(Prior::counted).collect();
    let ctx = Context {
        provider: &dev.provider,
        category: dev.category.as_deref(),
        at: e.at,
        revoked_at: revoked.map(|r| r.0),
    };
    let taking = Taking {
        amount: e.amount,
        currency: e.currency.as_deref(),
        items: &e.items,
    };
    if let Err(r) = rules::check(v, &counted, &taking, &ctx) {
        return if r.is_conflict() {
            Judged {
                status: "conflict",
                reason: Some(r.to_string()),
                conflict_with: list.first().map(|p| p.id.clone()),
            }
        } else {
            Judged::invalid(r.to_string())
        };
    }
    if let Some(why) = unbelievable(e, revoked, &k.pulls, sc) {
        return Judged::suspect(why);
    }
    list.push(Prior {
        id: e.id.clone(),
        device: dev.id.clone(),
        provider: dev.provider.clone(),
        at: e.at,
        amount: e.amount,
        items: e.items.clone(),
    });
    Judged::accepted()
}

/// Why a redemption the rules allow is still not believable, if it is not.
fn unbelievable(
    e: &Entry,
    revoked: Option<(i64, i64)>,
    pulls: &[(i64, i64)],
    sc: &Scene<'_>,
) -> Option<String> {
    let at = evoucher_core::time::rfc3339(e.at);
    if e.at > sc.received + MAX_CLOCK_SKEW {
        return Some(format!(
            "dated {at}, {} s after the server received it (the phone's clock may be wrong)",
            e.at - sc.received
        ));
    }
    if sc.last_at.is_some_and(|l| e.at < l - MAX_CLOCK_SKEW) {
        return Some(format!("dated {at}, before this device's previous entry"));
    }
    if e.at < sc.dev.enrolled_at - MAX_CLOCK_SKEW {
        return Some(format!("dated {at}, before this device was enrolled"));
    }
    if let Some((_, feed)) = revoked {
        // The device's chain was at `head` when it fetched this cancellation: an entry after
        // that was made by a phone that knew the voucher was cancelled.
        if pulls
            .iter()
            .any(|(cursor, head)| *cursor >= feed && *head < e.seq)
        {
            return Some(
                "the voucher was cancelled and this device had already received the cancellation"
                    .into(),
            );
        }
    }
    None
}

/// A row to insert.
struct NewRow<'a> {
    e: &'a Entry,
    j: Judged,
}

async fn push(
    State(s): State<AppState>,
    Extension(dev): Extension<Device>,
    ApiJson(p): ApiJson<Push>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    let stored = stored_ids(&s, &dev.id, &entries).await?;
    let checked = {
        let entries = entries.clone();
        let public = dev.public;
        tokio::task::spawn_blocking(move || check_all(&entries, &stored, &public, &trust))
            .await
            .map_err(|_| ApiError::Internal("entry checks failed".into()))??
    };
    let received = now();

    // One transaction per push: all of it is stored, or (server killed, database error) none of
    // it, and the device sends it again. On PostgreSQL, pushes from different devices (and
    // server processes) are serialised on the redemptions table so two of them cannot both
    // accept the same voucher.
    let mut tx = s.begin_write().await?;
    lock_for_writes(&mut tx, &s, "redemptions").await?;
    let mut known = load(&mut tx, &dev, &entries).await?;
    let d = sqlx::query("SELECT last_seq, last_hash, last_at FROM devices WHERE id = $1")
        .bind(&dev.id)
        .fetch_one(&mut *tx)
        .await?;
    let (mut last_seq, mut last_hash): (i64, String) =
        (d.try_get("last_seq")?, d.try_get("last_hash")?);
    let mut scene = Scene {
        dev: &dev,
        received,
        last_at: d.try_get("last_at")?,
    };

    let mut results = Vec::with_capacity(entries.len());
    let mut rows: Vec<NewRow> = Vec::with_capacity(entries.len());
    for (e, c) in entries.iter().zip(&checked) {
        if let Some((owner, j)) = known.stored.get(&e.id) {
            if *owner != dev.id {
                let j = Judged {
                    status: "rejected",
                    reason: Some("entry id belongs to another device".into()),
                    conflict_with: None,
                };
                results.push(result(e, &j));
                break;
            }
            results.push(result(e, j));
            continue;
        }
        // Redemptions are never deleted: an id stored before the checks is still stored now.
        let c = c
            .as_ref()
            .ok_or_else(|| ApiError::Internal("an entry stored earlier is missing".into()))?;
        if let Some(why) = chain_break(e, c, last_seq, &last_hash) {
            // The chain cannot continue past this entry: stop; what came before is kept.
            let j = Judged {
                status: "rejected",
                reason: Some(why),
                conflict_with: None,
            };
            let mut r = result(e, &j);
            // The sequence number the server expects next: a phone whose entries the server
            // lost (a database restored from a backup) sends them again from there.
            r["expected_seq"] = (last_seq + 1).into();
            results.push(r);
            break;
        }
        let j = judge(e, c, &mut known, &scene);
        known.targets.insert(
            e.id.clone(),
            Target {
                device: dev.id.clone(),
                is_redemption: e.kind == EntryKind::Redeem,
                voucher_id: e.voucher_id,
                accepted: j.status == "accepted",
                voided: false,
                reimbursed: None,
            },
        );
        last_seq = e.seq;
        last_hash = hex::encode(&e.hash);
        // A date past the server's clock does not move the device's clock forward (one
        // future-dated entry must not make every later honest entry look backdated).
        let at = e.at.min(received);
        scene.last_at = Some(scene.last_at.map_or(at, |l| l.max(at)));
        results.push(result(e, &j));
        rows.push(NewRow { e, j });
    }

    for part in rows.chunks(100) {
        let sql = format!(
            "INSERT INTO redemptions (id, device_id, seq, kind, voucher_id, voids, amount, currency, items, at, received_at, status, conflict_with, hash, reason) VALUES {}",
            value_rows(part.len(), 15)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in part {
            let e = r.e;
            q = q
                .bind(e.id.clone())
                .bind(dev.id.clone())
                .bind(e.seq)
                .bind(e.kind.as_str())
                .bind(e.voucher_id.to_hex())
                .bind(e.voids.clone())
                // Never wrapped: an amount a signed 64-bit column cannot hold is not stored
                // (the entry is `invalid`).
                .bind(e.amount.and_then(|a| i64::try_from(a).ok()))
                .bind(e.currency.clone())
                .bind(serde_json::to_string(&e.items).unwrap_or_default())
                .bind(e.at)
                .bind(received)
                .bind(r.j.status)
                .bind(r.j.conflict_with.clone())
                .bind(hex::encode(&e.hash))
                .bind(r.j.reason.clone());
        }
        q.execute(&mut *tx).await?;
    }
    sqlx::query(
        "UPDATE devices SET last_seq = $1, last_hash = $2, last_at = $3, last_seen_at = $4 WHERE id = $5",
    )
    .bind(last_seq)
    .bind(&last_hash)
    .bind(scene.last_at)
    .bind(received)
    .bind(&dev.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(serde_json::json!({ "results": results })))
}

#[derive(Deserialize)]
struct After {
    #[serde(default)]
    after_seq: i64,
}

/// The statuses of this device's redemptions after a sequence number.
async fn status(
    State(s): State<AppState>,
    Extension(dev): Extension<Device>,
    Query(q): Query<After>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let rows = sqlx::query("SELECT id, seq, status, reason, conflict_with FROM redemptions WHERE device_id = $1 AND seq > $2 ORDER BY seq LIMIT 1000")
        .bind(&dev.id)
        .bind(q.after_seq)
        .fetch_all(&s.db)
        .await?;
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| Ok(serde_json::json!({"id": r.try_get::<String, _>("id")?, "seq": r.try_get::<i64, _>("seq")?, "status": r.try_get::<String, _>("status")?, "reason": r.try_get::<Option<String>, _>("reason")?, "conflict_with": r.try_get::<Option<String>, _>("conflict_with")?})))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(
        serde_json::json!({ "device_id": dev.id, "redemptions": list }),
    ))
}
