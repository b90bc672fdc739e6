//! Shared by the server's tests: one request through `app().oneshot(...)`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use evoucher_server::{app, AppState};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// Send `method uri` with an optional bearer token and JSON body; the answer's status, headers
/// and body (JSON, or the text as a JSON string when it is not JSON).
pub async fn request(
    s: &AppState,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let body = body.map(|j| ("application/json", j.to_string().into_bytes()));
    let (status, headers, bytes) = request_raw(s, method, uri, token, body).await;
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, headers, json)
}

/// Send `method uri` with an optional bearer token and a body of the given content type; the
/// answer's status, headers and raw body.
pub async fn request_raw(
    s: &AppState,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = match body {
        Some((ct, bytes)) => b
            .header(header::CONTENT_TYPE, ct)
            .body(Body::from(bytes))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let resp = app(s.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, bytes)
}

/// The database a test runs on: a SQLite file in `dir` by default; with
/// `EVOUCHER_TEST_POSTGRES=postgres://…/postgres` (set by `scripts/test.sh` for its second,
/// PostgreSQL pass) a fresh database of its own on that server, named after the test.
pub async fn database(dir: &std::path::Path, name: &str) -> String {
    match std::env::var("EVOUCHER_TEST_POSTGRES") {
        Ok(admin) if !admin.is_empty() => {
            use sqlx::Executor;
            let db: String = format!("t_{name}_{}", std::process::id())
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            let pool = sqlx::PgPool::connect(&admin)
                .await
                .expect("EVOUCHER_TEST_POSTGRES");
            pool.execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
            )))
            .await
            .unwrap();
            pool.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                .await
                .unwrap();
            pool.close().await;
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            format!("{base}/{db}")
        }
        _ => format!("sqlite://{}", dir.join("server.db").display()),
    }
}

/// Debian's Noto fonts of these families (`"Sans"`, `"SansArabic"`, …; fonts-noto-core,
/// installed by scripts/test.sh), in this fallback order.
pub fn noto(families: &[&str]) -> evoucher_server::fonts::LetterFonts {
    let dir = std::path::Path::new("/usr/share/fonts/truetype/noto");
    let files: Vec<_> = families
        .iter()
        .map(|f| dir.join(format!("Noto{f}-Regular.ttf")))
        .collect();
    evoucher_server::fonts::LetterFonts::load(&files)
        .expect("fonts-noto-core is needed; scripts/test.sh installs it")
}
