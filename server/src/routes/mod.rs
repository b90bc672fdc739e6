//! One module per concern, each with its `router()`.

pub mod beneficiaries;
pub mod claims;
pub mod devices;
pub mod documents;
pub mod health;
pub mod payables;
pub mod payments;
pub mod people;
pub mod programs;
pub mod redemptions;
pub mod revocations;
pub mod sync;
pub mod trust;
pub mod vouchers;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::routing::MethodRouter;

use crate::{ApiError, AppState};

/// The largest body an endpoint takes unless it says otherwise (JSON requests).
pub const MAX_JSON: usize = 1024 * 1024;

/// `route` taking bodies of at most `max` bytes. A request whose declared `Content-Length` is
/// over it is answered 413 at once, before a byte of its body is read: a phone sending a body
/// that will be refused learns it now rather than after uploading `max` bytes, and is not left
/// writing into a closed connection. A body without a declared length is cut at `max` as it
/// streams (413 as well).
pub fn body_limit(route: MethodRouter<AppState>, max: usize) -> MethodRouter<AppState> {
    route
        .layer(DefaultBodyLimit::max(max))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| async move {
                let declared = req
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if declared.is_some_and(|n| n > max as u64) {
                    let why = format!("the request body is over this endpoint's {max}-byte limit");
                    return ApiError::Rejected(StatusCode::PAYLOAD_TOO_LARGE, why).into_response();
                }
                next.run(req).await
            },
        ))
}

/// `$first, $first+1, …`: the placeholders of `n` values (an `IN (…)` list or a row of a
/// multi-row `INSERT`).
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A list's optional equality filters and its program limit, as one `WHERE` clause. Every
/// filter is always bound (an absent one as `''`, which matches everything), so the
/// placeholders keep their numbers whatever is given; the limited programs follow them.
pub(crate) struct Filters {
    conds: Vec<(&'static str, String)>,
    program_col: &'static str,
    programs: Vec<String>,
}

impl Filters {
    pub fn new(
        conds: &[(&'static str, &Option<String>)],
        program_col: &'static str,
        programs: Option<&[String]>,
    ) -> Self {
        Filters {
            conds: conds
                .iter()
                .map(|(col, v)| (*col, v.as_deref().unwrap_or_default().to_owned()))
                .collect(),
            program_col,
            programs: programs.map(<[String]>::to_vec).unwrap_or_default(),
        }
    }

    /// The clause's terms, `$1…` in the order of the filters (a caller may replace a term
    /// that keeps its placeholder), then the program limit if any.
    pub fn terms(&self) -> Vec<String> {
        let mut t: Vec<String> = (1..=self.conds.len())
            .zip(&self.conds)
            .map(|(i, (col, _))| format!("(${i} = '' OR {col} = ${i})"))
            .collect();
        if !self.programs.is_empty() {
            t.push(format!(
                "{} IN ({})",
                self.program_col,
                placeholders(self.conds.len() + 1, self.programs.len())
            ));
        }
        t
    }

    /// Bind the filters and the programs, in the order of [`Filters::terms`].
    pub fn bind<'q>(
        &self,
        mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        for (_, v) in &self.conds {
            q = q.bind(v.clone());
        }
        for p in &self.programs {
            q = q.bind(p.clone());
        }
        q
    }
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

/// Most rows in one page of a list.
pub const MAX_PAGE: i64 = 1000;

/// `?offset=&limit=` of a list (default 0 and 100; `limit` at most [`MAX_PAGE`]).
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct Paging {
    #[serde(default)]
    pub offset: i64,
    #[serde(default = "default_limit")]
    pub limit: i64,
}

/// 100 rows a page unless asked otherwise.
pub fn default_limit() -> i64 {
    100
}

impl Paging {
    pub fn check(self) -> Result<Self, ApiError> {
        if self.offset < 0 || !(1..=MAX_PAGE).contains(&self.limit) {
            return Err(ApiError::BadRequest(format!(
                "offset must be 0 or more and limit 1 to {MAX_PAGE}"
            )));
        }
        Ok(self)
    }
}

/// A page of a list: `{"total": n, "offset": o, key: [...]}` with `X-Total-Count`.
pub fn page(
    key: &str,
    total: i64,
    p: Paging,
    rows: Vec<serde_json::Value>,
) -> axum::response::Response {
    let body = serde_json::json!({ "total": total, "offset": p.offset, key: rows });
    let mut r = axum::Json(body).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&total.to_string()) {
        r.headers_mut().insert("x-total-count", v);
    }
    r
}
