//! Service providers, one-time enrolment codes, and device enrolment. Codes and device tokens
//! are stored as SHA-256 hashes only.
//!
//! An enrolment code expires (7 days by default) and enrols exactly one device, even when many
//! phones post it at once (the code is claimed by one conditional `UPDATE`, which PostgreSQL
//! and SQLite both serialise). Failed attempts are limited per client address (429 with
//! `Retry-After`). A public key must be a valid Ed25519 point of full order.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde::Deserialize;
use sqlx::Row;

use super::{body_limit, MAX_JSON};
use crate::audit::{self, Actor, Event};
use crate::auth::{need, Perm::*, Principal, Scope};
use crate::error::ApiJson;
use crate::limits::ClientAddr;
use crate::secret::{hash_secret, random_token};
use crate::{now, ApiError, AppState};
use axum::Extension;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/providers",
            need(
                ManageProviders,
                Scope::Any,
                body_limit(post(create_provider), MAX_JSON),
            )
            .merge(need(ReadProviders, Scope::Any, get(list_providers))),
        )
        .route(
            "/api/v1/providers/{id}/enrolment-codes",
            need(
                ManageProviders,
                Scope::Provider,
                body_limit(post(new_code), MAX_JSON),
            ),
        )
        .route("/api/v1/devices/enrol", body_limit(post(enrol), MAX_JSON))
        .route(
            "/api/v1/providers/{id}",
            need(ReadProviders, Scope::Provider, get(one_provider)).merge(need(
                ManageProviders,
                Scope::Provider,
                body_limit(patch(update_provider), MAX_JSON),
            )),
        )
        .route(
            "/api/v1/devices",
            need(ReadProviders, Scope::Any, get(list_devices)),
        )
        .route(
            "/api/v1/devices/{id}/revoke",
            need(
                ManageProviders,
                Scope::Any,
                body_limit(post(revoke), MAX_JSON),
            ),
        )
}

#[derive(Deserialize)]
pub(crate) struct NewProvider {
    id: String,
    name: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    payout_account: Option<String>,
    /// Where the provider is paid (bank account or mobile money), needed for its claims.
    #[serde(default)]
    payout: Option<evoucher_core::payable::Account>,
}

/// An edit of a provider: any of these, the rest kept.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderEdit {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub payout: Option<evoucher_core::payable::Account>,
}

/// Change a provider's name, category or payout account (audited, the account shown only as
/// changed: it is a payment detail).
pub(crate) async fn update_provider(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    Path(id): Path<String>,
    ApiJson(e): ApiJson<ProviderEdit>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if let Some(p) = &e.payout {
        p.check()
            .map_err(|m| ApiError::BadRequest(format!("payout.{m}")))?;
    }
    if e.name
        .as_deref()
        .is_some_and(|n| n.trim().is_empty() || n.chars().count() > 140)
    {
        return Err(ApiError::BadRequest("name: 1 to 140 characters".into()));
    }
    let mut tx = s.begin_write().await?;
    let r = sqlx::query("SELECT name, category, payout FROM providers WHERE id = $1")
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound("no such provider"))?;
    let before_name: String = r.try_get("name")?;
    let before_category: Option<String> = r.try_get("category")?;
    let before_payout: Option<String> = r.try_get("payout")?;
    let name = e.name.clone().unwrap_or(before_name.clone());
    let category = e.category.clone().or(before_category.clone());
    let payout = match &e.payout {
        Some(p) => Some(serde_json::to_string(p).unwrap_or_default()),
        None => before_payout.clone(),
    };
    sqlx::query("UPDATE providers SET name = $1, category = $2, payout = $3 WHERE id = $4")
        .bind(&name)
        .bind(category.clone())
        .bind(payout.clone())
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    audit::by(
        &mut tx,
        &s,
        &who,
        client,
        Event::new(
            "provider.update",
            "provider",
            &id,
            serde_json::json!({
                "before": {"name": before_name, "category": before_category, "payout": before_payout.is_some()},
                "after": {"name": name, "category": category, "payout_changed": payout != before_payout},
            }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(serde_json::json!({"id": id})))
}

pub(crate) async fn create_provider(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    ApiJson(p): ApiJson<NewProvider>,
) -> Result<StatusCode, ApiError> {
    if p.id.is_empty() || p.id.len() > 64 || p.name.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "provider id (1 to 64 characters) and name are required".into(),
        ));
    }
    if let Some(a) = &p.payout {
        a.check()
            .map_err(|m| ApiError::BadRequest(format!("payout.{m}")))?;
    }
    // One statement: of two creates at once (any server process), one inserts and the other
    // finds the row there.
    let mut tx = s.begin_write().await?;
    let n = sqlx::query("INSERT INTO providers (id, name, category, payout_account, created_at, payout) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING")
        .bind(&p.id)
        .bind(&p.name)
        .bind(p.category.clone())
        .bind(p.payout_account.clone())
        .bind(now())
        .bind(p.payout.as_ref().map(|a| serde_json::to_string(a).unwrap_or_default()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::Conflict(format!("provider {} exists", p.id)));
    }
    audit::by(
        &mut tx,
        &s,
        &who,
        client,
        Event::new(
            "provider.create",
            "provider",
            &p.id,
            serde_json::json!({"after": {"name": p.name, "category": p.category, "payout_account": p.payout_account.is_some(), "payout": p.payout.is_some()}}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::CREATED)
}

/// A one-time enrolment code for a new device of this provider.
pub(crate) async fn new_code(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    if sqlx::query("SELECT 1 FROM providers WHERE id = $1")
        .bind(&id)
        .fetch_optional(&s.db)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("no such provider"));
    }
    let code = random_token(10)?;
    let t = now();
    let expires = t + s.enrolment_ttl;
    let mut tx = s.begin_write().await?;
    sqlx::query("INSERT INTO enrolment_codes (code_hash, provider_id, created_at, used_at, expires_at) VALUES ($1, $2, $3, NULL, $4)")
        .bind(hash_secret(&code))
        .bind(&id)
        .bind(t)
        .bind(expires)
        .execute(&mut *tx)
        .await?;
    audit::by(
        &mut tx,
        &s,
        &who,
        client,
        Event::new(
            "provider.enrolment_code",
            "provider",
            &id,
            serde_json::json!({"after": {"expires_at": expires}}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"code": code, "provider_id": id, "expires_at": expires})),
    ))
}

#[derive(Deserialize)]
struct Enrol {
    code: String,
    /// The device's Ed25519 public key (base64url, 32 bytes): the key that signs its ledger.
    public_key: String,
}

/// A valid Ed25519 public key of full order (not all zeros, not a small-order point).
fn device_key(b64: &str) -> Result<[u8; 32], ApiError> {
    use base64::Engine;
    let bad = || {
        ApiError::BadRequest(
            "public_key: base64url of a 32-byte Ed25519 public key (a valid point, not of small order)"
                .into(),
        )
    };
    let raw: [u8; 32] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad)?;
    match ed25519_dalek::VerifyingKey::from_bytes(&raw) {
        Ok(k) if !k.is_weak() => Ok(raw),
        _ => Err(bad()),
    }
}

/// A device enrols with a one-time code and its public key, and gets its token (shown once).
async fn enrol(
    State(s): State<AppState>,
    who: ClientAddr,
    ApiJson(e): ApiJson<Enrol>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    s.enrol_failures.check(&who).map_err(ApiError::TooMany)?;
    let result = enrol_with(&s, &e).await;
    if matches!(result, Err(ApiError::Denied(_))) {
        s.enrol_failures.fail(who);
    }
    result
}

async fn enrol_with(
    s: &AppState,
    e: &Enrol,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    device_key(&e.public_key)?;
    let t = now();
    let code_hash = hash_secret(&e.code);
    let mut tx = s.begin_write().await?;
    // Claim the code: one statement, so of many phones posting it at once exactly one wins.
    let claimed = sqlx::query(
        "UPDATE enrolment_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL \
         AND (expires_at IS NULL OR expires_at > $1)",
    )
    .bind(t)
    .bind(&code_hash)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let row = sqlx::query(
        "SELECT provider_id, used_at, expires_at FROM enrolment_codes WHERE code_hash = $1",
    )
    .bind(&code_hash)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::Denied("unknown enrolment code".into()))?;
    if claimed != 1 {
        let expired = row
            .try_get::<Option<i64>, _>("expires_at")?
            .is_some_and(|x| x <= t);
        return Err(ApiError::Denied(
            if row.try_get::<Option<i64>, _>("used_at")?.is_some() {
                "this enrolment code was already used: ask the program for a new one"
            } else if expired {
                "this enrolment code has expired: ask the program for a new one"
            } else {
                "enrolment code refused"
            }
            .into(),
        ));
    }
    let provider: String = row.try_get("provider_id")?;
    if sqlx::query("SELECT 1 FROM devices WHERE public_key = $1")
        .bind(&e.public_key)
        .fetch_optional(&mut *tx)
        .await?
        .is_some()
    {
        // Rolled back: the code stays usable.
        return Err(ApiError::Conflict(
            "this device key is already enrolled".into(),
        ));
    }
    let category: Option<String> = sqlx::query("SELECT category FROM providers WHERE id = $1")
        .bind(&provider)
        .fetch_one(&mut *tx)
        .await?
        .try_get("category")?;
    let token = random_token(32)?;
    let device_id = evoucher_core::ledger::device_id_of(&e.public_key);
    sqlx::query("INSERT INTO devices (id, provider_id, public_key, token_hash, enrolled_at, last_seq, last_hash) VALUES ($1, $2, $3, $4, $5, 0, $6)")
        .bind(&device_id)
        .bind(&provider)
        .bind(&e.public_key)
        .bind(hash_secret(&token))
        .bind(t)
        .bind(hex::encode([0u8; 32]))
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        s.postgres,
        &Actor::device(&device_id),
        None,
        Event::new(
            "device.enrol",
            "device",
            &device_id,
            serde_json::json!({"after": {"provider": provider}}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "device_id": device_id, "provider_id": provider, "category": category, "token": token,
        })),
    ))
}

const PROVIDER: &str = "SELECT p.id, p.name, p.category, p.payout_account, p.payout, p.created_at, \
     (SELECT COUNT(*) FROM devices d WHERE d.provider_id = p.id AND d.revoked_at IS NULL) AS devices, \
     (SELECT COUNT(*) FROM enrolment_codes c WHERE c.provider_id = p.id AND c.used_at IS NULL \
       AND (c.expires_at IS NULL OR c.expires_at > $1)) AS pending_codes \
     FROM providers p";

fn provider_json(r: &sqlx::any::AnyRow) -> Result<serde_json::Value, sqlx::Error> {
    Ok(serde_json::json!({
        "id": r.try_get::<String, _>("id")?,
        "name": r.try_get::<String, _>("name")?,
        "category": r.try_get::<Option<String>, _>("category")?,
        "payout_account": r.try_get::<Option<String>, _>("payout_account")?,
        "payout": r
            .try_get::<Option<String>, _>("payout")?
            .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok()),
        "created_at": r.try_get::<i64, _>("created_at")?,
        "devices": r.try_get::<i64, _>("devices")?,
        "pending_codes": r.try_get::<i64, _>("pending_codes")?,
    }))
}

/// Every provider (a provider account: its own), with its active devices and unused
/// enrolment codes.
pub(crate) async fn list_providers(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{PROVIDER} WHERE ($2 = '' OR p.id = $2) ORDER BY p.id"
    )))
    .bind(now())
    .bind(who.own_provider().unwrap_or(""))
    .fetch_all(&s.db)
    .await?;
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(provider_json)
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(serde_json::json!({ "providers": list })))
}

pub(crate) async fn one_provider(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!("{PROVIDER} WHERE p.id = $2")))
        .bind(now())
        .bind(&id)
        .fetch_optional(&s.db)
        .await?
        .ok_or(ApiError::NotFound("no such provider"))?;
    Ok(Json(provider_json(&r)?))
}

#[derive(Deserialize)]
pub(crate) struct DeviceFilter {
    #[serde(default)]
    provider: Option<String>,
}

/// Devices (of one provider with `?provider=`): when each enrolled and was last seen, its
/// chain head, its redemptions by status, and whether it was revoked.
pub(crate) async fn list_devices(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(f): Query<DeviceFilter>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // A provider account sees its own devices whatever it asks for.
    let provider = match who.own_provider() {
        Some(own) => Some(own.to_owned()),
        None => f.provider,
    };
    let rows = sqlx::query(
        "SELECT d.id, d.provider_id, d.enrolled_at, d.last_seen_at, d.last_seq, d.last_at, d.revoked_at, \
         (SELECT COUNT(*) FROM redemptions r WHERE r.device_id = d.id AND r.status = 'accepted') AS accepted, \
         (SELECT COUNT(*) FROM redemptions r WHERE r.device_id = d.id AND r.status = 'conflict') AS conflict, \
         (SELECT COUNT(*) FROM redemptions r WHERE r.device_id = d.id AND r.status = 'invalid') AS invalid, \
         (SELECT COUNT(*) FROM redemptions r WHERE r.device_id = d.id AND r.status = 'suspect') AS suspect \
         FROM devices d WHERE ($1 = '' OR d.provider_id = $1) ORDER BY d.provider_id, d.enrolled_at, d.id",
    )
    .bind(provider.unwrap_or_default())
    .fetch_all(&s.db)
    .await?;
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            Ok(serde_json::json!({
                "id": r.try_get::<String, _>("id")?,
                "provider_id": r.try_get::<String, _>("provider_id")?,
                "enrolled_at": r.try_get::<i64, _>("enrolled_at")?,
                "last_seen_at": r.try_get::<Option<i64>, _>("last_seen_at")?,
                "last_seq": r.try_get::<i64, _>("last_seq")?,
                "last_entry_at": r.try_get::<Option<i64>, _>("last_at")?,
                "revoked_at": r.try_get::<Option<i64>, _>("revoked_at")?,
                "redemptions": {
                    "accepted": r.try_get::<i64, _>("accepted")?,
                    "conflict": r.try_get::<i64, _>("conflict")?,
                    "invalid": r.try_get::<i64, _>("invalid")?,
                    "suspect": r.try_get::<i64, _>("suspect")?,
                },
            }))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Json(serde_json::json!({ "devices": list })))
}

/// Revoke a device (a lost or stolen phone): its token stops working at once. What it synced
/// stays. Idempotent.
pub(crate) async fn revoke(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let t = now();
    let mut tx = s.begin_write().await?;
    let n = sqlx::query("UPDATE devices SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(t)
        .bind(&id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let r = sqlx::query("SELECT revoked_at FROM devices WHERE id = $1")
        .bind(&id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound("no such device"))?;
    if n > 0 {
        audit::by(
            &mut tx,
            &s,
            &who,
            client,
            Event::new(
                "device.revoke",
                "device",
                &id,
                serde_json::json!({"before": {"revoked": false}, "after": {"revoked": true}}),
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(
        serde_json::json!({"device_id": id, "revoked_at": r.try_get::<Option<i64>, _>("revoked_at")?}),
    ))
}
