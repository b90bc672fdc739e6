//! The revocation feed: cancelled voucher ids after a cursor, in order. Public; a device that
//! calls it with its token has the pull recorded (the feed number it reached and its chain's
//! head at that moment), so a later redemption of a cancelled voucher it had already received
//! is flagged `suspect` at sync.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use sqlx::Row;

use crate::auth::{maybe_device, Device};
use crate::{now, ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/revocations", maybe_device(get(list)))
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
    dev: Option<Extension<Device>>,
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
    if let Some(Extension(d)) = dev {
        record_pull(&s, &d, next).await?;
    }
    Ok(Json(serde_json::json!({"revocations": out, "next": next})))
}

/// Record that the device has every cancellation up to `cursor`, with its chain's head as the
/// server knows it now (a phone cannot move it). Only a pull that reaches further than the
/// device's earlier ones is recorded.
async fn record_pull(s: &AppState, d: &Device, cursor: i64) -> Result<(), ApiError> {
    let t = now();
    sqlx::query(
        "INSERT INTO revocation_pulls (device_id, cursor, head_seq, pulled_at) \
         SELECT id, $2, last_seq, $3 FROM devices WHERE id = $1 AND $2 > COALESCE((SELECT MAX(cursor) FROM revocation_pulls WHERE device_id = $1), 0) \
         ON CONFLICT (device_id, cursor) DO NOTHING",
    )
    .bind(&d.id)
    .bind(cursor)
    .bind(t)
    .execute(&s.db)
    .await?;
    sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE id = $2")
        .bind(t)
        .bind(&d.id)
        .execute(&s.db)
        .await?;
    Ok(())
}
