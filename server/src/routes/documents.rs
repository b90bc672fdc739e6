//! What gets printed or sent to a beneficiary: a voucher's record, its printable letter (PDF,
//! one A4 page per voucher) and its QR code (PNG). Admin only: they carry beneficiary data.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use sqlx::Row;

use crate::auth::{need, Perm::*, Principal, Scope};
use crate::pdf::{letter, Letter, Pdf};
use crate::{ApiError, AppState};
use axum::Extension;

/// Pixels per QR module in the PNG (a version-10 voucher is about 460 px square).
pub const PNG_SCALE: usize = 8;
/// Most pages in one program letters PDF.
pub const MAX_PAGES: i64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/vouchers/{id}",
            need(ReadPrograms, Scope::Voucher, get(record)),
        )
        .route(
            "/api/v1/vouchers/{id}/qr.png",
            need(ReadBeneficiaries, Scope::Voucher, get(png)),
        )
        .route(
            "/api/v1/vouchers/{id}/letter.pdf",
            need(ReadBeneficiaries, Scope::Voucher, get(one_pdf)),
        )
        .route(
            "/api/v1/programs/{id}/letters.pdf",
            need(ReadBeneficiaries, Scope::Program, get(program_pdf)),
        )
}

struct Stored {
    id: String,
    program: String,
    program_name: String,
    beneficiary_id: String,
    text: String,
    exp: i64,
    issued_at: i64,
    cancelled: bool,
}

const SELECT: &str = "SELECT v.id, v.program_id, p.name AS program_name, v.beneficiary_id, v.text, v.exp, v.issued_at, \
     (SELECT COUNT(*) FROM revocations r WHERE r.voucher_id = v.id) AS cancelled \
     FROM vouchers v JOIN programs p ON p.id = v.program_id";

fn stored(r: &sqlx::any::AnyRow) -> Result<Stored, sqlx::Error> {
    Ok(Stored {
        id: r.try_get("id")?,
        program: r.try_get("program_id")?,
        program_name: r.try_get("program_name")?,
        beneficiary_id: r.try_get("beneficiary_id")?,
        text: r.try_get("text")?,
        exp: r.try_get("exp")?,
        issued_at: r.try_get("issued_at")?,
        cancelled: r.try_get::<i64, _>("cancelled")? > 0,
    })
}

async fn find(s: &AppState, id: &str) -> Result<Stored, ApiError> {
    let sql = format!("{SELECT} WHERE v.id = $1");
    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&s.db)
        .await?
        .ok_or(ApiError::NotFound("no such voucher"))?;
    Ok(stored(&r)?)
}

pub(crate) async fn record(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let v = find(&s, &id).await?;
    // The voucher's timeline: every redemption and void any device sent, as judged.
    let rows = sqlx::query(
        "SELECT r.id, r.device_id, d.provider_id, r.kind, r.voids, r.amount, r.currency, r.items, r.at, r.received_at, r.status, r.reason, r.conflict_with \
         FROM redemptions r JOIN devices d ON d.id = r.device_id WHERE r.voucher_id = $1 ORDER BY r.received_at, r.device_id, r.seq",
    )
    .bind(&id)
    .fetch_all(&s.db)
    .await?;
    let redemptions: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            Ok(serde_json::json!({
                "id": r.try_get::<String, _>("id")?,
                "device_id": r.try_get::<String, _>("device_id")?,
                "provider_id": r.try_get::<String, _>("provider_id")?,
                "kind": r.try_get::<String, _>("kind")?,
                "voids": r.try_get::<Option<String>, _>("voids")?,
                "amount": r.try_get::<Option<i64>, _>("amount")?,
                "currency": r.try_get::<Option<String>, _>("currency")?,
                "items": serde_json::from_str::<serde_json::Value>(&r.try_get::<String, _>("items")?).unwrap_or_default(),
                "at": r.try_get::<i64, _>("at")?,
                "received_at": r.try_get::<i64, _>("received_at")?,
                "status": r.try_get::<String, _>("status")?,
                "reason": r.try_get::<Option<String>, _>("reason")?,
                "conflict_with": r.try_get::<Option<String>, _>("conflict_with")?,
            }))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let state: String = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} AS state FROM vouchers v WHERE v.id = $1",
        super::vouchers::STATE
    )))
    .bind(&id)
    .bind(crate::now())
    .fetch_one(&s.db)
    .await?
    .try_get("state")?;
    let cancelled_at: Option<i64> =
        sqlx::query("SELECT revoked_at FROM revocations WHERE voucher_id = $1")
            .bind(&id)
            .fetch_optional(&s.db)
            .await?
            .map(|r| r.try_get("revoked_at"))
            .transpose()?;
    // The voucher text carries the beneficiary's name: only for those who may read names.
    let names = match &who {
        Principal::AdminToken => true,
        Principal::User(u) => crate::auth::allows(u.role, ReadBeneficiaries),
    };
    Ok(Json(serde_json::json!({
        "id": v.id, "program": v.program, "beneficiary_id": v.beneficiary_id,
        "text": names.then_some(v.text),
        "exp": v.exp, "issued_at": v.issued_at, "cancelled": v.cancelled, "cancelled_at": cancelled_at,
        "state": state, "redemptions": redemptions,
    })))
}

fn file(body: Vec<u8>, mime: &'static str, name: &str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// A voucher to print or send, for an admin: a cancelled voucher is not printed or sent again.
async fn printable(s: &AppState, id: &str) -> Result<Stored, ApiError> {
    let v = find(s, id).await?;
    if v.cancelled {
        Err(ApiError::Conflict("the voucher was cancelled".into()))
    } else {
        Ok(v)
    }
}

async fn png(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let v = printable(&s, &id).await?;
    let text = v.text.clone();
    let png = off_runtime(move || {
        evoucher_core::qr::symbol(&text)
            .and_then(|sym| sym.png(PNG_SCALE))
            .map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await?;
    Ok(file(png, "image/png", &format!("voucher-{}.png", v.id)))
}

/// Rendering (QR encoding is about a millisecond a voucher) is CPU work: run it off the async
/// runtime.
async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::Internal("rendering failed".into()))?
}

fn add_page(pdf: &mut Pdf, v: &Stored) -> Result<(), ApiError> {
    let voucher = evoucher_core::verify::inspect(&v.text)
        .claims
        .ok_or_else(|| ApiError::Internal("a stored voucher does not decode".into()))?;
    letter(
        pdf,
        &Letter {
            program_name: &v.program_name,
            voucher: &voucher,
            text: &v.text,
        },
    )
    .map_err(|e| ApiError::Internal(e.to_string()))
}

async fn one_pdf(State(s): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let v = printable(&s, &id).await?;
    let name = format!("voucher-{}.pdf", v.id);
    let bytes = letters(&s, vec![v]).await?;
    Ok(file(bytes, "application/pdf", &name))
}

/// A PDF of these vouchers' letters, one page each (text beyond Windows-1252 in the
/// configured letter fonts), rendered off the async runtime.
async fn letters(s: &AppState, list: Vec<Stored>) -> Result<Vec<u8>, ApiError> {
    let fonts = s.letter_fonts.clone();
    off_runtime(move || {
        let mut pdf = Pdf::with_fonts(fonts);
        for v in &list {
            add_page(&mut pdf, v)?;
        }
        Ok(pdf.finish())
    })
    .await
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(default)]
    offset: i64,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    500
}

/// The program's live vouchers, one letter per page, in beneficiary order; `offset` and
/// `limit` (at most 1,000) page through a large program. `X-Total-Count` tells how many there
/// are in all.
async fn program_pdf(
    State(s): State<AppState>,
    Path(program): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    if q.offset < 0 || !(1..=MAX_PAGES).contains(&q.limit) {
        return Err(ApiError::BadRequest(format!(
            "offset must be 0 or more and limit 1 to {MAX_PAGES}"
        )));
    }
    if sqlx::query("SELECT 1 FROM programs WHERE id = $1")
        .bind(&program)
        .fetch_optional(&s.db)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("no such program"));
    }
    let live_only =
        "v.program_id = $1 AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.voucher_id = v.id)";
    let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS n FROM vouchers v WHERE {live_only}"
    )))
    .bind(&program)
    .fetch_one(&s.db)
    .await?
    .try_get("n")?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE {live_only} ORDER BY v.beneficiary_id, v.issued_at, v.id LIMIT $2 OFFSET $3"
    )))
    .bind(&program)
    .bind(q.limit)
    .bind(q.offset)
    .fetch_all(&s.db)
    .await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound("no live vouchers in this range"));
    }
    let list: Vec<Stored> = rows.iter().map(stored).collect::<Result<_, _>>()?;
    let bytes = letters(&s, list).await?;
    let mut r = file(
        bytes,
        "application/pdf",
        &format!("letters-{program}-{}.pdf", q.offset),
    );
    if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        r.headers_mut().insert("x-total-count", v);
    }
    Ok(r)
}
