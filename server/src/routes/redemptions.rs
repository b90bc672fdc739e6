//! The server's record of redemptions, for review: a page at a time, filtered by status,
//! program, provider, device or voucher; as JSON, or as CSV (`Accept: text/csv`, cells a
//! spreadsheet would run neutralised).

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use sqlx::Row;

use super::Paging;
use crate::auth::{need, Perm::*, Principal, Scope};
use crate::{ApiError, AppState};
use axum::Extension;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/redemptions",
        need(ReadRedemptions, Scope::Any, get(list)),
    )
}

/// The statuses a stored redemption can have.
pub const STATUSES: [&str; 4] = ["accepted", "conflict", "invalid", "suspect"];
/// The filter for what waits for a person: conflicts and suspect redemptions.
pub const REVIEW: &str = "review";

#[derive(Deserialize)]
pub(crate) struct Filter {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    program: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    voucher: Option<String>,
    // Not `#[serde(flatten)]` of a `Paging`: query strings then fail to parse numbers.
    #[serde(default)]
    offset: i64,
    #[serde(default = "super::default_limit")]
    limit: i64,
}

const COLUMNS: [&str; 15] = [
    "id",
    "device_id",
    "provider_id",
    "program_id",
    "seq",
    "kind",
    "voucher_id",
    "voids",
    "amount",
    "currency",
    "items",
    "at",
    "received_at",
    "status",
    "reason",
];

pub(crate) async fn list(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Query(mut f): Query<Filter>,
) -> Result<Response, ApiError> {
    // A provider account reads its own redemptions only; an account limited to some programs,
    // those of its programs.
    if let Some(own) = who.own_provider() {
        f.provider = Some(own.to_owned());
    }
    let limit = who.program_limit().map(|l| l.to_vec());
    if let (Some(l), Some(p)) = (&limit, &f.program) {
        if !l.contains(p) {
            return Err(ApiError::Forbidden(
                "your account is not for this program".into(),
            ));
        }
    }
    let p = Paging {
        offset: f.offset,
        limit: f.limit,
    }
    .check()?;
    if let Some(st) = &f.status {
        if !STATUSES.contains(&st.as_str()) && st != REVIEW {
            return Err(ApiError::BadRequest(
                "status: accepted, conflict, invalid, suspect or review (conflict and suspect)"
                    .into(),
            ));
        }
    }
    let filters = super::Filters::new(
        &[
            ("r.status", &f.status),
            ("v.program_id", &f.program),
            ("d.provider_id", &f.provider),
            ("r.device_id", &f.device),
            ("r.voucher_id", &f.voucher),
        ],
        "v.program_id",
        limit.as_deref(),
    );
    let mut wheres = filters.terms();
    if f.status.as_deref() == Some(REVIEW) {
        // Still bound as $1, so the placeholders keep their numbers.
        wheres[0] = "($1 = $1 AND r.status IN ('conflict', 'suspect'))".into();
    }
    let from = format!(
        "FROM redemptions r JOIN devices d ON d.id = r.device_id LEFT JOIN vouchers v ON v.id = r.voucher_id WHERE {}",
        wheres.join(" AND ")
    );
    let bind_all = |sql: String| filters.bind(sqlx::query(sqlx::AssertSqlSafe(sql)));
    let total: i64 = bind_all(format!("SELECT COUNT(*) AS n {from}"))
        .fetch_one(&s.db)
        .await?
        .try_get("n")?;
    let rows = bind_all(format!(
        "SELECT r.id, r.device_id, d.provider_id, v.program_id, r.seq, r.kind, r.voucher_id, r.voids, r.amount, r.currency, r.items, r.at, r.received_at, r.status, r.reason \
         {from} ORDER BY r.received_at, r.device_id, r.seq LIMIT {} OFFSET {}",
        p.limit, p.offset
    ))
    .fetch_all(&s.db)
    .await?;
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            Ok(serde_json::json!({
                "id": r.try_get::<String, _>("id")?,
                "device_id": r.try_get::<String, _>("device_id")?,
                "provider_id": r.try_get::<String, _>("provider_id")?,
                "program_id": r.try_get::<Option<String>, _>("program_id")?,
                "seq": r.try_get::<i64, _>("seq")?,
                "kind": r.try_get::<String, _>("kind")?,
                "voucher_id": r.try_get::<String, _>("voucher_id")?,
                "voids": r.try_get::<Option<String>, _>("voids")?,
                "amount": r.try_get::<Option<i64>, _>("amount")?,
                "currency": r.try_get::<Option<String>, _>("currency")?,
                "items": serde_json::from_str::<serde_json::Value>(&r.try_get::<String, _>("items")?).unwrap_or_default(),
                "at": r.try_get::<i64, _>("at")?,
                "received_at": r.try_get::<i64, _>("received_at")?,
                "status": r.try_get::<String, _>("status")?,
                "reason": r.try_get::<Option<String>, _>("reason")?,
            }))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    if wants_csv {
        return csv(total, &list);
    }
    Ok(super::page("redemptions", total, p, list))
}

/// The page as CSV, every cell through [`evoucher_core::roster::safe_cell`].
fn csv(total: i64, list: &[serde_json::Value]) -> Result<Response, ApiError> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let internal = |e: ::csv::Error| ApiError::Internal(e.to_string());
    w.write_record(COLUMNS).map_err(internal)?;
    for r in list {
        let cells = COLUMNS.iter().map(|c| {
            let text = match &r[*c] {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            evoucher_core::roster::safe_cell(&text).into_owned()
        });
        w.write_record(cells).map_err(internal)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        r.headers_mut().insert("x-total-count", v);
    }
    Ok(r)
}
