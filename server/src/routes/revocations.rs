//! The revocation feed: cancelled voucher ids after a cursor, in order.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use sqlx::Row;

use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/revocations", get(list))
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: i64,
    #[serde(default)]
    limit: Option<i64>,
}

async fn list(
    State(s): State<AppState>,
    Query(q): Query<Since>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let rows = sqlx::query(
        "SELECT seq, voucher_id, revoked_at FROM revocations WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(q.since)
    .bind(limit)
    .fetch_all(&s.db)
    .await?;
    let mut out = Vec::new();
    let mut next = q.since;
    for r in rows {
        let seq: i64 = r.try_get("seq")?;
        next = next.max(seq);
        out.push(serde_json::json!({"seq": seq, "voucher_id": r.try_get::<String, _>("voucher_id")?, "revoked_at": r.try_get::<i64, _>("revoked_at")?}));
    }
    Ok(Json(serde_json::json!({"revocations": out, "next": next})))
}
