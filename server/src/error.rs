//! One error type; every error leaves as RFC 9457 problem+json without internals.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or wrong credentials")]
    Unauthorized,
    /// 401 with a reason the caller can act on (an enrolment code used or expired).
    #[error("{0}")]
    Denied(String),
    /// 403: known caller, not allowed.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database error")]
    Db(#[from] sqlx::Error),
    #[error("migration error")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("internal error")]
    Internal(String),
    /// Too many failed attempts from this client: retry after this many seconds.
    #[error("too many failed attempts from this address; try again in {0} s")]
    TooMany(u64),
    /// A request body axum refused (malformed JSON, wrong content type, too large).
    #[error("{1}")]
    Rejected(StatusCode, String),
}

/// A rejected body: its status, except that a body cut by the server's body timeout is 408.
fn rejected(status: StatusCode, text: String) -> ApiError {
    if crate::serve::is_body_timeout(&text) {
        ApiError::Rejected(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive within the server's body timeout".into(),
        )
    } else {
        ApiError::Rejected(status, text)
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        rejected(r.status(), r.body_text())
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(r: axum::extract::rejection::BytesRejection) -> Self {
        rejected(r.status(), r.body_text())
    }
}

/// A raw body (CSV uploads) whose rejections (too large) are problem+json.
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        Ok(ApiBytes(axum::body::Bytes::from_request(req, state).await?))
    }
}

/// `Json` whose rejections are problem+json like every other error.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl ApiError {
    /// The HTTP status this error answers with.
    pub fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::Denied(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Db(_) | ApiError::Migrate(_) | ApiError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::Rejected(status, _) => *status,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = self.to_string();
        if status.is_server_error() {
            // Details go to the log, never to the client.
            tracing::error!(error = ?self, "request failed");
        }
        let body = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "detail": detail,
        });
        let mut r = (status, body.to_string()).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        if let ApiError::TooMany(secs) = &self {
            if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}
