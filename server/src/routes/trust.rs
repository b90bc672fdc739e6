//! The trust list phones download: every issuer key that is current, or retired but still
//! needed because vouchers it signed have not expired. With an ETag.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{now, ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/trust", get(trust))
}

async fn trust(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let rows = sqlx::query(
        "SELECT k.kid, k.public_x, k.created_at, k.retired_at, p.issuer FROM issuer_keys k \
         JOIN programs p ON p.id = k.program_id \
         WHERE k.retired_at IS NULL OR k.last_expiry > $1 ORDER BY k.created_at, k.kid",
    )
    .bind(now())
    .fetch_all(&s.db)
    .await?;
    let mut keys = Vec::new();
    for r in rows {
        let mut k = serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "evoucher_use": "voucher",
            "kid": r.try_get::<String, _>("kid")?,
            "x": r.try_get::<String, _>("public_x")?,
            "iss": r.try_get::<String, _>("issuer")?,
            "nbf": r.try_get::<i64, _>("created_at")?,
        });
        if let Some(retired) = r.try_get::<Option<i64>, _>("retired_at")? {
            // `exp` is exclusive, and a voucher signed in the second the key was retired was
            // committed before the retirement.
            k["exp"] = (retired + 1).into();
        }
        keys.push(k);
    }
    let body = serde_json::json!({ "keys": keys }).to_string();
    let etag = format!(
        "\"{}\"",
        &hex::encode(Sha256::digest(body.as_bytes()))[..32]
    );
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, "application/jwk-set+json".to_owned()),
            (header::ETAG, etag),
        ],
        body,
    )
        .into_response())
}
