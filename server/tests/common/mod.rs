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

/// A malicious (or merely buggy) enrolled phone: it holds a real device key and builds ledger
/// entries by hand, with whatever content it likes, correctly chained and signed. What the
/// server does with them is what it does with any phone's word.
pub struct Forger {
    pub key: evoucher_core::IssuerKey,
    pub token: String,
    pub device_id: String,
    pub provider: String,
    pub seq: i64,
    pub prev: Vec<u8>,
}

/// What a forged entry says; `Default` is a redemption of nothing.
#[derive(Default, Clone)]
pub struct Says {
    pub kind: Option<evoucher_core::ledger::EntryKind>,
    pub voucher_text: String,
    pub voucher_id: Option<evoucher_core::VoucherId>,
    pub provider: Option<String>,
    pub amount: Option<u64>,
    pub currency: Option<String>,
    pub items: Vec<(String, u64)>,
    pub voids: Option<String>,
    pub at: Option<i64>,
}

impl Forger {
    /// Enrol a new device key for `provider` (which must exist) with the admin token.
    pub async fn enrol(s: &AppState, admin: &str, provider: &str) -> Forger {
        let key = evoucher_core::IssuerKey::generate().unwrap();
        let (st, _, c) = request(
            s,
            "POST",
            &format!("/api/v1/providers/{provider}/enrolment-codes"),
            Some(admin),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{c}");
        let (st, _, e) = request(
            s,
            "POST",
            "/api/v1/devices/enrol",
            None,
            Some(serde_json::json!({"code": c["code"], "public_key": key.public_jwk().x})),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{e}");
        Forger {
            key,
            token: e["token"].as_str().unwrap().into(),
            device_id: e["device_id"].as_str().unwrap().into(),
            provider: provider.into(),
            seq: 0,
            prev: evoucher_core::ledger::GENESIS.to_vec(),
        }
    }

    /// The next entry of this device's chain, saying `w`, hashed and signed.
    pub fn entry(&mut self, w: Says) -> evoucher_core::ledger::Entry {
        use evoucher_core::ledger::{Entry, EntryKind, ItemQty};
        let voucher_id = w.voucher_id.unwrap_or_else(|| {
            evoucher_core::verify::inspect(&w.voucher_text)
                .claims
                .map(|v| v.id)
                .unwrap_or(evoucher_core::VoucherId([0; 16]))
        });
        let mut e = Entry {
            seq: self.seq + 1,
            id: uuid_like(self.seq + 1, &self.device_id),
            kind: w.kind.unwrap_or(EntryKind::Redeem),
            voucher_id,
            issuer_kid: vec![0; 8],
            provider: w.provider.unwrap_or_else(|| self.provider.clone()),
            device: self.device_id.clone(),
            amount: w.amount,
            currency: w.currency,
            items: w
                .items
                .into_iter()
                .map(|(code, quantity)| ItemQty { code, quantity })
                .collect(),
            voids: w.voids,
            at: w.at.unwrap_or_else(evoucher_server::now),
            voucher_text: w.voucher_text,
            prev_hash: self.prev.clone(),
            hash: Vec::new(),
            signature: Vec::new(),
        };
        e.hash = e.computed_hash().to_vec();
        e.signature = self.key.sign(&e.hash).to_vec();
        self.seq = e.seq;
        self.prev = e.hash.clone();
        e
    }

    /// Push entries; the answer's results.
    pub async fn push(&self, s: &AppState, entries: &[evoucher_core::ledger::Entry]) -> Vec<Value> {
        let (st, _, r) = request(
            s,
            "POST",
            "/api/v1/sync/redemptions",
            Some(&self.token),
            Some(serde_json::json!({ "entries": entries })),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{r}");
        r["results"].as_array().unwrap().clone()
    }

    /// Build one entry saying `w`, push it alone, and return (entry id, status, reason).
    pub async fn says(&mut self, s: &AppState, w: Says) -> (String, String, String) {
        let e = self.entry(w);
        let r = self.push(s, std::slice::from_ref(&e)).await;
        assert_eq!(r.len(), 1);
        (
            e.id,
            r[0]["status"].as_str().unwrap().into(),
            r[0]["reason"].as_str().unwrap_or("").into(),
        )
    }
}

/// A unique entry id for (seq, device).
fn uuid_like(seq: i64, device: &str) -> String {
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(format!(
        "{device}/{seq}/{}",
        std::process::id()
    )));
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
