//! Beneficiaries imported from CSV into a program (the registry's export), ready for issuance.
//!
//! `POST /api/v1/programs/{id}/beneficiaries` with a `text/csv` body (evoucher-core's roster
//! format): a header row naming `beneficiary_id` (or `id`), and optionally `name` and `amount`
//! (minor units, overriding the program's default). Every row is checked first; one bad row
//! refuses the whole file with its line number (never its content) and nothing is stored. A
//! beneficiary already imported is updated, so importing the same file twice changes nothing.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::routing::post;
use axum::{Json, Router};
use sqlx::Row;

use evoucher_core::roster::{self, RosterRow};

use super::{body_limit, value_rows, Paging};
use crate::audit::{self, Event};
use crate::auth::{need, Perm::*, Principal, Scope};
use crate::error::ApiBytes;
use crate::limits::ClientAddr;
use crate::{now, ApiError, AppState};
use axum::routing::get;
use axum::Extension;

/// Largest CSV accepted in one import (about 300,000 rows of id, name and amount).
pub const MAX_CSV: usize = 16 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/programs/{id}/beneficiaries",
        need(
            ManagePrograms,
            Scope::Program,
            body_limit(post(import), MAX_CSV),
        )
        .merge(need(ReadBeneficiaries, Scope::Program, get(list))),
    )
}

/// The imported beneficiaries of a program, in id order, a page at a time, each with the live
/// voucher they hold (if any).
pub(crate) async fn list(
    State(s): State<AppState>,
    Path(program): Path<String>,
    axum::extract::Query(p): axum::extract::Query<Paging>,
) -> Result<axum::response::Response, ApiError> {
    let p = p.check()?;
    let mut c = s.db.acquire().await?;
    super::vouchers::program_exists(&mut c, &program).await?;
    let total = count(&mut c, &program).await?;
    let t = now();
    let rows = sqlx::query(
        "SELECT b.id, b.name, b.amount, b.imported_at, \
         (SELECT MIN(v.id) FROM vouchers v WHERE v.program_id = b.program_id AND v.beneficiary_id = b.id \
          AND v.exp > $2 AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.voucher_id = v.id)) AS live_voucher \
         FROM beneficiaries b WHERE b.program_id = $1 ORDER BY b.id LIMIT $3 OFFSET $4",
    )
    .bind(&program)
    .bind(t)
    .bind(p.limit)
    .bind(p.offset)
    .fetch_all(&mut *c)
    .await?;
    let list = rows
        .iter()
        .map(|r| {
            Ok(serde_json::json!({
                "id": r.try_get::<String, _>("id")?,
                "name": r.try_get::<Option<String>, _>("name")?,
                "amount": r.try_get::<Option<i64>, _>("amount")?,
                "imported_at": r.try_get::<i64, _>("imported_at")?,
                "live_voucher": r.try_get::<Option<String>, _>("live_voucher")?,
            }))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(super::page("beneficiaries", total, p, list))
}

/// Parse and check a roster (evoucher-core's parser, shared with `evoucher issue --csv`).
/// Items come from the program, not from the roster.
pub fn parse_csv(body: &[u8]) -> Result<Vec<RosterRow>, ApiError> {
    let rows = roster::parse(body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if let Some(r) = rows.iter().find(|r| r.items.is_some()) {
        return Err(ApiError::BadRequest(format!(
            "line {}: items are set by the program, not per beneficiary",
            r.line
        )));
    }
    Ok(rows)
}

async fn count(c: &mut sqlx::AnyConnection, program: &str) -> Result<i64, ApiError> {
    Ok(
        sqlx::query("SELECT COUNT(*) AS n FROM beneficiaries WHERE program_id = $1")
            .bind(program)
            .fetch_one(c)
            .await?
            .try_get::<i64, _>("n")?,
    )
}

pub(crate) async fn import(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    client: ClientAddr,
    headers: HeaderMap,
    Path(program): Path<String>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("text/csv") {
        return Err(ApiError::Rejected(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: text/csv".into(),
        ));
    }
    let rows = parse_csv(&body)?;
    let mut tx = s.begin_write().await?;
    if sqlx::query("SELECT 1 FROM programs WHERE id = $1")
        .bind(&program)
        .fetch_optional(&mut *tx)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("no such program"));
    }
    let before = count(&mut tx, &program).await?;
    let t = now();
    for part in rows.chunks(200) {
        let sql = format!(
            "INSERT INTO beneficiaries (program_id, id, name, amount, imported_at) VALUES {} \
             ON CONFLICT (program_id, id) DO UPDATE SET name = excluded.name, amount = excluded.amount",
            value_rows(part.len(), 5)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in part {
            q = q
                .bind(program.clone())
                .bind(r.id.clone())
                .bind(r.name.clone())
                .bind(r.amount.map(|a| a as i64))
                .bind(t);
        }
        q.execute(&mut *tx).await?;
    }
    let after = count(&mut tx, &program).await?;
    let added = after - before;
    audit::by(
        &mut tx,
        &s,
        &who,
        client,
        Event::new(
            "beneficiaries.import",
            "program",
            &program,
            serde_json::json!({"before": {"beneficiaries": before}, "after": {"beneficiaries": after, "rows": rows.len(), "added": added}}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(serde_json::json!({
        "program": program,
        "rows": rows.len(),
        "added": added,
        "updated": rows.len() as i64 - added,
        "total": after,
    })))
}
