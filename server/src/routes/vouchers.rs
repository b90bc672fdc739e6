//! The vouchers of a program, a page at a time, by state.
//!
//! A voucher's state: `cancelled` (on the revocation feed), else `expired` (its validity is
//! over), else `redeemed` (an accepted redemption that no accepted void undid; for a partial
//! voucher: used at least once), else `live`.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use sqlx::Row;

use super::Paging;
use crate::auth::{need, Perm::*, Scope};
use crate::{now, ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/programs/{id}/vouchers",
        need(ReadPrograms, Scope::Program, get(list)),
    )
}

/// 404 unless the program exists.
pub async fn program_exists(c: &mut sqlx::AnyConnection, id: &str) -> Result<(), ApiError> {
    sqlx::query("SELECT 1 FROM programs WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .map(|_| ())
        .ok_or(ApiError::NotFound("no such program"))
}

/// SQL for a voucher's state (`$2` is now).
pub const STATE: &str = "CASE WHEN EXISTS (SELECT 1 FROM revocations r WHERE r.voucher_id = v.id) THEN 'cancelled' \
     WHEN v.exp <= $2 THEN 'expired' \
     WHEN EXISTS (SELECT 1 FROM redemptions x WHERE x.voucher_id = v.id AND x.kind = 'redeem' AND x.status = 'accepted' \
       AND NOT EXISTS (SELECT 1 FROM redemptions y WHERE y.kind = 'void' AND y.voids = x.id AND y.status = 'accepted')) THEN 'redeemed' \
     ELSE 'live' END";

#[derive(Deserialize)]
pub(crate) struct Filter {
    #[serde(default)]
    state: Option<String>,
    // Not `#[serde(flatten)]` of a `Paging`: query strings then fail to parse numbers.
    #[serde(default)]
    offset: i64,
    #[serde(default = "super::default_limit")]
    limit: i64,
}

pub(crate) async fn list(
    State(s): State<AppState>,
    Path(program): Path<String>,
    Query(f): Query<Filter>,
) -> Result<Response, ApiError> {
    let p = Paging {
        offset: f.offset,
        limit: f.limit,
    }
    .check()?;
    if let Some(st) = &f.state {
        if !["live", "redeemed", "expired", "cancelled"].contains(&st.as_str()) {
            return Err(ApiError::BadRequest(
                "state: live, redeemed, expired or cancelled".into(),
            ));
        }
    }
    let mut c = s.db.acquire().await?;
    program_exists(&mut c, &program).await?;
    let inner = format!(
        "SELECT v.id, v.beneficiary_id, v.kid, v.issued_at, v.exp, {STATE} AS state FROM vouchers v WHERE v.program_id = $1"
    );
    let filter = if f.state.is_some() {
        "WHERE t.state = $3"
    } else {
        "WHERE $3 = $3"
    };
    let state = f.state.clone().unwrap_or_default();
    let t = now();
    let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM ({inner}) t {filter}"
    )))
    .bind(&program)
    .bind(t)
    .bind(&state)
    .fetch_one(&mut *c)
    .await?
    .try_get("n")?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM ({inner}) t {filter} ORDER BY t.beneficiary_id, t.id LIMIT $4 OFFSET $5"
    )))
    .bind(&program)
    .bind(t)
    .bind(&state)
    .bind(p.limit)
    .bind(p.offset)
    .fetch_all(&mut *c)
    .await?;
    let list = rows
        .iter()
        .map(|r| {
            Ok(serde_json::json!({
                "id": r.try_get::<String, _>("id")?,
                "beneficiary_id": r.try_get::<String, _>("beneficiary_id")?,
                "kid": r.try_get::<String, _>("kid")?,
                "issued_at": r.try_get::<i64, _>("issued_at")?,
                "exp": r.try_get::<i64, _>("exp")?,
                "state": r.try_get::<String, _>("state")?,
            }))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(super::page("vouchers", total, p, list))
}
