//! Devices enrol and sync real ledgers (evoucher-core `Ledger` on SQLite files) to the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use evoucher_core::ledger::{Ledger, RedeemRequest, Redeemer};
use evoucher_core::{verify, TrustStore};
use evoucher_server::{AppState, Config};
use serde_json::{json, Value};

const ADMIN: &str = "test-admin-token-0123456789";

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("evoucher-sync-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn call(
    s: &AppState,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (st, _, j) = common::request(s, method, uri, token, body).await;
    (st, j)
}

struct World {
    s: AppState,
    dir: std::path::PathBuf,
    trust: TrustStore,
    vouchers: Vec<String>,
}

/// A program with a single-use and a partial voucher program, provider SP-1 and SP-2.
async fn world(name: &str) -> World {
    let dir = tmp(name);
    let cfg = Config {
        database: common::database(&dir, name).await,
        admin_token: ADMIN.into(),
        master_key: [5; 32],
    };
    let s = AppState::new(&cfg).await.unwrap();
    call(&s, "POST", "/api/v1/programs", Some(ADMIN), Some(json!({"id": "food", "name": "Food", "issuer": "https://food.example", "currency": "KES", "amount": 1000}))).await;
    call(&s, "POST", "/api/v1/programs", Some(ADMIN), Some(json!({"id": "cash", "name": "Cash", "issuer": "https://food.example", "currency": "KES", "amount": 1000, "partial": true}))).await;
    let (_, a) = call(
        &s,
        "POST",
        "/api/v1/programs/food/vouchers",
        Some(ADMIN),
        Some(json!({"beneficiaries": [{"id": "B-1"}, {"id": "B-2"}, {"id": "B-3"}]})),
    )
    .await;
    let (_, b) = call(
        &s,
        "POST",
        "/api/v1/programs/cash/vouchers",
        Some(ADMIN),
        Some(json!({"beneficiaries": [{"id": "B-4"}]})),
    )
    .await;
    let mut vouchers: Vec<String> = a["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["text"].as_str().unwrap().to_owned())
        .collect();
    vouchers.push(b["vouchers"][0]["text"].as_str().unwrap().to_owned());
    for p in ["SP-1", "SP-2"] {
        assert_eq!(
            call(
                &s,
                "POST",
                "/api/v1/providers",
                Some(ADMIN),
                Some(json!({"id": p, "name": p}))
            )
            .await
            .0,
            StatusCode::CREATED
        );
    }
    let (_, jwks) = call(&s, "GET", "/api/v1/trust", None, None).await;
    let trust = TrustStore::from_jwks_json(&jwks.to_string()).unwrap();
    World {
        s,
        dir,
        trust,
        vouchers,
    }
}

/// Open a phone ledger and enrol it for `provider`; returns (ledger, token).
async fn phone(w: &World, name: &str, provider: &str) -> (Ledger, String) {
    let l = Ledger::open(&w.dir.join(format!("{name}.db"))).unwrap();
    let (st, c) = call(
        &w.s,
        "POST",
        &format!("/api/v1/providers/{provider}/enrolment-codes"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, e) = call(
        &w.s,
        "POST",
        "/api/v1/devices/enrol",
        None,
        Some(json!({"code": c["code"], "public_key": l.device_public()})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{e}");
    // The code is one-time.
    let (st, _) = call(
        &w.s,
        "POST",
        "/api/v1/devices/enrol",
        None,
        Some(
            json!({"code": c["code"], "public_key": evoucher_core::IssuerKey::from_seed([77; 32]).public_jwk().x}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    (l, e["token"].as_str().unwrap().to_owned())
}

fn redeem(w: &World, l: &Ledger, provider: &str, text: &str, req: RedeemRequest) {
    let now = evoucher_server::now();
    let v = verify(text, &w.trust, now).unwrap();
    l.redeem(
        &v,
        &Redeemer {
            provider,
            category: None,
            device: "phone",
        },
        &req,
        now,
    )
    .unwrap();
}

async fn push(w: &World, l: &Ledger, token: &str) -> Value {
    let out = l.outbox(1000).unwrap();
    let (st, r) = call(
        &w.s,
        "POST",
        "/api/v1/sync/redemptions",
        Some(token),
        Some(json!({"entries": out})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    r
}

fn statuses(r: &Value) -> Vec<String> {
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn offline_redemptions_sync_once_and_conflicts_are_flagged() {
    let w = world("conflict").await;
    let (a, ta) = phone(&w, "a", "SP-1").await;
    let (b, tb) = phone(&w, "b", "SP-1").await;
    // Both phones offline: A redeems vouchers 0 and 1, B redeems voucher 1 too (and 2).
    redeem(&w, &a, "SP-1", &w.vouchers[0], RedeemRequest::Whole);
    redeem(&w, &a, "SP-1", &w.vouchers[1], RedeemRequest::Whole);
    redeem(&w, &b, "SP-1", &w.vouchers[1], RedeemRequest::Whole);
    redeem(&w, &b, "SP-1", &w.vouchers[2], RedeemRequest::Whole);
    let ra = push(&w, &a, &ta).await;
    assert_eq!(statuses(&ra), ["accepted", "accepted"]);
    let rb = push(&w, &b, &tb).await;
    assert_eq!(
        statuses(&rb),
        ["conflict", "accepted"],
        "the later arrival is flagged"
    );
    assert_eq!(rb["results"][0]["conflict_with"], ra["results"][1]["id"]);
    // Pushing again changes nothing (idempotent by entry id).
    let again = push(&w, &a, &ta).await;
    assert_eq!(statuses(&again), ["accepted", "accepted"]);
    let (_, st) = call(&w.s, "GET", "/api/v1/sync/status", Some(&tb), None).await;
    assert_eq!(st["redemptions"].as_array().unwrap().len(), 2);
    assert_eq!(st["redemptions"][0]["status"], "conflict");
}

#[tokio::test]
async fn partial_vouchers_over_redeemed_across_devices_are_conflicts() {
    let w = world("partial").await;
    let (a, ta) = phone(&w, "a", "SP-1").await;
    let (b, tb) = phone(&w, "b", "SP-1").await;
    redeem(&w, &a, "SP-1", &w.vouchers[3], RedeemRequest::Amount(700));
    redeem(&w, &b, "SP-1", &w.vouchers[3], RedeemRequest::Amount(200));
    redeem(&w, &b, "SP-1", &w.vouchers[3], RedeemRequest::Amount(200));
    assert_eq!(statuses(&push(&w, &a, &ta).await), ["accepted"]);
    assert_eq!(
        statuses(&push(&w, &b, &tb).await),
        ["accepted", "conflict"],
        "700 + 200 fit; + 200 more does not"
    );
}

#[tokio::test]
async fn tampered_or_foreign_entries_are_refused_and_nothing_is_stored() {
    let w = world("tamper").await;
    let (a, ta) = phone(&w, "a", "SP-1").await;
    let (_b, tb) = phone(&w, "b", "SP-2").await;
    redeem(&w, &a, "SP-1", &w.vouchers[0], RedeemRequest::Whole);
    redeem(&w, &a, "SP-1", &w.vouchers[1], RedeemRequest::Whole);
    let out = a.outbox(10).unwrap();
    // Wrong or missing token.
    assert_eq!(
        call(
            &w.s,
            "POST",
            "/api/v1/sync/redemptions",
            Some("nope"),
            Some(json!({"entries": out}))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(
            &w.s,
            "POST",
            "/api/v1/sync/redemptions",
            None,
            Some(json!({"entries": out}))
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    // Another provider's device pushing A's entries: its chain and key do not match.
    let (_, r) = call(
        &w.s,
        "POST",
        "/api/v1/sync/redemptions",
        Some(&tb),
        Some(json!({"entries": out})),
    )
    .await;
    assert_eq!(statuses(&r), ["rejected"]);
    // An amount edited after signing.
    let mut forged = out.clone();
    forged[0].amount = Some(1);
    let (_, r) = call(
        &w.s,
        "POST",
        "/api/v1/sync/redemptions",
        Some(&ta),
        Some(json!({"entries": forged})),
    )
    .await;
    assert_eq!(statuses(&r), ["rejected"]);
    // A gap: the second entry alone.
    let (_, r) = call(
        &w.s,
        "POST",
        "/api/v1/sync/redemptions",
        Some(&ta),
        Some(json!({"entries": [out[1].clone()]})),
    )
    .await;
    assert_eq!(statuses(&r), ["rejected"]);
    // Malformed body.
    let (st, _) = call(
        &w.s,
        "POST",
        "/api/v1/sync/redemptions",
        Some(&ta),
        Some(json!({"entries": "x"})),
    )
    .await;
    assert!(st.is_client_error());
    // Nothing stored so far; then the honest push goes through.
    let (_, s) = call(&w.s, "GET", "/api/v1/sync/status", Some(&ta), None).await;
    assert_eq!(s["redemptions"].as_array().unwrap().len(), 0);
    assert_eq!(statuses(&push(&w, &a, &ta).await), ["accepted", "accepted"]);
}

#[tokio::test]
async fn a_cancelled_voucher_redeemed_offline_afterwards_is_invalid() {
    let w = world("cancel").await;
    let (a, ta) = phone(&w, "a", "SP-1").await;
    let id = verify(&w.vouchers[0], &w.trust, evoucher_server::now())
        .unwrap()
        .voucher
        .id
        .to_hex();
    call(
        &w.s,
        "POST",
        &format!("/api/v1/vouchers/{id}/cancel"),
        Some(ADMIN),
        None,
    )
    .await;
    redeem(&w, &a, "SP-1", &w.vouchers[0], RedeemRequest::Whole);
    let r = push(&w, &a, &ta).await;
    assert_eq!(statuses(&r), ["invalid"]);
}

/// Eight phones redeem the same single-use vouchers offline and push at the same moment (on
/// PostgreSQL through several connections): each voucher is accepted exactly once, the rest are
/// conflicts naming that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_never_accept_a_voucher_twice() {
    let w = world("concurrent").await;
    let mut phones = Vec::new();
    for i in 0..8 {
        let (l, t) = phone(&w, &format!("p{i}"), "SP-1").await;
        for v in &w.vouchers[..3] {
            redeem(&w, &l, "SP-1", v, RedeemRequest::Whole);
        }
        phones.push((l.outbox(1000).unwrap(), t));
    }
    let pushes = phones.iter().map(|(out, t)| {
        let (s, t, body) = (w.s.clone(), t.clone(), json!({ "entries": out }));
        async move {
            common::request(&s, "POST", "/api/v1/sync/redemptions", Some(&t), Some(body)).await
        }
    });
    let answers = futures_join_all(pushes).await;
    let mut accepted = std::collections::HashMap::<String, Vec<String>>::new();
    let mut conflicts = Vec::new();
    for (st, _, r) in &answers {
        assert_eq!(*st, StatusCode::OK, "{r}");
        for (i, x) in r["results"].as_array().unwrap().iter().enumerate() {
            match x["status"].as_str().unwrap() {
                "accepted" => accepted
                    .entry(w.vouchers[i].clone())
                    .or_default()
                    .push(x["id"].as_str().unwrap().to_owned()),
                "conflict" => conflicts.push((i, x["conflict_with"].as_str().unwrap().to_owned())),
                other => panic!("unexpected {other}: {x}"),
            }
        }
    }
    assert_eq!(accepted.len(), 3);
    assert!(accepted.values().all(|ids| ids.len() == 1), "{accepted:?}");
    assert_eq!(conflicts.len(), 3 * 7);
    for (i, with) in conflicts {
        assert_eq!(accepted[&w.vouchers[i]][0], with);
    }
}

/// Run futures concurrently on the runtime (each on its own task) and collect their outputs.
async fn futures_join_all<F>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// Issue one voucher of a new program; its text.
async fn program_voucher(w: &World, program: Value) -> String {
    let id = program["id"].as_str().unwrap().to_owned();
    let (st, j) = call(&w.s, "POST", "/api/v1/programs", Some(ADMIN), Some(program)).await;
    assert_eq!(st, StatusCode::CREATED, "{j}");
    let (st, j) = call(
        &w.s,
        "POST",
        &format!("/api/v1/programs/{id}/vouchers"),
        Some(ADMIN),
        Some(json!({"beneficiaries": [{"id": "B-9"}]})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{j}");
    j["vouchers"][0]["text"].as_str().unwrap().to_owned()
}

/// In-kind programs: item quantities over-redeemed across phones are conflicts; a program
/// with one allowed provider names it in its vouchers (phones of others refuse offline); with
/// several, a redemption by anyone else is `invalid` at sync.
#[tokio::test]
async fn items_and_allowed_providers_are_enforced() {
    use evoucher_core::ledger::{ItemQty, RedeemError, Refusal};
    let w = world("items").await;
    let kit = program_voucher(&w, json!({"id": "kits", "name": "Kits", "issuer": "https://food.example", "partial": true, "items": [{"code": "RICE", "quantity": 10, "unit": "kg"}, {"code": "OIL", "quantity": 2, "unit": "l"}]})).await;
    let (_, jwks) = call(&w.s, "GET", "/api/v1/trust", None, None).await;
    let trust = TrustStore::from_jwks_json(&jwks.to_string()).unwrap();
    let w = World { trust, ..w };
    let v = verify(&kit, &w.trust, evoucher_server::now())
        .unwrap()
        .voucher;
    assert!(v.value.is_none());
    assert_eq!(v.items.len(), 2);
    let (a, ta) = phone(&w, "a", "SP-1").await;
    let (b, tb) = phone(&w, "b", "SP-1").await;
    let rice = |q| {
        RedeemRequest::Items(vec![ItemQty {
            code: "RICE".into(),
            quantity: q,
        }])
    };
    redeem(&w, &a, "SP-1", &kit, rice(6));
    redeem(&w, &b, "SP-1", &kit, rice(4));
    redeem(&w, &b, "SP-1", &kit, rice(1));
    assert_eq!(statuses(&push(&w, &a, &ta).await), ["accepted"]);
    assert_eq!(
        statuses(&push(&w, &b, &tb).await),
        ["accepted", "conflict"],
        "6 + 4 kg fit; 1 kg more does not"
    );

    // One allowed provider: the voucher's audience; SP-2's phone refuses it offline.
    let only = program_voucher(&w, json!({"id": "only", "name": "Only", "issuer": "https://food.example", "currency": "KES", "amount": 100, "providers": ["SP-1"]})).await;
    let (_, jwks) = call(&w.s, "GET", "/api/v1/trust", None, None).await;
    let w = World {
        trust: TrustStore::from_jwks_json(&jwks.to_string()).unwrap(),
        ..w
    };
    let v = verify(&only, &w.trust, evoucher_server::now()).unwrap();
    assert_eq!(v.voucher.aud.as_deref(), Some("SP-1"));
    let (c, tc) = phone(&w, "c", "SP-2").await;
    let who = Redeemer {
        provider: "SP-2",
        category: None,
        device: "phone",
    };
    match c.redeem(&v, &who, &RedeemRequest::Whole, evoucher_server::now()) {
        Err(RedeemError::Refused(Refusal::WrongProvider)) => {}
        other => panic!("{other:?}"),
    }
    // Several: the format cannot say so; the server marks others' redemptions invalid.
    let two = program_voucher(&w, json!({"id": "two", "name": "Two", "issuer": "https://food.example", "currency": "KES", "amount": 100, "providers": ["SP-1", "SP-3"]})).await;
    let (_, jwks) = call(&w.s, "GET", "/api/v1/trust", None, None).await;
    let w = World {
        trust: TrustStore::from_jwks_json(&jwks.to_string()).unwrap(),
        ..w
    };
    redeem(&w, &c, "SP-2", &two, RedeemRequest::Whole);
    let r = push(&w, &c, &tc).await;
    assert_eq!(statuses(&r), ["invalid"]);
    assert_eq!(
        r["results"][0]["reason"],
        "the program does not allow this provider"
    );
    // Program settings are checked.
    for bad in [
        json!({"id": "x1", "name": "X", "issuer": "https://x"}),
        json!({"id": "x2", "name": "X", "issuer": "https://x", "amount": 5}),
        json!({"id": "x3", "name": "X", "issuer": "https://x", "items": [{"code": "A", "quantity": 0}]}),
        json!({"id": "x4", "name": "X", "issuer": "https://x", "items": [{"code": "A", "quantity": 1}, {"code": "A", "quantity": 2}]}),
        json!({"id": "x5", "name": "X", "issuer": "https://x", "currency": "KES", "amount": 1, "providers": [""]}),
    ] {
        let (st, j) = call(
            &w.s,
            "POST",
            "/api/v1/programs",
            Some(ADMIN),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {j}");
    }
}

/// A full push (1,000 entries: about 850 KB of JSON for these small vouchers, over 1 MiB with
/// names and items, hence the sync route's 4 MiB limit) is accepted whole; one more entry is
/// refused with nothing stored.
#[tokio::test]
async fn a_full_push_of_a_thousand_entries_is_accepted() {
    let w = world("full").await;
    let bens: Vec<Value> = (0..1001)
        .map(|i| json!({ "id": format!("F-{i}") }))
        .collect();
    let (st, j) = call(
        &w.s,
        "POST",
        "/api/v1/programs/food/vouchers",
        Some(ADMIN),
        Some(json!({ "beneficiaries": bens })),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    let (a, ta) = phone(&w, "a", "SP-1").await;
    for v in j["vouchers"].as_array().unwrap() {
        redeem(
            &w,
            &a,
            "SP-1",
            v["text"].as_str().unwrap(),
            RedeemRequest::Whole,
        );
    }
    let out = a.outbox(2000).unwrap();
    let too_many = json!({ "entries": out });
    let (st, _) = call(
        &w.s,
        "POST",
        "/api/v1/sync/redemptions",
        Some(&ta),
        Some(too_many),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (_, none) = call(&w.s, "GET", "/api/v1/sync/status", Some(&ta), None).await;
    assert_eq!(none["redemptions"].as_array().unwrap().len(), 0);
    let body = json!({ "entries": out[..1000] });
    let (st, r) = call(
        &w.s,
        "POST",
        "/api/v1/sync/redemptions",
        Some(&ta),
        Some(body),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert!(statuses(&r).iter().all(|s| s == "accepted"));
    assert_eq!(statuses(&r).len(), 1000);
}
