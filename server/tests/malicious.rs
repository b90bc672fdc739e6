//! A malicious enrolled phone: correctly chained and signed entries, built by hand, whose
//! content is wrong. A device's signature proves which phone said something, not that it is
//! true: the server judges every entry against what it knows itself, and only `accepted`
//! redemptions count against vouchers (and will ever be paid).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{request, Forger, Says};
use evoucher_core::ledger::EntryKind;
use evoucher_server::{AppState, Config};
use serde_json::{json, Value};

const ADMIN: &str = "malicious-admin-token-0123456789";

struct World {
    s: AppState,
    /// Single-use: 1,000 KES and 5 kg of rice.
    single: Vec<String>,
    /// Partial: 1,000 KES and 5 kg of rice.
    partial: Vec<String>,
    /// Single-use, pharmacy only.
    pharmacy: Vec<String>,
}

async fn admin(s: &AppState, method: &str, uri: &str, body: Option<Value>) -> Value {
    let (st, _, v) = request(s, method, uri, Some(ADMIN), body).await;
    assert!(st.is_success(), "{method} {uri}: {st} {v}");
    v
}

async fn issue(s: &AppState, program: &str, n: usize) -> Vec<String> {
    let list: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("{program}-{i}")}))
        .collect();
    // Valid from two days ago, so that backdated entries are judged on their date alone.
    let from = evoucher_server::now() - 2 * 86_400;
    let v = admin(
        s,
        "POST",
        &format!("/api/v1/programs/{program}/vouchers"),
        Some(json!({ "beneficiaries": list, "valid_from": from })),
    )
    .await;
    v["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["text"].as_str().unwrap().to_owned())
        .collect()
}

async fn world(name: &str) -> World {
    let dir =
        std::env::temp_dir().join(format!("evoucher-malicious-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let s = AppState::new(&Config {
        database: common::database(&dir, name).await,
        admin_token: ADMIN.into(),
        master_key: [8; 32],
    })
    .await
    .unwrap();
    let rice = json!([{"code": "RICE", "quantity": 5, "unit": "kg"}]);
    for (id, partial, cats) in [
        ("single", false, json!([])),
        ("partial", true, json!([])),
        ("pharmacy", false, json!(["pharmacy"])),
    ] {
        admin(&s, "POST", "/api/v1/programs", Some(json!({"id": id, "name": id, "issuer": "https://p.example", "currency": "KES", "amount": 1000, "items": rice, "partial": partial, "categories": cats}))).await;
    }
    for (p, cat) in [("SP-1", "grocery"), ("SP-2", "grocery")] {
        admin(
            &s,
            "POST",
            "/api/v1/providers",
            Some(json!({"id": p, "name": p, "category": cat})),
        )
        .await;
    }
    World {
        single: issue(&s, "single", 10).await,
        partial: issue(&s, "partial", 10).await,
        pharmacy: issue(&s, "pharmacy", 2).await,
        s,
    }
}

fn whole(text: &str) -> Says {
    Says {
        voucher_text: text.into(),
        amount: Some(1000),
        currency: Some("KES".into()),
        items: vec![("RICE".into(), 5)],
        ..Says::default()
    }
}

fn cash(text: &str, amount: u64) -> Says {
    Says {
        voucher_text: text.into(),
        amount: Some(amount),
        currency: Some("KES".into()),
        ..Says::default()
    }
}

fn void(text: &str, target: &str) -> Says {
    Says {
        kind: Some(EntryKind::Void),
        voucher_text: text.into(),
        voids: Some(target.into()),
        ..Says::default()
    }
}

/// The stored amount of a redemption (NULL when it could not be stored without wrapping).
async fn stored_amount(s: &AppState, id: &str) -> Option<i64> {
    use sqlx::Row;
    sqlx::query("SELECT amount FROM redemptions WHERE id = $1")
        .bind(id)
        .fetch_one(&s.db)
        .await
        .unwrap()
        .try_get("amount")
        .unwrap()
}

#[tokio::test]
async fn a_single_use_voucher_is_taken_whole_or_not_at_all() {
    let w = world("single").await;
    let mut m = Forger::enrol(&w.s, ADMIN, "SP-1").await;
    let t = &w.single;
    let cases = [
        (cash(&t[0], 999), "not_whole", "another amount"),
        (
            Says {
                amount: Some(5000),
                ..whole(&t[0])
            },
            "",
            "another amount",
        ),
        (
            Says {
                currency: Some("EUR".into()),
                ..whole(&t[0])
            },
            "",
            "EUR",
        ),
        (
            Says {
                items: vec![("OIL".into(), 1)],
                ..whole(&t[0])
            },
            "",
            "OIL",
        ),
        (
            Says {
                items: vec![("RICE".into(), 50)],
                ..whole(&t[0])
            },
            "",
            "quantities",
        ),
        (
            Says {
                items: vec![],
                ..whole(&t[0])
            },
            "",
            "items",
        ),
    ];
    for (says, _, words) in cases {
        let (_, status, reason) = m.says(&w.s, says).await;
        assert_eq!(status, "invalid", "{reason}");
        assert!(reason.contains(words), "{reason} should say {words}");
    }
    // None of them counted: the voucher is still whole, and then taken once.
    assert_eq!(m.says(&w.s, whole(&t[0])).await.1, "accepted");
    let (_, status, reason) = m.says(&w.s, whole(&t[0])).await;
    assert_eq!(
        (status.as_str(), reason.contains("already redeemed")),
        ("conflict", true)
    );
}

#[tokio::test]
async fn partial_vouchers_never_give_more_than_remains_and_never_wrap() {
    let w = world("partial").await;
    let mut m = Forger::enrol(&w.s, ADMIN, "SP-1").await;
    let t = &w.partial;
    assert_eq!(m.says(&w.s, cash(&t[0], 600)).await.1, "accepted");
    let (_, status, reason) = m.says(&w.s, cash(&t[0], 401)).await;
    assert_eq!(status, "conflict", "{reason}");
    assert!(reason.contains("400 left"), "{reason}");
    let (_, status, _) = m
        .says(
            &w.s,
            Says {
                items: vec![("RICE".into(), 6)],
                ..Says {
                    voucher_text: t[0].clone(),
                    ..Says::default()
                }
            },
        )
        .await;
    assert_eq!(status, "conflict");
    // Beyond what a signed 64-bit integer holds: invalid, and stored without the amount
    // (never wrapped into a negative number).
    for a in [i64::MAX as u64 + 1, u64::MAX] {
        let (id, status, reason) = m.says(&w.s, cash(&t[1], a)).await;
        assert_eq!(status, "invalid", "{reason}");
        assert!(reason.contains("2^63"), "{reason}");
        assert_eq!(stored_amount(&w.s, &id).await, None);
    }
    // A sum that would overflow: 1,000 accepted, then u64::MAX - 998 (their sum wraps to 1).
    assert_eq!(m.says(&w.s, cash(&t[2], 1000)).await.1, "accepted");
    let (_, status, _) = m.says(&w.s, cash(&t[2], u64::MAX - 998)).await;
    assert_eq!(status, "invalid");
    // Zero, another currency, an unknown item, an item listed twice, nothing at all.
    for (says, words) in [
        (cash(&t[3], 0), "positive"),
        (
            Says {
                currency: Some("EUR".into()),
                ..cash(&t[3], 10)
            },
            "EUR",
        ),
        (
            Says {
                voucher_text: t[3].clone(),
                items: vec![("OIL".into(), 1)],
                ..Says::default()
            },
            "OIL",
        ),
        (
            Says {
                voucher_text: t[3].clone(),
                items: vec![("RICE".into(), 1), ("RICE".into(), 1)],
                ..Says::default()
            },
            "twice",
        ),
        (
            Says {
                voucher_text: t[3].clone(),
                ..Says::default()
            },
            "nothing",
        ),
    ] {
        let (_, status, reason) = m.says(&w.s, says).await;
        assert_eq!(status, "invalid", "{reason}");
        assert!(reason.contains(words), "{reason} should say {words}");
    }
    // What remains of t[0] is still exactly 400 and 5 kg.
    assert_eq!(
        m.says(
            &w.s,
            Says {
                items: vec![("RICE".into(), 5)],
                ..cash(&t[0], 400)
            }
        )
        .await
        .1,
        "accepted"
    );
}

#[tokio::test]
async fn a_void_undoes_only_the_same_devices_accepted_redemption_once() {
    let w = world("voids").await;
    let mut honest = Forger::enrol(&w.s, ADMIN, "SP-1").await;
    let mut m = Forger::enrol(&w.s, ADMIN, "SP-1").await;
    let t = &w.single;
    let (theirs, status, _) = honest.says(&w.s, whole(&t[0])).await;
    assert_eq!(status, "accepted");
    // Voiding another device's redemption, to take the voucher over: not accepted, and the
    // voucher stays the honest phone's.
    let (_, status, reason) = m.says(&w.s, void(&t[0], &theirs)).await;
    assert_eq!(status, "invalid");
    assert!(reason.contains("another device"), "{reason}");
    let (_, status, _) = m.says(&w.s, whole(&t[0])).await;
    assert_eq!(status, "conflict");
    // An unknown id; a void naming another voucher; then the same void twice.
    let (_, status, reason) = m
        .says(&w.s, void(&t[1], "0190a0a0-0000-7000-8000-000000000000"))
        .await;
    assert_eq!(
        (status.as_str(), reason.contains("no such")),
        ("invalid", true),
        "{reason}"
    );
    let (own, status, _) = m.says(&w.s, whole(&t[1])).await;
    assert_eq!(status, "accepted");
    let (_, status, reason) = m.says(&w.s, void(&t[2], &own)).await;
    assert_eq!(
        (status.as_str(), reason.contains("another voucher")),
        ("invalid", true),
        "{reason}"
    );
    assert_eq!(m.says(&w.s, void(&t[1], &own)).await.1, "accepted");
    let (_, status, reason) = m.says(&w.s, void(&t[1], &own)).await;
    assert_eq!(
        (status.as_str(), reason.contains("already voided")),
        ("invalid", true),
        "{reason}"
    );
    // Voiding a redemption that was not accepted (the conflict above) gives nothing back.
    let (conflicted, status, _) = m.says(&w.s, whole(&t[0])).await;
    assert_eq!(status, "conflict");
    let (_, status, reason) = m.says(&w.s, void(&t[0], &conflicted)).await;
    assert_eq!(
        (status.as_str(), reason.contains("not accepted")),
        ("invalid", true),
        "{reason}"
    );
    // Voiding a void.
    let (v, status, _) = honest.says(&w.s, void(&t[0], &theirs)).await;
    assert_eq!(status, "accepted");
    let (_, status, reason) = honest.says(&w.s, void(&t[0], &v)).await;
    assert_eq!(
        (status.as_str(), reason.contains("only a redemption")),
        ("invalid", true),
        "{reason}"
    );
    // The honest void freed the voucher: the next redemption (any device) is accepted.
    assert_eq!(m.says(&w.s, whole(&t[0])).await.1, "accepted");
}

#[tokio::test]
async fn provider_and_category_are_the_servers_not_the_phones() {
    let w = world("provider").await;
    let mut m = Forger::enrol(&w.s, ADMIN, "SP-1").await;
    // An entry naming another provider: invalid, and the chain goes on.
    let (_, status, reason) = m
        .says(
            &w.s,
            Says {
                provider: Some("SP-2".into()),
                ..whole(&w.single[0])
            },
        )
        .await;
    assert_eq!(status, "invalid");
    assert!(reason.contains("enrolled for SP-1"), "{reason}");
    assert_eq!(m.says(&w.s, whole(&w.single[1])).await.1, "accepted");
    // A pharmacy-only voucher at a provider the server registered as a grocery: whatever the
    // phone was told its category is, invalid.
    let (_, status, reason) = m.says(&w.s, whole(&w.pharmacy[0])).await;
    assert_eq!(status, "invalid");
    assert!(reason.contains("category"), "{reason}");
}

#[tokio::test]
async fn unbelievable_dates_and_known_cancellations_are_suspect_not_paid() {
    let w = world("suspect").await;
    let mut m = Forger::enrol(&w.s, ADMIN, "SP-1").await;
    let mut other = Forger::enrol(&w.s, ADMIN, "SP-2").await;
    let now = evoucher_server::now();
    // Dated an hour ahead of the server's clock (vouchers are valid then).
    let (_, status, reason) = m
        .says(
            &w.s,
            Says {
                at: Some(now + 3600),
                ..whole(&w.single[0])
            },
        )
        .await;
    assert_eq!(status, "suspect");
    assert!(reason.contains("after the server received it"), "{reason}");
    // Within the skew it is fine.
    assert_eq!(
        m.says(
            &w.s,
            Says {
                at: Some(now + 300),
                ..whole(&w.single[1])
            }
        )
        .await
        .1,
        "accepted"
    );
    // A suspect redemption does not count: another phone's redemption of it is accepted.
    assert_eq!(other.says(&w.s, whole(&w.single[0])).await.1, "accepted");
    // Dated before this device's previous entry by more than the skew.
    let (_, status, reason) = m
        .says(
            &w.s,
            Says {
                at: Some(now - 3600),
                ..whole(&w.single[2])
            },
        )
        .await;
    assert_eq!(status, "suspect");
    assert!(reason.contains("previous entry"), "{reason}");
    // A device's first entry dated long before it was enrolled.
    let mut late = Forger::enrol(&w.s, ADMIN, "SP-1").await;
    let (_, status, reason) = late
        .says(
            &w.s,
            Says {
                at: Some(now - 86_400),
                ..whole(&w.single[6])
            },
        )
        .await;
    assert_eq!(status, "suspect");
    assert!(
        reason.contains("before this device was enrolled"),
        "{reason}"
    );

    // A cancellation the phone had fetched: redeeming that voucher afterwards, even dated
    // before the cancellation, is suspect.
    let vid = evoucher_core::verify::inspect(&w.single[3])
        .claims
        .unwrap()
        .id
        .to_hex();
    admin(
        &w.s,
        "POST",
        &format!("/api/v1/vouchers/{vid}/cancel"),
        None,
    )
    .await;
    let (st, _, feed) = request(
        &w.s,
        "GET",
        "/api/v1/revocations?since=0",
        Some(&m.token),
        None,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(feed["revocations"][0]["voucher_id"], vid.as_str());
    let revoked_at = feed["revocations"][0]["revoked_at"].as_i64().unwrap();
    let (_, status, reason) = m
        .says(
            &w.s,
            Says {
                at: Some(revoked_at - 1),
                ..whole(&w.single[3])
            },
        )
        .await;
    assert_eq!(status, "suspect");
    assert!(
        reason.contains("already received the cancellation"),
        "{reason}"
    );
    // A phone that had not fetched it, redeeming offline before the cancellation: accepted
    // (it could not know); after the cancellation: invalid.
    let vid4 = evoucher_core::verify::inspect(&w.single[4])
        .claims
        .unwrap()
        .id
        .to_hex();
    admin(
        &w.s,
        "POST",
        &format!("/api/v1/vouchers/{vid4}/cancel"),
        None,
    )
    .await;
    let (_, _, feed) = request(&w.s, "GET", "/api/v1/revocations?since=1", None, None).await;
    let revoked4 = feed["revocations"][0]["revoked_at"].as_i64().unwrap();
    let (_, status, reason) = other
        .says(
            &w.s,
            Says {
                at: Some(revoked4 - 1),
                ..whole(&w.single[4])
            },
        )
        .await;
    assert_eq!(status, "accepted", "{reason}");
    let (_, status, _) = other
        .says(
            &w.s,
            Says {
                at: Some(revoked4),
                ..whole(&w.single[5])
            },
        )
        .await;
    assert_eq!(status, "accepted", "a voucher not cancelled");
    // A bad token on the feed is refused rather than ignored.
    let (st, _, _) = request(
        &w.s,
        "GET",
        "/api/v1/revocations",
        Some("not-a-token"),
        None,
    )
    .await;
    assert_eq!(st, 401);
}

/// Everything a reviewer needs is stored: the status and its reason, for every entry.
#[tokio::test]
async fn every_status_is_stored_with_its_reason() {
    let w = world("stored").await;
    let mut m = Forger::enrol(&w.s, ADMIN, "SP-1").await;
    m.says(&w.s, cash(&w.single[0], 1)).await;
    m.says(&w.s, whole(&w.single[1])).await;
    let (st, _, v) = request(&w.s, "GET", "/api/v1/sync/status", Some(&m.token), None).await;
    assert_eq!(st, 200);
    let list = v["redemptions"].as_array().unwrap();
    assert_eq!(list[0]["status"], "invalid");
    assert!(list[0]["reason"]
        .as_str()
        .unwrap()
        .contains("another amount"));
    assert_eq!(list[1]["status"], "accepted");
    assert!(list[1]["reason"].is_null());
}
