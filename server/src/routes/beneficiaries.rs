//! Beneficiaries imported from CSV into a program (the registry's export), ready for issuance.
//!
//! `POST /api/v1/programs/{id}/beneficiaries` with a `text/csv` body: a header row naming
//! `beneficiary_id` (or `id`), and optionally `name` and `amount` (minor units, overriding the
//! program's default). Every row is checked first; one bad row refuses the whole file with its
//! line number (never its content) and nothing is stored. A beneficiary already imported is
//! updated, so importing the same file twice changes nothing.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap};
use axum::routing::post;
use axum::{Json, Router};
use sqlx::Row;

use super::{placeholders, require_admin};
use crate::error::ApiBytes;
use crate::{now, ApiError, AppState};

/// Largest CSV accepted in one import (about 300,000 rows of id, name and amount).
pub const MAX_CSV: usize = 16 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/programs/{id}/beneficiaries",
        post(import).layer(DefaultBodyLimit::max(MAX_CSV)),
    )
}

/// One checked row.
pub struct Imported {
    pub id: String,
    pub name: Option<String>,
    pub amount: Option<i64>,
}

fn bad(m: String) -> ApiError {
    ApiError::BadRequest(m)
}

/// Parse and check a beneficiary CSV. Errors name the line and column, never the value.
pub fn parse_csv(body: &[u8]) -> Result<Vec<Imported>, ApiError> {
    // Spreadsheets often save UTF-8 with a byte-order mark.
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers = r
        .headers()
        .map_err(|_| bad("line 1: not a CSV header row (UTF-8, comma-separated)".into()))?
        .clone();
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h));
    let id_col = col(&["beneficiary_id", "id"])
        .ok_or_else(|| bad("line 1: a beneficiary_id column is required".into()))?;
    let name_col = col(&["name"]);
    let amount_col = col(&["amount"]);
    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            bad(format!("line {line}: not a well-formed CSV row"))
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let id = rec.get(id_col).unwrap_or("").to_owned();
        if id.is_empty() || id.len() > 64 || id.chars().any(char::is_control) {
            return Err(bad(format!(
                "line {line}: beneficiary_id must be 1 to 64 characters"
            )));
        }
        if !seen.insert(id.clone()) {
            return Err(bad(format!(
                "line {line}: beneficiary_id repeats an earlier row"
            )));
        }
        let name = name_col
            .and_then(|c| rec.get(c))
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        if name
            .as_ref()
            .is_some_and(|n| n.chars().count() > 200 || n.chars().any(char::is_control))
        {
            return Err(bad(format!(
                "line {line}: name must be at most 200 characters"
            )));
        }
        let amount = match amount_col
            .and_then(|c| rec.get(c))
            .filter(|a| !a.is_empty())
        {
            None => None,
            Some(a) => match a.parse::<i64>() {
                Ok(v) if v > 0 => Some(v),
                _ => {
                    return Err(bad(format!(
                        "line {line}: amount must be a positive whole number of minor units"
                    )))
                }
            },
        };
        rows.push(Imported { id, name, amount });
    }
    if rows.is_empty() {
        return Err(bad("the CSV has no rows".into()));
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

async fn import(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(program): Path<String>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&headers, &s)?;
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
    let mut tx = s.db.begin().await?;
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
        let values: Vec<String> = (0..part.len())
            .map(|i| format!("({})", placeholders(i * 5 + 1, 5)))
            .collect();
        let sql = format!(
            "INSERT INTO beneficiaries (program_id, id, name, amount, imported_at) VALUES {} \
             ON CONFLICT (program_id, id) DO UPDATE SET name = excluded.name, amount = excluded.amount",
            values.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in part {
            q = q
                .bind(program.clone())
                .bind(r.id.clone())
                .bind(r.name.clone())
                .bind(r.amount)
                .bind(t);
        }
        q.execute(&mut *tx).await?;
    }
    let after = count(&mut tx, &program).await?;
    tx.commit().await?;
    let added = after - before;
    Ok(Json(serde_json::json!({
        "program": program,
        "rows": rows.len(),
        "added": added,
        "updated": rows.len() as i64 - added,
        "total": after,
    })))
}
