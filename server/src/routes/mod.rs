//! One module per concern, each with its `router()`.

pub mod beneficiaries;
pub mod devices;
pub mod documents;
pub mod health;
pub mod programs;
pub mod revocations;
pub mod sync;
pub mod trust;

use axum::http::HeaderMap;

use crate::{ApiError, AppState};

/// Admin endpoints: `Authorization: Bearer <admin token>`, compared in constant time.
pub fn require_admin(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let want = state.admin_token.as_bytes();
    let ok = given.len() == want.len()
        && given
            .bytes()
            .zip(want.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if ok && !want.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// `$first, $first+1, …`: the placeholders of `n` values (an `IN (…)` list or a row of a
/// multi-row `INSERT`).
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}
