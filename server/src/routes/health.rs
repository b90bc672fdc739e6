//! Health, readiness, and the API description.

use axum::extract::State;
use axum::routing::get;
use axum::Router;

use crate::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
}

/// The API's description (OpenAPI 3.1), kept beside the code in `server/openapi.json`; a test
/// checks that it names every route and that every route it names answers.
pub const OPENAPI: &str = include_str!("../../openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// Any other path: problem+json like every other error.
pub async fn no_such_endpoint() -> ApiError {
    ApiError::NotFound("no such endpoint")
}

/// A known path with a method it does not take: 405, problem+json like every other error.
pub async fn method_not_allowed() -> ApiError {
    ApiError::Rejected(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "this endpoint does not take that method".into(),
    )
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok"
}

/// The database answers.
async fn readyz(State(s): State<AppState>) -> Result<&'static str, ApiError> {
    sqlx::query("SELECT 1").execute(&s.db).await?;
    Ok("ready")
}
