//! The server through `app().oneshot(...)` on a real SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use evoucher_core::{verify, TrustStore};
use evoucher_server::{app, AppState, Config};
use tower::ServiceExt;

const ADMIN: &str = "test-admin-token-0123456789";

async fn state(name: &str) -> (AppState, String) {
    let d = std::env::temp_dir().join(format!("evoucher-server-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let db = common::database(&d, name).await;
    let cfg = Config {
        database: db.clone(),
        admin_token: ADMIN.into(),
        master_key: [9; 32],
    };
    (AppState::new(&cfg).await.unwrap(), db)
}

async fn call(
    s: &AppState,
    method: &str,
    uri: &str,
    admin: bool,
    body: Option<serde_json::Value>,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    common::request(s, method, uri, admin.then_some(ADMIN), body).await
}

fn program() -> serde_json::Value {
    serde_json::json!({"id": "food-2026", "name": "Food 2026", "issuer": "https://food.example.org", "currency": "KES", "amount": 250000, "validity_days": 30, "categories": ["grocery"]})
}

#[tokio::test]
async fn health_and_readiness() {
    let (s, _) = state("health").await;
    assert_eq!(
        call(&s, "GET", "/healthz", false, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&s, "GET", "/readyz", false, None).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn issue_and_verify_offline_against_the_served_trust_list() {
    let (s, db) = state("issue").await;
    let (st, _, j) = call(&s, "POST", "/api/v1/programs", true, Some(program())).await;
    assert_eq!(st, StatusCode::CREATED, "{j}");
    let kid1 = j["kid"].as_str().unwrap().to_owned();
    let (st, _, j) = call(&s, "POST", "/api/v1/programs/food-2026/vouchers", true, Some(serde_json::json!({"beneficiaries": [{"id": "B-1", "name": "Amina"}, {"id": "B-2", "amount": 1000}]}))).await;
    assert_eq!(st, StatusCode::CREATED, "{j}");
    let vouchers = j["vouchers"].as_array().unwrap().clone();
    assert_eq!(vouchers.len(), 2);

    let (st, h, jwks) = call(&s, "GET", "/api/v1/trust", false, None).await;
    assert_eq!(st, StatusCode::OK);
    let trust = TrustStore::from_jwks_json(&jwks.to_string()).unwrap();
    let now = evoucher_server::now() + 10;
    for v in &vouchers {
        let ok = verify(v["text"].as_str().unwrap(), &trust, now).unwrap();
        assert_eq!(ok.voucher.id.to_hex(), v["id"].as_str().unwrap());
        assert_eq!(ok.voucher.categories, vec!["grocery".to_owned()]);
        assert_eq!(ok.kid.to_string(), kid1);
    }
    // ETag: unchanged list → 304.
    let etag = h.get(header::ETAG).unwrap().to_str().unwrap().to_owned();
    let req = Request::builder()
        .uri("/api/v1/trust")
        .header(header::IF_NONE_MATCH, &etag)
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app(s.clone()).oneshot(req).await.unwrap().status(),
        StatusCode::NOT_MODIFIED
    );

    // Rotation: the retired key stays (its vouchers have not expired) with an `exp`; new
    // vouchers use the new key; old ones still verify.
    let (st, _, j) = call(
        &s,
        "POST",
        "/api/v1/programs/food-2026/keys/rotate",
        true,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let kid2 = j["kid"].as_str().unwrap().to_owned();
    let (_, h2, jwks) = call(&s, "GET", "/api/v1/trust", false, None).await;
    assert_ne!(h2.get(header::ETAG).unwrap().to_str().unwrap(), etag);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys
        .iter()
        .any(|k| k["kid"] == kid1.as_str() && k["exp"].is_i64()));
    let trust = TrustStore::from_jwks_json(&jwks.to_string()).unwrap();
    assert!(verify(vouchers[0]["text"].as_str().unwrap(), &trust, now).is_ok());
    let (_, _, j) = call(
        &s,
        "POST",
        "/api/v1/programs/food-2026/vouchers",
        true,
        Some(serde_json::json!({"beneficiaries": [{"id": "B-3"}]})),
    )
    .await;
    let v3 = verify(j["vouchers"][0]["text"].as_str().unwrap(), &trust, now).unwrap();
    assert_eq!(v3.kid.to_string(), kid2);

    // Private keys are sealed at rest: the stored value is not the key, and only opens with
    // the master key it was sealed with.
    let conn = rusqlite_free_read(&db, &kid1);
    assert!(!conn.is_empty());
    let other = evoucher_server::seal::Sealer::new([1; 32]);
    assert!(other.open(&kid1, &conn).is_err());
    assert!(s.sealer.open(&kid1, &conn).is_ok());
    assert!(s.sealer.open(&kid2, &conn).is_err(), "bound to its kid");
}

/// Read a sealed key straight from the SQLite file with sqlx (no server code involved).
fn rusqlite_free_read(url: &str, kid: &str) -> String {
    let url = url.to_owned();
    let kid = kid.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                use sqlx::Row;
                sqlx::any::install_default_drivers();
                let pool = sqlx::AnyPool::connect(&url).await.unwrap();
                sqlx::query("SELECT sealed_private FROM issuer_keys WHERE kid = $1")
                    .bind(kid)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                    .get::<String, _>(0)
            })
    })
    .join()
    .unwrap()
}

#[tokio::test]
async fn cancel_puts_a_voucher_on_the_revocation_feed() {
    let (s, _) = state("cancel").await;
    call(&s, "POST", "/api/v1/programs", true, Some(program())).await;
    let (_, _, j) = call(
        &s,
        "POST",
        "/api/v1/programs/food-2026/vouchers",
        true,
        Some(serde_json::json!({"beneficiaries": [{"id": "B-1"}, {"id": "B-2"}]})),
    )
    .await;
    let ids: Vec<String> = j["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    let (st, _, a) = call(
        &s,
        "POST",
        &format!("/api/v1/vouchers/{}/cancel", ids[0]),
        true,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (_, _, again) = call(
        &s,
        "POST",
        &format!("/api/v1/vouchers/{}/cancel", ids[0]),
        true,
        None,
    )
    .await;
    assert_eq!(a["seq"], again["seq"], "idempotent");
    call(
        &s,
        "POST",
        &format!("/api/v1/vouchers/{}/cancel", ids[1]),
        true,
        None,
    )
    .await;
    let (_, _, feed) = call(&s, "GET", "/api/v1/revocations?since=0", false, None).await;
    assert_eq!(feed["revocations"].as_array().unwrap().len(), 2);
    assert_eq!(feed["next"], 2);
    let (_, _, feed) = call(&s, "GET", "/api/v1/revocations?since=1", false, None).await;
    assert_eq!(feed["revocations"][0]["voucher_id"], ids[1].as_str());
    let (st, h, p) = call(
        &s,
        "POST",
        "/api/v1/vouchers/00000000000000000000000000000000/cancel",
        true,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        h.get(header::CONTENT_TYPE).unwrap(),
        "application/problem+json"
    );
    assert_eq!(p["status"], 404);
}

#[tokio::test]
async fn bad_requests_are_problem_json_and_store_nothing() {
    let (s, _) = state("bad").await;
    // No token, wrong token.
    let (st, h, p) = call(&s, "POST", "/api/v1/programs", false, Some(program())).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(
        h.get(header::CONTENT_TYPE).unwrap(),
        "application/problem+json"
    );
    assert_eq!(p["status"], 401);
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/programs")
        .header(header::AUTHORIZATION, "Bearer wrong")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(program().to_string()))
        .unwrap();
    assert_eq!(
        app(s.clone()).oneshot(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // Malformed and invalid bodies.
    for body in [
        serde_json::json!({"id": "x"}),
        serde_json::json!({"id": "bad id!", "name": "n", "issuer": "i"}),
        serde_json::json!({"id": "p", "name": "n", "issuer": "i", "currency": "kes", "amount": 1}),
    ] {
        let (st, h, p) = call(&s, "POST", "/api/v1/programs", true, Some(body)).await;
        assert!(st.is_client_error(), "{st}");
        assert_eq!(
            h.get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json",
            "{p}"
        );
    }
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/programs")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let r = app(s.clone()).oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.headers().get(header::CONTENT_TYPE).unwrap(),
        "application/problem+json"
    );
    // Oversized (over 1 MiB).
    let big = serde_json::json!({"id": "p", "name": "x".repeat(2 * 1024 * 1024), "issuer": "i"});
    let (st, h, _) = call(&s, "POST", "/api/v1/programs", true, Some(big)).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        h.get(header::CONTENT_TYPE).unwrap(),
        "application/problem+json"
    );
    // Nothing was stored.
    let (_, _, jwks) = call(&s, "GET", "/api/v1/trust", false, None).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 0);
    // A program with neither a cash value nor items is refused.
    let (st, _, _) = call(
        &s,
        "POST",
        "/api/v1/programs",
        true,
        Some(serde_json::json!({"id": "nothing", "name": "n", "issuer": "https://i.example"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // A batch with one bad beneficiary (no amount, and no default) stores none of it.
    let (st, _, _) = call(
        &s,
        "POST",
        "/api/v1/programs",
        true,
        Some(serde_json::json!({"id": "noamount", "name": "n", "issuer": "https://i.example", "currency": "KES"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _, _) = call(
        &s,
        "POST",
        "/api/v1/programs/noamount/vouchers",
        true,
        Some(serde_json::json!({"beneficiaries": [{"id": "B-1", "amount": 5}, {"id": "B-2"}]})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _, _) = call(
        &s,
        "POST",
        "/api/v1/programs/noamount/vouchers",
        true,
        Some(serde_json::json!({"beneficiaries": [{"id": "B-1", "amount": 5}]})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "B-1 alone has its amount");
    let (_, h, _) = call(
        &s,
        "GET",
        "/api/v1/programs/noamount/letters.pdf",
        true,
        None,
    )
    .await;
    assert_eq!(h["x-total-count"], "1", "the refused batch stored nothing");
    // Duplicate program.
    call(&s, "POST", "/api/v1/programs", true, Some(program())).await;
    assert_eq!(
        call(&s, "POST", "/api/v1/programs", true, Some(program()))
            .await
            .0,
        StatusCode::CONFLICT
    );
}

/// A device enrolled for a new provider `SP-T`: its token.
async fn device_token(s: &AppState) -> String {
    call(
        s,
        "POST",
        "/api/v1/providers",
        true,
        Some(serde_json::json!({"id": "SP-T", "name": "T"})),
    )
    .await;
    let (_, _, c) = call(
        s,
        "POST",
        "/api/v1/providers/SP-T/enrolment-codes",
        true,
        None,
    )
    .await;
    let key = evoucher_core::IssuerKey::from_seed([41; 32]).public_jwk().x;
    let (st, _, e) = call(
        s,
        "POST",
        "/api/v1/devices/enrol",
        false,
        Some(serde_json::json!({"code": c["code"], "public_key": key})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{e}");
    e["token"].as_str().unwrap().to_owned()
}

/// Credentials are checked before a body is read: without valid ones an admin or device
/// endpoint answers 401 at once, whatever length the request declares (an unauthenticated
/// upload never makes the server read, let alone buffer, its body).
#[tokio::test]
async fn credentials_are_checked_before_any_body_is_read() {
    let (s, _) = state("auth-first").await;
    let device = device_token(&s).await;
    let huge = 1u64 << 40;
    let cases: [(&str, &str, Option<String>); 7] = [
        ("/api/v1/programs", "application/json", None),
        (
            "/api/v1/programs",
            "application/json",
            Some("not-the-admin-token-at-all".into()),
        ),
        ("/api/v1/programs", "application/json", Some(device.clone())),
        ("/api/v1/programs/p/beneficiaries", "text/csv", None),
        ("/api/v1/sync/redemptions", "application/json", None),
        (
            "/api/v1/sync/redemptions",
            "application/json",
            Some(ADMIN.into()),
        ),
        (
            "/api/v1/providers/SP-T/enrolment-codes",
            "application/json",
            Some(device),
        ),
    ];
    for (uri, ctype, token) in cases {
        let mut b = Request::builder()
            .method("POST")
            .uri(uri)
            .header(header::CONTENT_TYPE, ctype)
            .header(header::CONTENT_LENGTH, huge.to_string());
        if let Some(t) = &token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        // A body that never ends: reading it would hang the test, so the answer proves that
        // nothing of it was read.
        let never = futures_util::stream::pending::<Result<Vec<u8>, std::io::Error>>();
        let req = b.body(Body::from_stream(never)).unwrap();
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            app(s.clone()).oneshot(req),
        )
        .await
        .expect("answered without reading the body")
        .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{uri} with {token:?}");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused_whether_declared_or_streamed() {
    let (s, _) = state("oversized").await;
    let device = device_token(&s).await;
    let cases = [
        (
            "/api/v1/programs",
            "application/json",
            1024 * 1024,
            Some(ADMIN),
        ),
        (
            "/api/v1/devices/enrol",
            "application/json",
            1024 * 1024,
            None,
        ),
        (
            "/api/v1/sync/redemptions",
            "application/json",
            4 * 1024 * 1024,
            Some(device.as_str()),
        ),
        (
            "/api/v1/programs/p/beneficiaries",
            "text/csv",
            16 * 1024 * 1024,
            Some(ADMIN),
        ),
    ];
    // POST `body` to `uri` with `token`, declaring `declared` as its length if given; the
    // answer's status and content type.
    let post =
        |uri: &str, ctype: &str, token: Option<&str>, declared: Option<usize>, body: Body| {
            let mut b = Request::builder()
                .method("POST")
                .uri(uri)
                .header(header::CONTENT_TYPE, ctype);
            if let Some(t) = token {
                b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
            }
            if let Some(n) = declared {
                b = b.header(header::CONTENT_LENGTH, n.to_string());
            }
            let req = b.body(body).unwrap();
            let s = s.clone();
            async move {
                let r = app(s).oneshot(req).await.unwrap();
                let ctype = r.headers().get(header::CONTENT_TYPE).cloned();
                (r.status(), ctype.unwrap().to_str().unwrap().to_owned())
            }
        };
    let problem = (
        StatusCode::PAYLOAD_TOO_LARGE,
        "application/problem+json".to_owned(),
    );
    for (uri, ctype, limit, token) in cases {
        // Declared: a Content-Length over the limit is answered before the body is read (the
        // small body sent here would otherwise be read and answered 400).
        let r = post(uri, ctype, token, Some(limit + 1), Body::from("{}")).await;
        assert_eq!(r, problem, "{uri} declared");
        // At the limit it is not refused for its size.
        let r = post(uri, ctype, token, Some(limit), Body::from("{}")).await;
        assert_ne!(r.0, StatusCode::PAYLOAD_TOO_LARGE, "{uri} at limit");
        // Streamed without a length: cut at the limit as it arrives.
        let chunks = (0..=limit / 65536).map(|_| Ok::<_, std::io::Error>(vec![b' '; 65536]));
        let streamed = Body::from_stream(futures_util::stream::iter(chunks));
        assert_eq!(
            post(uri, ctype, token, None, streamed).await,
            problem,
            "{uri} streamed"
        );
    }
    // Nothing was stored.
    let (_, _, jwks) = call(&s, "GET", "/api/v1/trust", false, None).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 0);
}
