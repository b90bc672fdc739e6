//! Enrolment and issuance refuse what they must: expired and used codes (named as such), keys
//! that are not Ed25519 points of full order, too many failures from one address, one code
//! posted by many phones at once, creates racing each other, and values a voucher cannot carry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use common::request;
use evoucher_server::{AppState, Config};
use serde_json::{json, Value};

const ADMIN: &str = "hardening-admin-token-0123456789";

async fn state(name: &str) -> AppState {
    let dir = std::env::temp_dir().join(format!("evoucher-hard-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    AppState::new(&Config {
        database: common::database(&dir, name).await,
        admin_token: ADMIN.into(),
        master_key: [6; 32],
    })
    .await
    .unwrap()
}

async fn call(
    s: &AppState,
    method: &str,
    uri: &str,
    admin: bool,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (st, _, v) = request(s, method, uri, admin.then_some(ADMIN), body).await;
    (st, v)
}

async fn code(s: &AppState) -> String {
    let (st, c) = call(
        s,
        "POST",
        "/api/v1/providers/SP-1/enrolment-codes",
        true,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    assert!(c["expires_at"].as_i64().unwrap() >= evoucher_server::now());
    c["code"].as_str().unwrap().to_owned()
}

fn key(seed: u8) -> String {
    evoucher_core::IssuerKey::from_seed([seed; 32])
        .public_jwk()
        .x
        .unwrap()
}

async fn enrol(s: &AppState, code: &str, public_key: &str) -> (StatusCode, Value) {
    call(
        s,
        "POST",
        "/api/v1/devices/enrol",
        false,
        Some(json!({"code": code, "public_key": public_key})),
    )
    .await
}

#[tokio::test]
async fn enrolment_codes_expire_are_used_once_and_say_so() {
    let s = state("codes").await;
    call(
        &s,
        "POST",
        "/api/v1/providers",
        true,
        Some(json!({"id": "SP-1", "name": "Shop", "category": "grocery"})),
    )
    .await;
    let c = code(&s).await;
    let (st, e) = enrol(&s, &c, &key(1)).await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(e["category"], "grocery");
    assert_eq!(e["device_id"], evoucher_core::ledger::device_id_of(&key(1)));
    let (st, e) = enrol(&s, &c, &key(2)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        e["detail"].as_str().unwrap().contains("already used"),
        "{e}"
    );
    let (st, e) = enrol(&s, "0123456789abcdef0123", &key(2)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(e["detail"].as_str().unwrap().contains("unknown"), "{e}");
    // A code made with a validity of 0 s has expired when it is used.
    let s0 = s.clone().with_enrolment_ttl(0);
    let c = code(&s0).await;
    let (st, e) = enrol(&s0, &c, &key(3)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(e["detail"].as_str().unwrap().contains("expired"), "{e}");
    // The key already enrolled: 409, and the code stays usable for the right phone.
    let c = code(&s).await;
    assert_eq!(enrol(&s, &c, &key(1)).await.0, StatusCode::CONFLICT);
    assert_eq!(enrol(&s, &c, &key(4)).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn keys_that_are_not_full_order_ed25519_points_are_refused() {
    let s = state("keys").await;
    call(
        &s,
        "POST",
        "/api/v1/providers",
        true,
        Some(json!({"id": "SP-1", "name": "Shop"})),
    )
    .await;
    let c = code(&s).await;
    for bad in [
        // All zeros (a small-order point), the identity (1, 0, …), a point of order 8, not a
        // point at all, too short, not base64url.
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "x8skRp2qO0WAXc6dZ8lU7BOSpwFp9eXIJPrvT0aHDgU",
        "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA",
        "AQAB",
        "not base64!",
    ] {
        let (st, e) = enrol(&s, &c, bad).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {e}");
        assert!(e["detail"].as_str().unwrap().contains("Ed25519"), "{e}");
    }
    // The code was not used up by the refusals.
    assert_eq!(enrol(&s, &c, &key(5)).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn failed_enrolments_from_one_address_are_limited() {
    let s = state("limit").await.with_max_enrol_failures(3);
    call(
        &s,
        "POST",
        "/api/v1/providers",
        true,
        Some(json!({"id": "SP-1", "name": "Shop"})),
    )
    .await;
    for i in 0..3 {
        let (st, _) = enrol(&s, &format!("wrong-code-{i}"), &key(6)).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    // Now even a good code is refused from this address, with how long to wait.
    let c = code(&s).await;
    let (st, h, e) = request(
        &s,
        "POST",
        "/api/v1/devices/enrol",
        None,
        Some(json!({"code": c, "public_key": key(6)})),
    )
    .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{e}");
    let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&wait), "{wait}");
    assert_eq!(h["content-type"], "application/problem+json");
}

/// One code posted by twenty phones at once enrols exactly one device (on PostgreSQL too,
/// where ten connections run the requests in parallel).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_code_enrols_one_device_however_many_post_it_at_once() {
    let s = state("race").await.with_max_enrol_failures(1000);
    call(
        &s,
        "POST",
        "/api/v1/providers",
        true,
        Some(json!({"id": "SP-1", "name": "Shop"})),
    )
    .await;
    for round in 0..3 {
        let c = code(&s).await;
        let tasks: Vec<_> = (0..20u8)
            .map(|i| {
                let (s, c) = (s.clone(), c.clone());
                tokio::spawn(async move { enrol(&s, &c, &key(100 + round * 20 + i)).await.0 })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                StatusCode::CREATED => won += 1,
                StatusCode::UNAUTHORIZED => {}
                other => panic!("{other}"),
            }
        }
        assert_eq!(won, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_id_are_one_201_and_409s() {
    let s = state("creates").await;
    let tasks: Vec<_> = (0..90)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let id = format!("p{}", i % 10);
                let p = json!({"id": id, "name": "P", "issuer": "https://p.example", "currency": "KES", "amount": 10});
                let a = call(&s, "POST", "/api/v1/programs", true, Some(p)).await.0;
                let b = call(&s, "POST", "/api/v1/providers", true, Some(json!({"id": id, "name": "S"}))).await.0;
                (id, a, b)
            })
        })
        .collect();
    let mut got = std::collections::BTreeMap::<String, Vec<u16>>::new();
    for t in tasks {
        let (id, a, b) = t.await.unwrap();
        got.entry(id).or_default().extend([a.as_u16(), b.as_u16()]);
    }
    for (id, mut list) in got {
        list.sort();
        assert_eq!(
            list.iter().filter(|x| **x == 201).count(),
            2,
            "{id}: {list:?}"
        );
        assert!(
            list.iter().all(|x| *x == 201 || *x == 409),
            "{id}: {list:?}"
        );
    }
}

#[tokio::test]
async fn issuance_refuses_values_a_voucher_cannot_carry() {
    let s = state("values").await;
    let now = evoucher_server::now();
    for (program, why) in [
        (
            json!({"id": "zero", "name": "Z", "issuer": "https://z.example", "currency": "KES", "amount": 0}),
            "above 0",
        ),
        (
            json!({"id": "huge", "name": "H", "issuer": "https://h.example", "currency": "KES", "amount": 9_223_372_036_854_775_808u64}),
            "at most",
        ),
        (
            json!({"id": "long", "name": "L", "issuer": "https://l.example", "currency": "KES", "amount": 5, "validity_days": 4000}),
            "validity_days",
        ),
        (
            json!({"id": "none", "name": "N", "issuer": "https://n.example", "currency": "KES", "amount": 5, "validity_days": 0}),
            "validity_days",
        ),
        (
            json!({"id": "items", "name": "I", "issuer": "https://i.example", "items": [{"code": "RICE", "quantity": 9_223_372_036_854_775_808u64}]}),
            "quantity",
        ),
    ] {
        let (st, e) = call(&s, "POST", "/api/v1/programs", true, Some(program)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{e}");
        assert!(
            e["detail"].as_str().unwrap().contains(why),
            "{e} should say {why}"
        );
    }
    call(&s, "POST", "/api/v1/programs", true, Some(json!({"id": "cash", "name": "C", "issuer": "https://c.example", "currency": "KES", "amount": 500, "validity_days": 30}))).await;
    let issue = |body: Value| {
        let s = s.clone();
        async move {
            call(
                &s,
                "POST",
                "/api/v1/programs/cash/vouchers",
                true,
                Some(body),
            )
            .await
        }
    };
    for (body, why) in [
        (
            json!({"beneficiaries": [{"id": "B-1", "amount": 9_223_372_036_854_775_808u64}]}),
            "amount over",
        ),
        (
            json!({"beneficiaries": [{"id": "B-1", "amount": 0}]}),
            "above 0",
        ),
        // A window that is already over: valid from 31 days ago for 30 days.
        (
            json!({"beneficiaries": [{"id": "B-1"}], "valid_from": now - 31 * 86_400}),
            "already be over",
        ),
        (
            json!({"beneficiaries": [{"id": "B-1"}], "valid_from": -5}),
            "valid_from",
        ),
        (
            json!({"beneficiaries": [{"id": "B-1"}], "valid_from": now + 11 * 366 * 86_400}),
            "10 years",
        ),
        (
            json!({"beneficiaries": [{"id": "B-1"}, {"id": "B-1"}]}),
            "twice",
        ),
        (json!({"beneficiaries": {"id": "B-1"}}), "imported"),
        (json!({"beneficiaries": []}), "imported"),
        (json!({}), "imported"),
    ] {
        let (st, e) = issue(body.clone()).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert!(
            e["detail"].as_str().unwrap().contains(why),
            "{e} should say {why}"
        );
    }
    // Nothing was issued by the refused calls; a good one is.
    let (st, v) = issue(json!({"beneficiaries": [{"id": "B-1"}]})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["vouchers"].as_array().unwrap().len(), 1);
}
