//! What the phone app asks of the core beyond redeeming: the verdict before confirming
//! (`check`), the history screen, and the sync panel's stale and clock warnings. Real SQLite
//! files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use evoucher_core::encode::encode;
use evoucher_core::keys::IssuerKey;
use evoucher_core::ledger::{
    HistoryFilter, Judged, Ledger, RedeemError, RedeemRequest, Redeemer, Refusal,
};
use evoucher_core::sync::{self, ClockWarning};
use evoucher_core::voucher::{VoucherBuilder, VoucherId};
use evoucher_core::{verify, TrustStore, Verified};

const NOW: i64 = 1_780_000_000;
const DAY: i64 = 86_400;
const SHOP: Redeemer<'static> = Redeemer {
    provider: "SP-1",
    category: None,
    device: "phone-1",
};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("evoucher-phone-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn voucher(n: u8, ben: &str, partial: bool) -> Verified {
    let key = IssuerKey::from_seed([3; 32]);
    let mut b = VoucherBuilder::new("https://p.example", "food", ben)
        .name("Amina Yusuf")
        .value(1000, "KES")
        .id(VoucherId([n; 16]))
        .validity(NOW - DAY, NOW + 30 * DAY);
    if partial {
        b = b.partial();
    }
    let text = encode(&b.build().unwrap(), &key).unwrap().text;
    verify(&text, &TrustStore::from_keys([key.trusted()]).unwrap(), NOW).unwrap()
}

#[test]
fn check_tells_the_verdict_and_writes_nothing() {
    let d = tmp("check");
    let l = Ledger::open(&d.join("l.db")).unwrap();
    let v = voucher(1, "ben-1", true);
    let left = l
        .check(&v, &SHOP, &RedeemRequest::Amount(400), NOW)
        .unwrap();
    assert_eq!(left.amount, Some(600));
    assert_eq!(l.stats().unwrap().entries, 0, "a check writes nothing");
    l.redeem(&v, &SHOP, &RedeemRequest::Amount(400), NOW)
        .unwrap();
    let left = l
        .check(&v, &SHOP, &RedeemRequest::Amount(600), NOW)
        .unwrap();
    assert_eq!(left.amount, Some(0));
    assert!(matches!(
        l.check(&v, &SHOP, &RedeemRequest::Amount(601), NOW),
        Err(RedeemError::Refused(Refusal::InsufficientBalance { .. }))
    ));
    let single = voucher(2, "ben-2", false);
    l.redeem(&single, &SHOP, &RedeemRequest::Whole, NOW)
        .unwrap();
    assert!(matches!(
        l.check(&single, &SHOP, &RedeemRequest::Whole, NOW + 5),
        Err(RedeemError::Refused(Refusal::AlreadyRedeemed { .. }))
    ));
    assert!(matches!(
        l.check(
            &voucher(3, "ben-3", false),
            &SHOP,
            &RedeemRequest::Whole,
            NOW + 31 * DAY
        ),
        Err(RedeemError::Refused(Refusal::Expired { .. }))
    ));
    assert_eq!(l.stats().unwrap().entries, 2);
}

#[test]
fn history_filters_searches_pages_and_totals() {
    let d = tmp("history");
    let l = Ledger::open(&d.join("l.db")).unwrap();
    let mut ids = Vec::new();
    for n in 0..6u8 {
        let at = NOW + i64::from(n) * DAY / 2; // two a day, over three days
        let v = voucher(10 + n, &format!("BEN-{n}"), false);
        ids.push(
            l.redeem(&v, &SHOP, &RedeemRequest::Whole, at)
                .unwrap()
                .entry
                .id,
        );
    }
    l.void(&ids[1], &SHOP, NOW + DAY).unwrap();
    l.mark_judged(
        &[
            Judged {
                id: ids[0].clone(),
                status: "accepted".into(),
                reason: None,
            },
            Judged {
                id: ids[2].clone(),
                status: "conflict".into(),
                reason: Some("already redeemed".into()),
            },
        ],
        NOW + 2 * DAY,
    )
    .unwrap();

    let all = l.history_page(&HistoryFilter::default()).unwrap();
    assert_eq!(all.count, 6, "void entries are not rows");
    assert_eq!(all.rows[0].entry.id, ids[5], "newest first");
    let state = |i: usize| {
        all.rows
            .iter()
            .find(|r| r.entry.id == ids[i])
            .unwrap()
            .state
            .clone()
    };
    assert_eq!(
        (state(0), state(1), state(2), state(3)),
        (
            "accepted".into(),
            "voided".into(),
            "conflict".into(),
            "waiting".into()
        )
    );
    assert_eq!(
        all.totals,
        vec![("KES".to_owned(), 5000)],
        "the voided one is not counted"
    );
    assert_eq!(all.rows[0].beneficiary_id.as_deref(), Some("BEN-5"));
    assert_eq!(all.rows[0].beneficiary_name.as_deref(), Some("Amina Yusuf"));
    assert_eq!(all.rows[0].program.as_deref(), Some("food"));

    let day1 = l
        .history_page(&HistoryFilter {
            from: Some(NOW),
            until: Some(NOW + DAY),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(day1.count, 2);
    assert_eq!(day1.totals, vec![("KES".to_owned(), 1000)]);
    let waiting = l
        .history_page(&HistoryFilter {
            state: Some("waiting".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(waiting.count, 3);
    let found = l
        .history_page(&HistoryFilter {
            search: Some("ben-4".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.rows.len(), 1);
    assert_eq!(found.rows[0].entry.id, ids[4]);
    let by_voucher = l
        .history_page(&HistoryFilter {
            search: Some(hex::encode([13u8; 4])),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_voucher.rows.len(), 1);
    assert_eq!(by_voucher.rows[0].entry.id, ids[3]);
    let page = l
        .history_page(&HistoryFilter {
            limit: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.rows.len(), 2);
    let next = l
        .history_page(&HistoryFilter {
            limit: Some(2),
            before_seq: Some(page.rows[1].entry.seq),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(next.rows[0].entry.id, ids[3]);
    assert_eq!(next.count, 6, "the count is of every page");
}

#[test]
fn status_warns_of_stale_lists_and_a_wrong_clock() {
    let d = tmp("status");
    let path = d.join("l.db");
    let l = Ledger::open(&path).unwrap();
    let s = sync::status(&l, 3 * DAY, NOW).unwrap();
    assert!(
        s.trust_stale && s.revocations_stale,
        "never fetched is stale"
    );
    assert!(s.clock.is_empty() && s.last_sync_at.is_none());

    l.redeem(&voucher(1, "b", false), &SHOP, &RedeemRequest::Whole, NOW)
        .unwrap();
    let state = sync::State {
        trust_checked_at: Some(NOW - DAY),
        revocations_checked_at: Some(NOW - 4 * DAY),
        last_sync_at: Some(NOW - DAY),
        server_offset: Some(30),
        ..Default::default()
    };
    std::fs::write(
        sync::state_path(&path),
        serde_json::to_string(&state).unwrap(),
    )
    .unwrap();
    let s = sync::status(&l, 3 * DAY, NOW + 10).unwrap();
    assert_eq!(s.waiting, 1);
    assert!(!s.trust_stale && s.revocations_stale);
    assert!(s.clock.is_empty(), "{:?}", s.clock);

    // The clock set back before the last entry and the last trust check.
    let s = sync::status(&l, 3 * DAY, NOW - 2 * DAY).unwrap();
    assert_eq!(
        s.clock,
        vec![
            ClockWarning::BeforeTrustCheck { at: NOW - DAY },
            ClockWarning::BeforeLastEntry { at: NOW }
        ]
    );
    assert!(s.clock_suspect());
    // Far from the server's clock at the last sync.
    let state = sync::State {
        server_offset: Some(-3600),
        ..state
    };
    std::fs::write(
        sync::state_path(&path),
        serde_json::to_string(&state).unwrap(),
    )
    .unwrap();
    let s = sync::status(&l, 3 * DAY, NOW + 10).unwrap();
    assert_eq!(s.clock, vec![ClockWarning::FarFromServer { offset: -3600 }]);
}

#[test]
fn history_shows_claimed_and_paid_from_the_servers_claims() {
    let d = tmp("claimed");
    let l = Ledger::open(&d.join("l.db")).unwrap();
    let mut ids = Vec::new();
    for n in 0..3u8 {
        let v = voucher(30 + n, &format!("B-{n}"), false);
        ids.push(
            l.redeem(&v, &SHOP, &RedeemRequest::Whole, NOW)
                .unwrap()
                .entry
                .id,
        );
    }
    let judged: Vec<Judged> = ids
        .iter()
        .map(|id| Judged {
            id: id.clone(),
            status: "accepted".into(),
            reason: None,
        })
        .collect();
    l.mark_judged(&judged, NOW).unwrap();
    let claim = |id: &str, state: &str, payable: Option<&str>| {
        serde_json::json!({"id": id, "state": state, "created_at": NOW, "updated_at": NOW,
            "payable": payable.map(|p| serde_json::json!({"state": p}))})
    };
    l.set_claims_seen(
        &[
            claim("CLM-1", "approved", Some("paid")),
            claim("CLM-2", "submitted", None),
            claim("CLM-3", "rejected", None),
        ],
        NOW,
    )
    .unwrap();
    l.set_claim_lines("CLM-1", &[ids[0].clone()]).unwrap();
    l.set_claim_lines("CLM-2", &[ids[1].clone()]).unwrap();
    l.set_claim_lines("CLM-3", &[ids[2].clone()]).unwrap();
    let state = |state: Option<&str>| {
        l.history_page(&HistoryFilter {
            state: state.map(str::to_owned),
            ..Default::default()
        })
        .unwrap()
        .rows
        .into_iter()
        .map(|r| (r.entry.id, r.state))
        .collect::<Vec<_>>()
    };
    let all = state(None);
    let of = |id: &str| all.iter().find(|(i, _)| i == id).unwrap().1.clone();
    assert_eq!(of(&ids[0]), "paid");
    assert_eq!(of(&ids[1]), "claimed");
    assert_eq!(
        of(&ids[2]),
        "accepted",
        "a rejected claim frees its redemptions"
    );
    assert_eq!(
        state(Some("paid")),
        vec![(ids[0].clone(), "paid".to_owned())]
    );
    assert_eq!(
        state(Some("accepted")),
        vec![(ids[2].clone(), "accepted".to_owned())]
    );
    // A claim's lines replaced when it is read again.
    l.set_claim_lines("CLM-2", &[]).unwrap();
    assert_eq!(state(Some("claimed")), vec![]);
}
