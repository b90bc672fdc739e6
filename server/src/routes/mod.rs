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

/// The `VALUES` list of a multi-row `INSERT`: `rows` rows of `cols` placeholders each.
pub fn value_rows(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|i| format!("({})", placeholders(i * cols + 1, cols)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// On PostgreSQL, lock `table` for the rest of the transaction against other writers
/// (`SHARE ROW EXCLUSIVE`: reads go on). SQLite needs nothing: its one connection already
/// serialises writers.
pub async fn lock_for_writes(
    tx: &mut sqlx::AnyConnection,
    s: &AppState,
    table: &'static str,
) -> Result<(), ApiError> {
    if s.postgres {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"
        )))
        .execute(tx)
        .await?;
    }
    Ok(())
}
