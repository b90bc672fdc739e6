//! People: accounts, passwords (Argon2id), sessions (cookie attributes, fixation, idle and
//! absolute expiry, sign-out on the server), CSRF, sign-in throttling that never says whether an
//! account exists, API tokens with their user's role, and the audit log (append-only in the
//! database, hash-chained, no beneficiary names or secrets in it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::request;
use evoucher_server::{app, AppState, Config};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const ADMIN: &str = "people-admin-token-0123456789";

async fn state(name: &str) -> AppState {
    let dir = std::env::temp_dir().join(format!("evoucher-people-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    AppState::new(&Config {
        database: common::database(&dir, name).await,
        admin_token: ADMIN.into(),
        master_key: [3; 32],
    })
    .await
    .unwrap()
}

/// A raw request with optional cookie, CSRF header and Origin; (status, headers, JSON body).
async fn send(
    s: &AppState,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    origin: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "backoffice.example");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, format!("evoucher_session={c}"));
    }
    if let Some(t) = csrf {
        b = b.header("x-csrf-token", t);
    }
    if let Some(o) = origin {
        b = b.header(header::ORIGIN, o);
    }
    let req = match body {
        Some(j) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(j.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let resp = app(s.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Add an account with the admin token; its one-time password.
async fn add(s: &AppState, name: &str, role: &str, extra: Value) -> (String, String) {
    let mut body = json!({"name": name, "role": role});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (st, _, v) = request(s, "POST", "/api/v1/users", Some(ADMIN), Some(body)).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    (
        v["user"]["id"].as_str().unwrap().to_owned(),
        v["one_time_password"].as_str().unwrap().to_owned(),
    )
}

/// Sign in; (session id from the cookie, CSRF token).
async fn sign_in(s: &AppState, name: &str, password: &str) -> (String, String) {
    let (st, h, v) = send(
        s,
        "POST",
        "/api/v1/session",
        None,
        None,
        None,
        Some(json!({"name": name, "password": password})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let cookie = h[header::SET_COOKIE].to_str().unwrap().to_owned();
    let sid = cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("evoucher_session=")
        .unwrap()
        .to_owned();
    (sid, v["csrf"].as_str().unwrap().to_owned())
}

/// An account ready to use: added, signed in, password changed. (session, csrf, password)
async fn person(s: &AppState, name: &str, role: &str, extra: Value) -> (String, String, String) {
    let (_, otp) = add(s, name, role, extra).await;
    let (sid, csrf) = sign_in(s, name, &otp).await;
    let password = format!("{name}-long-password-1");
    let (st, _, v) = send(
        s,
        "POST",
        "/api/v1/me/password",
        Some(&sid),
        Some(&csrf),
        Some("https://backoffice.example"),
        Some(json!({"current": otp, "new": password})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    (sid, csrf, password)
}

const ORIGIN: Option<&str> = Some("http://backoffice.example");

#[tokio::test]
async fn one_time_passwords_sessions_and_csrf() {
    let s = state("sessions").await;
    let (_, otp) = add(&s, "amina", "program_manager", json!({})).await;
    // The stored hash is Argon2id with OWASP's parameters; the password is nowhere else.
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE name = 'amina'")
        .fetch_one(&s.db)
        .await
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    // A cookie the browser brings is never taken on: sign-in makes a new session.
    let (sid, csrf) = sign_in(&s, "amina", &otp).await;
    let (sid2, _) = sign_in(&s, "amina", &otp).await;
    assert_ne!(sid, sid2);
    assert_eq!(sid.len(), 64);
    let (st, _, _) = send(
        &s,
        "GET",
        "/api/v1/me",
        Some("made-up-session-id"),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // The cookie: HttpOnly, SameSite=Strict, not Secure unless configured.
    let (_, h, _) = send(
        &s,
        "POST",
        "/api/v1/session",
        None,
        None,
        None,
        Some(json!({"name": "amina", "password": otp})),
    )
    .await;
    let c = h[header::SET_COOKIE].to_str().unwrap();
    assert!(
        c.contains("HttpOnly")
            && c.contains("SameSite=Strict")
            && c.contains("Path=/")
            && !c.contains("Secure"),
        "{c}"
    );
    let secure = s.clone().with_secure_cookies(true);
    let (_, h, _) = send(
        &secure,
        "POST",
        "/api/v1/session",
        None,
        None,
        None,
        Some(json!({"name": "amina", "password": otp})),
    )
    .await;
    assert!(h[header::SET_COOKIE].to_str().unwrap().contains("; Secure"));
    // A one-time password must be changed before anything else.
    let (st, _, v) = send(&s, "GET", "/api/v1/programs", Some(&sid), None, None, None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("one-time password"));
    // State-changing requests from a browser need the CSRF token and our own Origin.
    let change = json!({"current": otp, "new": "a-much-better-password"});
    for (csrf_h, origin) in [
        (None, ORIGIN),
        (Some("wrong-token"), ORIGIN),
        (Some(csrf.as_str()), Some("https://evil.example")),
        (Some(csrf.as_str()), None),
    ] {
        let (st, _, v) = send(
            &s,
            "POST",
            "/api/v1/me/password",
            Some(&sid),
            csrf_h,
            origin,
            Some(change.clone()),
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{csrf_h:?} {origin:?}: {v}");
    }
    // Too short, or the account's name: refused.
    for bad in ["short", "amina"] {
        let (st, _, _) = send(
            &s,
            "POST",
            "/api/v1/me/password",
            Some(&sid),
            Some(&csrf),
            ORIGIN,
            Some(json!({"current": otp, "new": bad})),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
    }
    let (st, _, v) = send(
        &s,
        "POST",
        "/api/v1/me/password",
        Some(&sid),
        Some(&csrf),
        ORIGIN,
        Some(change),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    // The other session ended with the password change; this one goes on.
    assert_eq!(
        send(&s, "GET", "/api/v1/me", Some(&sid2), None, None, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (st, _, me) = send(&s, "GET", "/api/v1/me", Some(&sid), None, None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        (me["user"]["name"].as_str(), me["csrf"].as_str()),
        (Some("amina"), Some(csrf.as_str()))
    );
    assert_eq!(
        send(&s, "GET", "/api/v1/programs", Some(&sid), None, None, None)
            .await
            .0,
        StatusCode::OK
    );
    // Sign-out ends the session on the server: the same cookie is refused afterwards.
    let (st, h, _) = send(
        &s,
        "POST",
        "/api/v1/session/end",
        Some(&sid),
        Some(&csrf),
        ORIGIN,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(h[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        send(&s, "GET", "/api/v1/me", Some(&sid), None, None, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // Idle and absolute expiry.
    let (sid3, _) = sign_in(&s, "amina", "a-much-better-password").await;
    let sid3_hash = evoucher_server::secret::hash_secret(&sid3);
    let t = evoucher_server::now();
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
        .bind(t - 31 * 60)
        .bind(&sid3_hash)
        .execute(&s.db)
        .await
        .unwrap();
    assert_eq!(
        send(&s, "GET", "/api/v1/me", Some(&sid3), None, None, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "idle"
    );
    let (sid4, _) = sign_in(&s, "amina", "a-much-better-password").await;
    sqlx::query("UPDATE sessions SET created_at = $1 WHERE id_hash = $2")
        .bind(t - 13 * 3600)
        .bind(evoucher_server::secret::hash_secret(&sid4))
        .execute(&s.db)
        .await
        .unwrap();
    assert_eq!(
        send(&s, "GET", "/api/v1/me", Some(&sid4), None, None, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "absolute"
    );
}

/// Behind a reverse proxy (`--public-url`): the browser's origin is the public address, not
/// the `Host` the proxy forwards; forms from anywhere else, the internal address included, are
/// refused; over https the cookie is `Secure`; a URL with a path, user or other scheme is
/// refused.
#[tokio::test]
async fn behind_a_proxy_the_public_url_is_the_origin() {
    let s = state("public-url")
        .await
        .with_public_url(Some("https://Vouchers.Example.org/"))
        .unwrap();
    let (_, otp) = add(&s, "proxied", "auditor", json!({})).await;
    let (st, h, v) = send(
        &s,
        "POST",
        "/api/v1/session",
        None,
        None,
        None,
        Some(json!({"name": "proxied", "password": otp})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(h[header::SET_COOKIE].to_str().unwrap().contains("; Secure"));
    let (sid, csrf) = sign_in(&s, "proxied", &otp).await;
    let change = json!({"current": otp, "new": "proxied-password-123"});
    for origin in [
        "http://backoffice.example",
        "http://vouchers.example.org",
        "https://vouchers.example.org:8443",
        "https://evil.example",
    ] {
        let (st, _, v) = send(
            &s,
            "POST",
            "/api/v1/me/password",
            Some(&sid),
            Some(&csrf),
            Some(origin),
            Some(change.clone()),
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{origin}: {v}");
    }
    let (st, _, v) = send(
        &s,
        "POST",
        "/api/v1/me/password",
        Some(&sid),
        Some(&csrf),
        Some("https://vouchers.example.org"),
        Some(change),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    for bad in [
        "vouchers.example.org",
        "ftp://vouchers.example.org",
        "https://vouchers.example.org/back-office",
        "https://user@vouchers.example.org",
        "https://",
    ] {
        assert!(evoucher_server::public_origin(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn sign_in_never_says_whether_an_account_exists_and_is_throttled() {
    let s = state("throttle").await;
    add(&s, "juma", "auditor", json!({})).await;
    let attempt = |name: &'static str, password: &'static str| {
        let s = s.clone();
        async move {
            send(
                &s,
                "POST",
                "/api/v1/session",
                None,
                None,
                None,
                Some(json!({"name": name, "password": password})),
            )
            .await
        }
    };
    let (st1, _, v1) = attempt("juma", "wrong password").await;
    let (st2, _, v2) = attempt("nobody", "wrong password").await;
    assert_eq!(
        (st1, st2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        v1["detail"], v2["detail"],
        "the same answer for a known and an unknown account"
    );
    // Per account: five failures, then refused even with the right password.
    for _ in 0..4 {
        attempt("juma", "wrong password").await;
    }
    let (st, h, _) = attempt("juma", "wrong password").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert!(h.contains_key(header::RETRY_AFTER));
    // Per client address: twenty failures (whatever the accounts).
    let s2 = state("throttle2").await;
    for i in 0..20 {
        let name = format!("nobody{i}");
        let (st, _, _) = send(
            &s2,
            "POST",
            "/api/v1/session",
            None,
            None,
            None,
            Some(json!({"name": name, "password": "x"})),
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let (st, _, _) = send(
        &s2,
        "POST",
        "/api/v1/session",
        None,
        None,
        None,
        Some(json!({"name": "someone", "password": "x"})),
    )
    .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn api_tokens_carry_their_users_role_and_stop_when_revoked_or_disabled() {
    let s = state("tokens").await;
    let (sid, csrf, _) = person(&s, "ops", "program_manager", json!({})).await;
    let (st, _, t) = send(
        &s,
        "POST",
        "/api/v1/me/tokens",
        Some(&sid),
        Some(&csrf),
        ORIGIN,
        Some(json!({"name": "nightly import"})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let token = t["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("evt_"));
    // The token acts with the program manager's role: creates a program, may not read the
    // audit log or add accounts.
    let p = json!({"id": "p1", "name": "P1", "issuer": "https://p.example", "currency": "KES", "amount": 100});
    assert_eq!(
        request(&s, "POST", "/api/v1/programs", Some(&token), Some(p))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(
        request(&s, "GET", "/api/v1/audit", Some(&token), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        request(
            &s,
            "POST",
            "/api/v1/users",
            Some(&token),
            Some(json!({"name": "x", "role": "admin"}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    // Listed without the token itself; stored hashed.
    let (_, _, list) = send(&s, "GET", "/api/v1/me/tokens", Some(&sid), None, None, None).await;
    assert_eq!(list["tokens"][0]["name"], "nightly import");
    assert!(!list.to_string().contains(&token));
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE token_hash = $1")
        .bind(evoucher_server::secret::hash_secret(&token))
        .fetch_one(&s.db)
        .await
        .unwrap();
    assert_eq!(stored, 1);
    // Revoked: refused at once.
    let id = t["id"].as_str().unwrap();
    let (st, _, _) = send(
        &s,
        "POST",
        &format!("/api/v1/me/tokens/{id}/revoke"),
        Some(&sid),
        Some(&csrf),
        ORIGIN,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        request(&s, "GET", "/api/v1/programs", Some(&token), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // A disabled account: its other tokens and its sessions stop, it cannot sign in.
    let (_, _, t2) = send(
        &s,
        "POST",
        "/api/v1/me/tokens",
        Some(&sid),
        Some(&csrf),
        ORIGIN,
        Some(json!({"name": "second"})),
    )
    .await;
    let token2 = t2["token"].as_str().unwrap().to_owned();
    let uid: String = sqlx::query_scalar("SELECT id FROM users WHERE name = 'ops'")
        .fetch_one(&s.db)
        .await
        .unwrap();
    assert_eq!(
        request(
            &s,
            "POST",
            &format!("/api/v1/users/{uid}/disable"),
            Some(ADMIN),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        request(&s, "GET", "/api/v1/programs", Some(&token2), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&s, "GET", "/api/v1/me", Some(&sid), None, None, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (st, _, _) = send(
        &s,
        "POST",
        "/api/v1/session",
        None,
        None,
        None,
        Some(json!({"name": "ops", "password": "ops-long-password-1"})),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // A reset gives a new one-time password.
    let (st, _, r) = request(&s, "POST", "/api/v1/users/ops/reset", Some(ADMIN), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(r["one_time_password"].as_str().unwrap().len(), 16);
}

/// The world the permission matrices run in: programs p1 and p2, providers SP-1 and SP-2, and
/// a voucher of p1 (its id).
async fn world(s: &AppState) -> String {
    for id in ["p1", "p2"] {
        let body = json!({"id": id, "name": id, "issuer": "https://p.example", "currency": "KES", "amount": 100});
        request(s, "POST", "/api/v1/programs", Some(ADMIN), Some(body)).await;
    }
    for sp in ["SP-1", "SP-2"] {
        let body = json!({"id": sp, "name": sp});
        request(s, "POST", "/api/v1/providers", Some(ADMIN), Some(body)).await;
    }
    let issue = json!({"beneficiaries": [{"id": "B-1"}]});
    let (_, _, v) = request(
        s,
        "POST",
        "/api/v1/programs/p1/vouchers",
        Some(ADMIN),
        Some(issue),
    )
    .await;
    v["vouchers"][0]["id"].as_str().unwrap().to_owned()
}

/// Every route × every kind of caller → the expected allow or deny. The expectations are
/// written here, from the roles' description, not read from the server's table.
#[tokio::test]
async fn the_permission_matrix() {
    let s = state("matrix").await;
    // The world: two programs, a provider with a device, a voucher.
    let voucher = world(&s).await;
    let phone = common::Forger::enrol(&s, ADMIN, "SP-1").await;
    // The callers: a token for each role (API tokens carry the role), limited ones, and the
    // ones that must get nothing.
    let mut callers: Vec<(&str, Option<String>)> =
        vec![("none", None), ("admin-token", Some(ADMIN.into()))];
    let mut tokens = std::collections::HashMap::new();
    for (name, role, extra) in [
        ("admin", "admin", json!({})),
        ("manager", "program_manager", json!({})),
        ("accountant", "accountant", json!({})),
        ("cash", "cash_manager", json!({})),
        ("auditor", "auditor", json!({})),
        ("provider", "provider", json!({"provider": "SP-1"})),
        (
            "other-manager",
            "program_manager",
            json!({"programs": ["p2"]}),
        ),
        ("other-provider", "provider", json!({"provider": "SP-2"})),
        ("disabled", "program_manager", json!({})),
    ] {
        let (sid, csrf, _) = person(&s, name, role, extra).await;
        let (_, _, t) = send(
            &s,
            "POST",
            "/api/v1/me/tokens",
            Some(&sid),
            Some(&csrf),
            ORIGIN,
            Some(json!({"name": "m"})),
        )
        .await;
        tokens.insert(name, t["token"].as_str().unwrap().to_owned());
    }
    let disabled: String = sqlx::query_scalar("SELECT id FROM users WHERE name = 'disabled'")
        .fetch_one(&s.db)
        .await
        .unwrap();
    request(
        &s,
        "POST",
        &format!("/api/v1/users/{disabled}/disable"),
        Some(ADMIN),
        None,
    )
    .await;
    for name in [
        "admin",
        "manager",
        "accountant",
        "cash",
        "auditor",
        "provider",
        "other-manager",
        "other-provider",
        "disabled",
    ] {
        callers.push((name, Some(tokens[name].clone())));
    }
    callers.push(("device", Some(phone.token.clone())));
    // A target account for the account routes.
    let (target, _) = add(&s, "target", "auditor", json!({})).await;

    // (method, path, body, callers allowed). Everyone else: 401 (no valid credentials) or 403.
    let everyone = [
        "admin-token",
        "admin",
        "manager",
        "accountant",
        "cash",
        "auditor",
        "provider",
        "other-manager",
        "other-provider",
    ];
    let readers = [
        "admin-token",
        "admin",
        "manager",
        "accountant",
        "cash",
        "auditor",
    ];
    let p1_readers = [
        "admin-token",
        "admin",
        "manager",
        "accountant",
        "cash",
        "auditor",
    ];
    let names = ["admin-token", "manager", "auditor"];
    let managers = ["admin-token", "manager"];
    // Claims are made by provider accounts (the admin token has no provider) and phones;
    // payments are the cash manager's.
    let providers = ["provider", "other-provider"];
    let payments = ["admin-token", "cash"];
    let p = |s: &str| s.to_owned();
    #[allow(clippy::type_complexity)]
    let routes: Vec<(&str, String, Option<Value>, Vec<&str>)> = vec![
        (
            "GET",
            p("/api/v1/programs"),
            None,
            readers.iter().copied().chain(["other-manager"]).collect(),
        ),
        ("GET", p("/api/v1/programs/p1"), None, p1_readers.to_vec()),
        (
            "GET",
            p("/api/v1/programs/p2"),
            None,
            readers.iter().copied().chain(["other-manager"]).collect(),
        ),
        (
            "POST",
            p("/api/v1/programs"),
            Some(
                json!({"id": "new", "name": "N", "issuer": "https://n.example", "currency": "KES", "amount": 1}),
            ),
            managers.to_vec(),
        ),
        (
            "POST",
            p("/api/v1/programs/p1/keys/rotate"),
            Some(json!({})),
            managers.to_vec(),
        ),
        (
            "POST",
            p("/api/v1/programs/p2/keys/rotate"),
            Some(json!({})),
            vec!["admin-token", "manager", "other-manager"],
        ),
        (
            "POST",
            p("/api/v1/programs/p1/beneficiaries"),
            None,
            managers.to_vec(),
        ),
        (
            "GET",
            p("/api/v1/programs/p1/beneficiaries"),
            None,
            names.to_vec(),
        ),
        (
            "POST",
            p("/api/v1/programs/p1/vouchers"),
            Some(json!({"imported": true})),
            managers.to_vec(),
        ),
        (
            "GET",
            p("/api/v1/programs/p1/vouchers"),
            None,
            p1_readers.to_vec(),
        ),
        (
            "GET",
            p("/api/v1/programs/p1/letters.pdf"),
            None,
            names.to_vec(),
        ),
        (
            "GET",
            format!("/api/v1/vouchers/{voucher}"),
            None,
            p1_readers.to_vec(),
        ),
        (
            "GET",
            format!("/api/v1/vouchers/{voucher}/qr.png"),
            None,
            names.to_vec(),
        ),
        (
            "GET",
            format!("/api/v1/vouchers/{voucher}/letter.pdf"),
            None,
            names.to_vec(),
        ),
        (
            "POST",
            format!("/api/v1/vouchers/{voucher}/cancel"),
            Some(json!({})),
            managers.to_vec(),
        ),
        ("GET", p("/api/v1/providers"), None, everyone.to_vec()),
        (
            "GET",
            p("/api/v1/providers/SP-1"),
            None,
            readers
                .iter()
                .copied()
                .chain(["provider", "other-manager"])
                .collect(),
        ),
        (
            "POST",
            p("/api/v1/providers"),
            Some(json!({"id": "SP-NEW", "name": "N"})),
            vec!["admin-token", "manager", "other-manager"],
        ),
        (
            "POST",
            p("/api/v1/providers/SP-1/enrolment-codes"),
            Some(json!({})),
            vec!["admin-token", "manager", "other-manager"],
        ),
        ("GET", p("/api/v1/devices"), None, everyone.to_vec()),
        (
            "POST",
            format!("/api/v1/devices/{}/revoke", "dev-not-there"),
            Some(json!({})),
            vec!["admin-token", "manager", "other-manager"],
        ),
        ("GET", p("/api/v1/redemptions"), None, everyone.to_vec()),
        (
            "GET",
            p("/api/v1/audit"),
            None,
            vec!["admin-token", "admin", "auditor"],
        ),
        (
            "GET",
            p("/api/v1/users"),
            None,
            vec!["admin-token", "admin"],
        ),
        (
            "POST",
            p("/api/v1/users"),
            Some(json!({"name": "new-account", "role": "auditor"})),
            vec!["admin-token", "admin"],
        ),
        (
            "POST",
            format!("/api/v1/users/{target}/reset"),
            Some(json!({})),
            vec!["admin-token", "admin"],
        ),
        (
            "POST",
            format!("/api/v1/users/{target}/disable"),
            Some(json!({})),
            vec!["admin-token", "admin"],
        ),
        (
            "PATCH",
            p("/api/v1/programs/p1"),
            Some(json!({"name": "p1 renamed"})),
            managers.to_vec(),
        ),
        (
            "PATCH",
            p("/api/v1/programs/p2"),
            Some(json!({"name": "p2 renamed"})),
            vec!["admin-token", "manager", "other-manager"],
        ),
        ("GET", p("/api/v1/me"), None, everyone.to_vec()),
        ("GET", p("/api/v1/me/tokens"), None, everyone.to_vec()),
        // Own-account routes: allowed to every account (the admin token, which has none, is
        // answered 400, not refused).
        (
            "POST",
            p("/api/v1/me/tokens"),
            Some(json!({"name": "matrix"})),
            everyone.to_vec(),
        ),
        (
            "POST",
            p("/api/v1/me/tokens/evt-not-there/revoke"),
            Some(json!({})),
            everyone.to_vec(),
        ),
        ("POST", p("/api/v1/session/end"), None, everyone.to_vec()),
        ("GET", p("/api/v1/sync/status"), None, vec!["device"]),
        (
            "POST",
            p("/api/v1/sync/redemptions"),
            Some(json!({"entries": []})),
            vec!["device"],
        ),
        (
            "PATCH",
            p("/api/v1/providers/SP-1"),
            Some(json!({"name": "SP-1"})),
            vec!["admin-token", "manager", "other-manager"],
        ),
        // Reimbursement. Claims and payables that do not exist: what is checked here is who
        // gets past the door (a 404 or 400 behind it counts as let in).
        ("GET", p("/api/v1/claims"), None, everyone.to_vec()),
        (
            "POST",
            p("/api/v1/claims"),
            Some(json!({"key": "m", "program": "p1"})),
            providers.to_vec(),
        ),
        ("GET", p("/api/v1/claims/CLM-none"), None, everyone.to_vec()),
        (
            "GET",
            p("/api/v1/claims/CLM-none/documents/ab"),
            None,
            everyone.to_vec(),
        ),
        (
            "PUT",
            p("/api/v1/claims/CLM-none/documents/ab"),
            Some(json!({})),
            providers.to_vec(),
        ),
        (
            "POST",
            p("/api/v1/claims/CLM-none/submit"),
            None,
            providers.to_vec(),
        ),
        (
            "POST",
            p("/api/v1/claims/CLM-none/withdraw"),
            None,
            providers.to_vec(),
        ),
        (
            "POST",
            p("/api/v1/claims/CLM-none/decision"),
            Some(json!({"stage": 1, "decision": "approve"})),
            vec!["accountant", "cash"],
        ),
        ("GET", p("/api/v1/payables"), None, everyone.to_vec()),
        (
            "GET",
            p("/api/v1/payables/PAY-none"),
            None,
            everyone.to_vec(),
        ),
        (
            "GET",
            p("/api/v1/payables/PAY-none/pdf"),
            None,
            everyone.to_vec(),
        ),
        (
            "POST",
            p("/api/v1/payables/PAY-none/requeue"),
            None,
            payments.to_vec(),
        ),
        (
            "POST",
            p("/api/v1/payables/PAY-none/reissue"),
            Some(json!({"reason": "x"})),
            payments.to_vec(),
        ),
        (
            "GET",
            p("/api/v1/payments/batches"),
            None,
            everyone.to_vec(),
        ),
        (
            "POST",
            p("/api/v1/payments/batches"),
            Some(json!({"format": "pain.001", "program": "p1"})),
            payments.to_vec(),
        ),
        (
            "GET",
            p("/api/v1/payments/batches/BAT-none/file"),
            None,
            payments.to_vec(),
        ),
        (
            "POST",
            p("/api/v1/payments/results"),
            Some(json!({})),
            payments.to_vec(),
        ),
        ("GET", p("/api/v1/sync/claims"), None, vec!["device"]),
        (
            "POST",
            p("/api/v1/sync/claims"),
            Some(json!({"key": "d", "program": "p1"})),
            vec!["device"],
        ),
        (
            "GET",
            p("/api/v1/sync/claims/CLM-none"),
            None,
            vec!["device"],
        ),
        (
            "PUT",
            p("/api/v1/sync/claims/CLM-none/documents/ab"),
            Some(json!({})),
            vec!["device"],
        ),
        (
            "POST",
            p("/api/v1/sync/claims/CLM-none/submit"),
            None,
            vec!["device"],
        ),
        (
            "POST",
            p("/api/v1/sync/claims/CLM-none/withdraw"),
            None,
            vec!["device"],
        ),
    ];
    // Every operation of the API is in the table above, or public (answered without
    // credentials), or `/api/v1/me/password`, which needs the current password and is tested
    // in one_time_passwords_sessions_and_csrf.
    let elsewhere = [
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/openapi.json"),
        ("GET", "/api/v1/trust"),
        ("GET", "/api/v1/revocations"),
        ("GET", "/api/v1/payables/trust"),
        ("POST", "/api/v1/session"),
        ("POST", "/api/v1/devices/enrol"),
        ("POST", "/api/v1/me/password"),
    ];
    let doc: Value = serde_json::from_str(include_str!("../openapi.json")).expect("openapi.json");
    let matches = |template: &str, path: &str| {
        let path = path.split('?').next().unwrap();
        let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
        t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| a.starts_with('{') || a == b)
    };
    for (template, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let m = method.to_uppercase();
            let covered = routes
                .iter()
                .any(|(rm, rp, _, _)| *rm == m && matches(template, rp))
                || elsewhere.contains(&(m.as_str(), template.as_str()));
            assert!(covered, "{m} {template} is not in the permission matrix");
        }
    }
    for (m, path) in &elsewhere[..6] {
        let (st, _, v) = request(&s, m, path, None, None).await;
        assert_eq!(st, StatusCode::OK, "{m} {path} is public: {v}");
    }
    let mut checked = 0;
    for (method, path, body, allowed) in &routes {
        for (caller, token) in &callers {
            let (st, _, v) = if *method == "POST" && path.ends_with("/beneficiaries") {
                let (st, h, b) = common::request_raw(
                    &s,
                    method,
                    path,
                    token.as_deref(),
                    Some(("text/csv", b"beneficiary_id\nB-9\n".to_vec())),
                )
                .await;
                (st, h, serde_json::from_slice(&b).unwrap_or(Value::Null))
            } else {
                request(&s, method, path, token.as_deref(), body.clone()).await
            };
            let denied = st == StatusCode::UNAUTHORIZED || st == StatusCode::FORBIDDEN;
            let should = allowed.contains(caller);
            assert_eq!(!denied, should, "{method} {path} as {caller}: {st} {v}");
            if denied {
                // A refusal is problem+json and changes nothing (the next allowed call works).
                assert!(v["status"].is_number(), "{method} {path} as {caller}");
            }
            checked += 1;
        }
    }
    assert!(checked > 300, "{checked}");
    // Provider accounts read only their own provider's devices and redemptions.
    let (_, _, d) = request(
        &s,
        "GET",
        "/api/v1/devices?provider=SP-2",
        Some(&tokens["provider"]),
        None,
    )
    .await;
    assert!(d["devices"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["provider_id"] == "SP-1"));
    let (_, _, d) = request(
        &s,
        "GET",
        "/api/v1/providers",
        Some(&tokens["other-provider"]),
        None,
    )
    .await;
    assert_eq!(d["providers"].as_array().unwrap().len(), 1);
    // A limited manager sees only its programs in lists.
    let (_, _, l) = request(
        &s,
        "GET",
        "/api/v1/programs",
        Some(&tokens["other-manager"]),
        None,
    )
    .await;
    let ids: Vec<&str> = l["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["p2"]);
    // An accountant reads a voucher's record without the beneficiary's name (the text).
    let (_, _, r) = request(
        &s,
        "GET",
        &format!("/api/v1/vouchers/{voucher}"),
        Some(&tokens["accountant"]),
        None,
    )
    .await;
    assert!(r["text"].is_null() && r["state"].is_string());
}

#[tokio::test]
async fn the_audit_log_records_every_change_and_cannot_be_changed() {
    let s = state("audit").await;
    let (sid, csrf, _) = person(&s, "pm", "program_manager", json!({})).await;
    let send_pm = |method: &'static str, uri: &'static str, body: Option<Value>| {
        let (s, sid, csrf) = (s.clone(), sid.clone(), csrf.clone());
        async move { send(&s, method, uri, Some(&sid), Some(&csrf), ORIGIN, body).await }
    };
    send_pm("POST", "/api/v1/programs", Some(json!({"id": "food", "name": "Food", "issuer": "https://f.example", "currency": "KES", "amount": 500}))).await;
    let (st, _, _) = common::request_raw(
        &s,
        "POST",
        "/api/v1/programs/food/beneficiaries",
        Some(ADMIN),
        Some((
            "text/csv",
            "beneficiary_id,name\nB-1,Zawadi Secretname\n"
                .as_bytes()
                .to_vec(),
        )),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let (_, _, issued) = send_pm(
        "POST",
        "/api/v1/programs/food/vouchers",
        Some(json!({"imported": true})),
    )
    .await;
    let vid = issued["vouchers"][0]["id"].as_str().unwrap().to_owned();
    request(
        &s,
        "POST",
        &format!("/api/v1/vouchers/{vid}/cancel"),
        Some(ADMIN),
        None,
    )
    .await;
    send_pm(
        "POST",
        "/api/v1/providers",
        Some(json!({"id": "SP-1", "name": "Shop", "payout_account": "KE99 SECRET ACCOUNT"})),
    )
    .await;
    let (_, _, code) = request(
        &s,
        "POST",
        "/api/v1/providers/SP-1/enrolment-codes",
        Some(ADMIN),
        None,
    )
    .await;
    let (_, _, tok) = send_pm("POST", "/api/v1/me/tokens", Some(json!({"name": "t"}))).await;
    send(
        &s,
        "POST",
        "/api/v1/session",
        None,
        None,
        None,
        Some(json!({"name": "pm", "password": "wrong"})),
    )
    .await;
    let (st, _, log) = request(&s, "GET", "/api/v1/audit?limit=1000", Some(ADMIN), None).await;
    assert_eq!(st, StatusCode::OK);
    let actions: Vec<&str> = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for want in [
        "account.create",
        "sign_in",
        "password.change",
        "program.create",
        "beneficiaries.import",
        "vouchers.issue",
        "voucher.cancel",
        "provider.create",
        "provider.enrolment_code",
        "token.create",
        "sign_in_failed",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    let text = log.to_string();
    // Who did it, with which role; never names of beneficiaries, codes, tokens, passwords or
    // account numbers.
    let program = log["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "program.create")
        .unwrap();
    assert_eq!(
        (program["role"].as_str(), program["detail"]["by"].as_str()),
        (Some("program_manager"), Some("pm"))
    );
    for secret in [
        "Zawadi",
        "Secretname",
        code["code"].as_str().unwrap(),
        tok["token"].as_str().unwrap(),
        "pm-long-password-1",
        "SECRET ACCOUNT",
    ] {
        assert!(!text.contains(secret), "{secret} is in the audit log");
    }
    // Filters and CSV.
    let (_, _, f) = request(
        &s,
        "GET",
        "/api/v1/audit?action=voucher.cancel",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(f["total"], 1);
    assert_eq!(f["records"][0]["object_id"], vid.as_str());
    // The database refuses to change or remove a record (trigger), on SQLite and PostgreSQL.
    for sql in [
        "UPDATE audit SET action = 'nothing' WHERE seq = 1",
        "DELETE FROM audit WHERE seq = 1",
    ] {
        let e = sqlx::query(sql).execute(&s.db).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    if s.postgres {
        let e = sqlx::query("TRUNCATE audit")
            .execute(&s.db)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("append-only"), "{e}");
    }
    // The chain is intact; a record changed behind the database's back is found.
    let mut c = s.db.acquire().await.unwrap();
    let ok = evoucher_server::audit::verify(&mut c)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ok.records,
        log["total"].as_i64().unwrap(),
        "reading the log is not a change"
    );
    drop(c);
    let drop_triggers: &[&str] = if s.postgres {
        &["ALTER TABLE audit DISABLE TRIGGER USER"]
    } else {
        &[
            "DROP TRIGGER audit_no_update",
            "DROP TRIGGER audit_no_delete",
        ]
    };
    for sql in drop_triggers {
        sqlx::query(sqlx::AssertSqlSafe(*sql))
            .execute(&s.db)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE audit SET detail = '{}' WHERE seq = 3")
        .execute(&s.db)
        .await
        .unwrap();
    let mut c = s.db.acquire().await.unwrap();
    let broken = evoucher_server::audit::verify(&mut c)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(broken.seq, 3);
    drop(c);
    sqlx::query("DELETE FROM audit WHERE seq = 5")
        .execute(&s.db)
        .await
        .unwrap();
    sqlx::query("UPDATE audit SET detail = (SELECT detail FROM audit WHERE seq = 4) WHERE seq = 3")
        .execute(&s.db)
        .await
        .ok();
    let mut c = s.db.acquire().await.unwrap();
    assert!(evoucher_server::audit::verify(&mut c)
        .await
        .unwrap()
        .is_err());
}

/// A back office request with a session cookie; a form (with the session's CSRF token and our
/// Origin) when `form` is given. (status, Location header, body text)
async fn page(
    s: &AppState,
    method: &str,
    uri: &str,
    session: Option<(&str, &str)>,
    form: Option<&str>,
) -> (StatusCode, String, String) {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "backoffice.example");
    if let Some((sid, _)) = session {
        b = b.header(header::COOKIE, format!("evoucher_session={sid}"));
    }
    let body = match (method, form) {
        ("POST", Some(f))
            if uri.ends_with("/beneficiaries")
                || uri.ends_with("/claims/new")
                || uri.ends_with("/documents")
                || uri.ends_with("/payables/results") =>
        {
            // The CSV upload is a multipart form.
            let csrf = session.map(|x| x.1).unwrap_or("");
            b = b
                .header(header::CONTENT_TYPE, "multipart/form-data; boundary=XyZ")
                .header(header::ORIGIN, "http://backoffice.example");
            Body::from(format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.csv\"\r\nContent-Type: text/csv\r\n\r\n{f}\r\n--XyZ--\r\n"
            ))
        }
        ("POST", f) => {
            let csrf = session.map(|x| x.1).unwrap_or("");
            b = b
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ORIGIN, "http://backoffice.example");
            let f = f.unwrap_or("");
            Body::from(format!(
                "csrf={csrf}{}{f}",
                if f.is_empty() { "" } else { "&" }
            ))
        }
        _ => Body::empty(),
    };
    let resp = app(s.clone()).oneshot(b.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        location,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// The back office pages as the API's matrix: every page and form × every kind of person (none,
/// an expired session, a disabled account, each role, another program's manager, another
/// provider) → shown or done, or refused (403, or sent to sign in). The table names every route
/// the back office registers (read from its source), so a new page cannot be left out.
#[tokio::test]
async fn the_back_office_permission_matrix() {
    let s = state("web-matrix").await;
    let voucher = world(&s).await;
    let mut sessions: Vec<(&str, Option<(String, String)>)> = vec![("none", None)];
    for (name, role, extra) in [
        ("admin", "admin", json!({})),
        ("manager", "program_manager", json!({})),
        ("accountant", "accountant", json!({})),
        ("cash", "cash_manager", json!({})),
        ("auditor", "auditor", json!({})),
        ("provider", "provider", json!({"provider": "SP-1"})),
        (
            "other-manager",
            "program_manager",
            json!({"programs": ["p2"]}),
        ),
        ("other-provider", "provider", json!({"provider": "SP-2"})),
        ("disabled", "program_manager", json!({})),
        ("expired", "program_manager", json!({})),
    ] {
        let (sid, csrf, _) = person(&s, name, role, extra).await;
        sessions.push((name, Some((sid, csrf))));
    }
    let disabled: String = sqlx::query_scalar("SELECT id FROM users WHERE name = 'disabled'")
        .fetch_one(&s.db)
        .await
        .unwrap();
    request(
        &s,
        "POST",
        &format!("/api/v1/users/{disabled}/disable"),
        Some(ADMIN),
        None,
    )
    .await;
    // The expired session: last used 31 minutes ago.
    sqlx::query("UPDATE sessions SET last_seen_at = last_seen_at - 1860 WHERE user_id = (SELECT id FROM users WHERE name = 'expired')")
        .execute(&s.db)
        .await
        .unwrap();
    let (target, _) = add(&s, "target", "auditor", json!({})).await;

    let staff = [
        "admin",
        "manager",
        "accountant",
        "cash",
        "auditor",
        "other-manager",
    ];
    let everyone = [
        "admin",
        "manager",
        "accountant",
        "cash",
        "auditor",
        "provider",
        "other-manager",
        "other-provider",
    ];
    let not_other = ["admin", "manager", "accountant", "cash", "auditor"];
    let p = |x: &str| x.to_owned();
    #[allow(clippy::type_complexity)]
    let routes: Vec<(&str, String, Option<String>, Vec<&str>)> = vec![
        ("GET", p("/dashboard"), None, staff.to_vec()),
        ("GET", p("/programs"), None, staff.to_vec()),
        ("GET", p("/programs/p1"), None, not_other.to_vec()),
        ("GET", p("/programs/p2"), None, staff.to_vec()),
        ("GET", p("/programs/p1/beneficiaries"), None, vec!["manager", "auditor"]),
        ("GET", p("/programs/p1/issue"), None, vec!["manager"]),
        ("GET", p("/vouchers"), None, staff.to_vec()),
        ("GET", format!("/vouchers/{voucher}"), None, not_other.to_vec()),
        ("GET", p("/providers"), None, everyone.to_vec()),
        ("GET", p("/providers/SP-1"), None, staff.iter().copied().chain(["provider"]).collect()),
        ("GET", p("/redemptions"), None, everyone.to_vec()),
        ("GET", p("/audit"), None, vec!["admin", "auditor"]),
        ("GET", p("/audit/export.csv"), None, vec!["admin", "auditor"]),
        ("GET", p("/audit/export.json"), None, vec!["admin", "auditor"]),
        ("GET", p("/users"), None, vec!["admin"]),
        ("GET", p("/tokens"), None, everyone.to_vec()),
        ("GET", p("/password"), None, everyone.to_vec()),
        (
            "POST",
            p("/programs"),
            Some(p("id=new&name=N&issuer=https%3A%2F%2Fn.example&currency=KES&amount=1&validity_days=9")),
            vec!["manager"],
        ),
        (
            "POST",
            p("/programs/p1/edit"),
            Some(p("name=p1&issuer=https%3A%2F%2Fp.example&currency=KES&amount=100&validity_days=90")),
            vec!["manager"],
        ),
        ("POST", p("/programs/p1/rotate"), None, vec!["manager"]),
        ("POST", p("/programs/p1/beneficiaries"), Some(p("beneficiary_id\nB-9")), vec!["manager"]),
        ("POST", p("/programs/p1/issue"), Some(p("ids=B-20")), vec!["manager"]),
        ("POST", format!("/vouchers/{voucher}/cancel"), None, vec!["manager"]),
        (
            "POST",
            p("/providers"),
            Some(p("id=SP-NEW&name=New")),
            vec!["manager", "other-manager"],
        ),
        ("POST", p("/providers/SP-1/code"), None, vec!["manager", "other-manager"]),
        (
            "POST",
            p("/providers/SP-1/payout"),
            Some(p("payout_kind=bank&holder=H&number=123456&bank=B")),
            vec!["manager", "other-manager"],
        ),
        ("POST", p("/devices/dev-not-there/revoke"), None, vec!["manager", "other-manager"]),
        ("POST", p("/users"), Some(p("name=new-account&role=auditor")), vec!["admin"]),
        ("POST", format!("/users/{target}/reset"), None, vec!["admin"]),
        ("POST", format!("/users/{target}/disable"), None, vec!["admin"]),
        ("POST", p("/tokens"), Some(p("name=matrix")), everyone.to_vec()),
        ("POST", p("/tokens/not-there/revoke"), None, everyone.to_vec()),
        // Reimbursement (a claim and a payable that do not exist: who gets past the door).
        ("GET", p("/claims"), None, everyone.to_vec()),
        ("GET", p("/claims/new"), None, vec!["provider", "other-provider"]),
        (
            "POST",
            p("/claims/new"),
            Some(p("program=p1")),
            vec!["provider", "other-provider"],
        ),
        ("GET", p("/claims/CLM-none"), None, everyone.to_vec()),
        (
            "POST",
            p("/claims/CLM-none/decision"),
            Some(p("stage=1&decision=approve")),
            vec!["accountant", "cash"],
        ),
        (
            "POST",
            p("/claims/CLM-none/documents"),
            Some(p("x")),
            vec!["provider", "other-provider"],
        ),
        (
            "POST",
            p("/claims/CLM-none/submit"),
            None,
            vec!["provider", "other-provider"],
        ),
        (
            "POST",
            p("/claims/CLM-none/withdraw"),
            None,
            vec!["provider", "other-provider"],
        ),
        ("GET", p("/payables"), None, staff.to_vec()),
        (
            "POST",
            p("/payables/batch"),
            Some(p("program=p1&format=pain.001")),
            vec!["cash"],
        ),
        ("POST", p("/payables/results"), Some(p("x")), vec!["cash"]),
        ("POST", p("/payables/PAY-none/requeue"), None, vec!["cash"]),
        (
            "POST",
            p("/payables/PAY-none/reissue"),
            Some(p("reason=lost")),
            vec!["cash"],
        ),
    ];
    // Routes needing no session or tested on their own: the sign-in page and form (throttling
    // and login CSRF in the tests above), sign-out (ends the session: the browser test),
    // changing one's password (needs the current one: one_time_passwords_sessions_and_csrf),
    // assets, the language switch and the home page (a redirect for anyone).
    let elsewhere = [
        ("GET", "/"),
        ("GET", "/static/app.css"),
        ("GET", "/static/issue.js"),
        ("GET", "/lang/{code}"),
        ("GET", "/sign-in"),
        ("POST", "/sign-in"),
        // Signing in through an identity provider: server/tests/browser/oidc.test.mjs.
        ("GET", "/sign-in/oidc"),
        ("GET", "/sign-in/oidc/callback"),
        ("POST", "/sign-out"),
        ("POST", "/password"),
    ];
    // Every route of the back office's router, read from its source.
    let src = concat!(
        include_str!("../src/web/pages.rs"),
        include_str!("../src/web/claims.rs")
    );
    let mut registered = Vec::new();
    for chunk in src.split(".route(").skip(1) {
        let Some(path) = chunk
            .trim_start()
            .strip_prefix('"')
            .and_then(|c| c.split('"').next())
        else {
            continue;
        };
        let call = chunk
            .split("\n        .route")
            .next()
            .unwrap()
            .split("\n}")
            .next()
            .unwrap();
        for (m, needle) in [("GET", "get("), ("POST", "post(")] {
            if call.contains(needle) {
                registered.push((m, path.to_owned()));
            }
        }
    }
    assert!(registered.len() > 30, "{registered:?}");
    let matches = |template: &str, path: &str| {
        let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
        t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| a.starts_with('{') || a == b)
    };
    for (m, template) in &registered {
        let covered = routes
            .iter()
            .any(|(rm, rp, _, _)| rm == m && matches(template, rp))
            || elsewhere.contains(&(*m, template.as_str()));
        assert!(
            covered,
            "{m} {template} is not in the back office's permission matrix"
        );
    }

    let mut checked = 0;
    for (method, path, form, allowed) in &routes {
        for (who, session) in &sessions {
            let sess = session.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
            let (st, location, body) = page(&s, method, path, sess, form.as_deref()).await;
            let to_sign_in = st.is_redirection() && location.starts_with("/sign-in");
            let refused = st == StatusCode::FORBIDDEN || st == StatusCode::UNAUTHORIZED;
            let should = allowed.contains(who);
            if should {
                assert!(
                    !refused && !to_sign_in,
                    "{method} {path} as {who}: {st} {location} {body:.300}"
                );
                assert!(!st.is_server_error(), "{method} {path} as {who}: {st}");
            } else {
                assert!(
                    refused || to_sign_in,
                    "{method} {path} as {who} should be refused: {st} {location} {body:.300}"
                );
                // No session, an expired one or a disabled account: sent to sign in.
                if ["none", "disabled", "expired"].contains(who) {
                    assert!(to_sign_in, "{method} {path} as {who}: {st} {location}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 300, "{checked}");
    // The refused changes changed nothing: one program created, by the manager.
    let made: Vec<String> =
        sqlx::query_scalar("SELECT u.name FROM audit a JOIN users u ON u.id = a.actor WHERE a.action = 'program.create' AND a.object_id = 'new'")
            .fetch_all(&s.db)
            .await
            .unwrap();
    assert_eq!(made, ["manager"]);
}
