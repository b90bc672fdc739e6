//! Who is calling, decided once per request and before its body is read: a route wrapped in
//! [`admin`] or [`device`] answers 401 at once to a request without valid credentials,
//! whatever body it declares (an unauthenticated upload never costs the server its memory).
//!
//! Secrets (the admin token, device tokens, enrolment codes) are compared in constant time or
//! looked up by their SHA-256; the plain values are never stored or logged.

use axum::extract::Request;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{ApiError, AppState};

/// An enrolled device, as the server registered it. Handlers of [`device`] routes take it as
/// `Extension<Device>`.
#[derive(Debug, Clone)]
pub struct Device {
    pub id: String,
    /// The provider the server registered the device for (never what the phone says).
    pub provider: String,
    /// That provider's category, as the server registered it.
    pub category: Option<String>,
    /// The Ed25519 key that signs the device's ledger.
    pub public: [u8; 32],
    pub enrolled_at: i64,
}

/// SHA-256 of a secret, hex: how tokens and codes are stored and looked up.
pub fn hash_secret(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A random secret of `bytes` bytes, hex.
pub fn random_token(bytes: usize) -> Result<String, ApiError> {
    let mut b = vec![0u8; bytes];
    getrandom::getrandom(&mut b).map_err(|_| ApiError::Internal("no randomness".into()))?;
    Ok(hex::encode(b))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The admin bearer token, compared in constant time.
pub fn is_admin(headers: &HeaderMap, state: &AppState) -> bool {
    let Some(given) = bearer(headers) else {
        return false;
    };
    let want = state.admin_token.as_bytes();
    !want.is_empty()
        && given.len() == want.len()
        && given
            .bytes()
            .zip(want.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The device behind a bearer token (not revoked), if any.
pub async fn device_of(headers: &HeaderMap, s: &AppState) -> Result<Option<Device>, ApiError> {
    use base64::Engine;
    let Some(token) = bearer(headers) else {
        return Ok(None);
    };
    let Some(row) = sqlx::query(
        "SELECT d.id, d.provider_id, d.public_key, d.enrolled_at, p.category FROM devices d \
         JOIN providers p ON p.id = d.provider_id WHERE d.token_hash = $1 AND d.revoked_at IS NULL",
    )
    .bind(hash_secret(token))
    .fetch_optional(&s.db)
    .await?
    else {
        return Ok(None);
    };
    let public: [u8; 32] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(row.try_get::<String, _>("public_key")?)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| ApiError::Internal("stored device key malformed".into()))?;
    Ok(Some(Device {
        id: row.try_get("id")?,
        provider: row.try_get("provider_id")?,
        category: row.try_get("category")?,
        public,
        enrolled_at: row.try_get("enrolled_at")?,
    }))
}

/// The state, which [`crate::app`] puts into every request (middleware has no other way to it).
fn state(req: &Request) -> Result<AppState, ApiError> {
    req.extensions()
        .get::<AppState>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))
}

/// A route for the program's administrator: `Authorization: Bearer <admin token>`.
pub fn admin(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer(axum::middleware::from_fn(
        |req: Request, next: Next| async move {
            match state(&req) {
                Ok(s) if is_admin(req.headers(), &s) => next.run(req).await,
                Ok(_) => ApiError::Unauthorized.into_response(),
                Err(e) => e.into_response(),
            }
        },
    ))
}

/// A route for enrolled devices: `Authorization: Bearer <device token>`. The handler gets the
/// [`Device`] as an extension.
pub fn device(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer(axum::middleware::from_fn(|req: Request, next: Next| {
        with_device(req, next, true)
    }))
}

/// A public route that a device may also call with its token (then it must be valid, and the
/// handler gets `Option<Extension<Device>>`).
pub fn maybe_device(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer(axum::middleware::from_fn(|req: Request, next: Next| {
        with_device(req, next, false)
    }))
}

async fn with_device(mut req: Request, next: Next, required: bool) -> Response {
    if !required && bearer(req.headers()).is_none() {
        return next.run(req).await;
    }
    let s = match state(&req) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    // The administrator may read a public route with the admin token (no device recorded).
    if !required && is_admin(req.headers(), &s) {
        return next.run(req).await;
    }
    let found = device_of(req.headers(), &s).await;
    match found {
        Ok(Some(d)) => {
            req.extensions_mut().insert(d);
            next.run(req).await
        }
        Ok(None) => ApiError::Unauthorized.into_response(),
        Err(e) => e.into_response(),
    }
}
