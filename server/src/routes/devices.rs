//! Service providers, one-time enrolment codes, and device enrolment. Codes and device tokens
//! are stored as SHA-256 hashes only.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{body_limit, require_admin, MAX_JSON};
use crate::error::ApiJson;
use crate::{now, ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/providers",
            body_limit(post(create_provider), MAX_JSON),
        )
        .route(
            "/api/v1/providers/{id}/enrolment-codes",
            body_limit(post(new_code), MAX_JSON),
        )
        .route("/api/v1/devices/enrol", body_limit(post(enrol), MAX_JSON))
}

pub fn hash_secret(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn random_token(bytes: usize) -> Result<String, ApiError> {
    let mut b = vec![0u8; bytes];
    getrandom::getrandom(&mut b).map_err(|_| ApiError::Internal("no randomness".into()))?;
    Ok(hex::encode(b))
}

#[derive(Deserialize)]
struct NewProvider {
    id: String,
    name: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    payout_account: Option<String>,
}

async fn create_provider(
    State(s): State<AppState>,
    headers: HeaderMap,
    ApiJson(p): ApiJson<NewProvider>,
) -> Result<StatusCode, ApiError> {
    require_admin(&headers, &s)?;
    if p.id.is_empty() || p.id.len() > 64 || p.name.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "provider id (1 to 64 characters) and name are required".into(),
        ));
    }
    let mut tx = s.db.begin().await?;
    if sqlx::query("SELECT 1 FROM providers WHERE id = $1")
        .bind(&p.id)
        .fetch_optional(&mut *tx)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!("provider {} exists", p.id)));
    }
    sqlx::query("INSERT INTO providers (id, name, category, payout_account, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&p.id)
        .bind(&p.name)
        .bind(p.category)
        .bind(p.payout_account)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::CREATED)
}

/// A one-time enrolment code for a new device of this provider.
async fn new_code(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    require_admin(&headers, &s)?;
    if sqlx::query("SELECT 1 FROM providers WHERE id = $1")
        .bind(&id)
        .fetch_optional(&s.db)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("no such provider"));
    }
    let code = random_token(10)?;
    sqlx::query("INSERT INTO enrolment_codes (code_hash, provider_id, created_at, used_at) VALUES ($1, $2, $3, NULL)")
        .bind(hash_secret(&code))
        .bind(&id)
        .bind(now())
        .execute(&s.db)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"code": code, "provider_id": id})),
    ))
}

#[derive(Deserialize)]
struct Enrol {
    code: String,
    /// The device's Ed25519 public key (base64url, 32 bytes): the key that signs its ledger.
    public_key: String,
}

/// A device enrols with a one-time code and its public key, and gets its token (shown once).
async fn enrol(
    State(s): State<AppState>,
    ApiJson(e): ApiJson<Enrol>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    use base64::Engine;
    let pk = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&e.public_key)
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| ApiError::BadRequest("public_key: base64url of 32 bytes".into()))?;
    let mut tx = s.db.begin().await?;
    let row = sqlx::query("SELECT provider_id, used_at FROM enrolment_codes WHERE code_hash = $1")
        .bind(hash_secret(&e.code))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if row.try_get::<Option<i64>, _>("used_at")?.is_some() {
        return Err(ApiError::Unauthorized);
    }
    let provider: String = row.try_get("provider_id")?;
    if sqlx::query("SELECT 1 FROM devices WHERE public_key = $1")
        .bind(&e.public_key)
        .fetch_optional(&mut *tx)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(
            "this device key is already enrolled".into(),
        ));
    }
    let t = now();
    let token = random_token(32)?;
    let device_id = format!("dev-{}", &hex::encode(Sha256::digest(&pk))[..16]);
    sqlx::query("UPDATE enrolment_codes SET used_at = $1 WHERE code_hash = $2")
        .bind(t)
        .bind(hash_secret(&e.code))
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO devices (id, provider_id, public_key, token_hash, enrolled_at, last_seq, last_hash) VALUES ($1, $2, $3, $4, $5, 0, $6)")
        .bind(&device_id)
        .bind(&provider)
        .bind(&e.public_key)
        .bind(hash_secret(&token))
        .bind(t)
        .bind(hex::encode([0u8; 32]))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"device_id": device_id, "provider_id": provider, "token": token})),
    ))
}

/// The device behind a bearer token: (device id, provider id, public key, last seq, last hash).
pub async fn device_from(
    headers: &HeaderMap,
    s: &AppState,
) -> Result<(String, String, [u8; 32]), ApiError> {
    use base64::Engine;
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let row = sqlx::query("SELECT id, provider_id, public_key FROM devices WHERE token_hash = $1")
        .bind(hash_secret(token))
        .fetch_optional(&s.db)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let pk: [u8; 32] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(row.try_get::<String, _>("public_key")?)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| ApiError::Internal("stored device key malformed".into()))?;
    Ok((row.try_get("id")?, row.try_get("provider_id")?, pk))
}
