//! The rulebook (`evoucher_core::rules`): a table of takings that must be refused, with the
//! refusal each gets; checked arithmetic at the edges of the range; voids; and property tests:
//! for random sequences of redemptions from several devices the accepted total never exceeds
//! the voucher, and a real phone ledger decides every step as the rulebook does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use evoucher_core::encode::encode;
use evoucher_core::keys::IssuerKey;
use evoucher_core::ledger::{Ledger, Options, RedeemError, Redeemer};
use evoucher_core::rules::{
    self, check, check_void, Context, Counted, ItemQty, RedeemRequest, Refusal, Taking,
    VoidRefusal, VoidTarget,
};
use evoucher_core::voucher::{Voucher, VoucherBuilder, VoucherId, MAX_AMOUNT};
use evoucher_core::{verify, TrustStore};
use proptest::prelude::*;

const NOW: i64 = 1_780_000_000;

fn voucher(f: impl FnOnce(VoucherBuilder) -> VoucherBuilder) -> Voucher {
    f(VoucherBuilder::new("https://p.example", "prog", "ben")
        .validity(NOW - 1000, NOW + 100_000)
        .id(VoucherId([9; 16])))
    .build()
    .unwrap()
}

fn ctx() -> Context<'static> {
    Context {
        provider: "SP-1",
        category: Some("grocery"),
        at: NOW,
        revoked_at: None,
    }
}

fn items(list: &[(&str, u64)]) -> Vec<ItemQty> {
    list.iter()
        .map(|(c, q)| ItemQty {
            code: (*c).into(),
            quantity: *q,
        })
        .collect()
}

fn taking<'a>(amount: Option<u64>, currency: Option<&'a str>, it: &'a [ItemQty]) -> Taking<'a> {
    Taking {
        amount,
        currency,
        items: it,
    }
}

fn counted<'a>(id: &'a str, amount: Option<u64>, it: &'a [ItemQty]) -> Counted<'a> {
    Counted {
        id,
        at: NOW - 10,
        provider: "SP-1",
        device: "dev-a",
        amount,
        items: it,
    }
}

#[test]
fn takings_that_must_be_refused() {
    let single = voucher(|b| b.value(1000, "KES").item("RICE", 5, Some("kg")));
    let partial = voucher(|b| b.value(1000, "KES").item("RICE", 5, None).partial());
    let cash_only = voucher(|b| b.value(1000, "KES").partial());
    let goods_only = voucher(|b| b.item("RICE", 5, None).partial());
    let for_sp2 = voucher(|b| b.value(1000, "KES").audience("SP-2"));
    let pharmacy = voucher(|b| b.value(1000, "KES").category("pharmacy"));
    let rice5 = items(&[("RICE", 5)]);
    let rice3 = items(&[("RICE", 3)]);
    let rice6 = items(&[("RICE", 6)]);
    let rice0 = items(&[("RICE", 0)]);
    let oil = items(&[("OIL", 1)]);
    let rice_twice = items(&[("RICE", 1), ("RICE", 1)]);
    let huge_rice = items(&[("RICE", MAX_AMOUNT + 1)]);
    let used_600 = [counted("r-1", Some(600), &[])];
    let rice1 = items(&[("RICE", 1)]);
    let rice2 = items(&[("RICE", 2)]);
    let used_rice4 = [counted("r-1", None, &rice3), counted("r-2", None, &rice1)];
    let used_all = [counted("r-1", Some(1000), &rice5)];
    let used_1000 = [counted("r-1", Some(1000), &[])];
    let none: [Counted<'_>; 0] = [];
    let at = |at| Context { at, ..ctx() };
    let revoked = |r| Context {
        revoked_at: Some(r),
        ..ctx()
    };
    // (voucher, counted, taking, context, refusal code, conflict?)
    #[allow(clippy::type_complexity)]
    let table: Vec<(
        &Voucher,
        &[Counted<'_>],
        Taking<'_>,
        Context<'_>,
        &str,
        bool,
    )> = vec![
        // Single-use: exactly the value and items, once.
        (
            &single,
            &none,
            taking(Some(999), Some("KES"), &rice5),
            ctx(),
            "not_whole",
            false,
        ),
        (
            &single,
            &none,
            taking(Some(1000), Some("KES"), &rice3),
            ctx(),
            "not_whole",
            false,
        ),
        (
            &single,
            &none,
            taking(Some(1000), Some("KES"), &[]),
            ctx(),
            "not_whole",
            false,
        ),
        (
            &single,
            &none,
            taking(Some(1000), Some("EUR"), &rice5),
            ctx(),
            "wrong_currency",
            false,
        ),
        (
            &single,
            &none,
            taking(Some(1000), Some("KES"), &oil),
            ctx(),
            "unknown_item",
            false,
        ),
        (
            &single,
            &used_all,
            taking(Some(1000), Some("KES"), &rice5),
            ctx(),
            "already_redeemed",
            true,
        ),
        // Partial: range, currency, items, what remains.
        (
            &partial,
            &used_600,
            taking(Some(401), Some("KES"), &[]),
            ctx(),
            "insufficient_balance",
            true,
        ),
        (
            &partial,
            &used_1000,
            taking(Some(1), Some("KES"), &[]),
            ctx(),
            "exhausted",
            true,
        ),
        (
            &partial,
            &none,
            taking(Some(1001), Some("KES"), &[]),
            ctx(),
            "insufficient_balance",
            true,
        ),
        (
            &partial,
            &used_rice4,
            taking(None, None, &rice2),
            ctx(),
            "insufficient_items",
            true,
        ),
        (
            &partial,
            &none,
            taking(None, None, &rice6),
            ctx(),
            "insufficient_items",
            true,
        ),
        (
            &partial,
            &none,
            taking(Some(MAX_AMOUNT + 1), Some("KES"), &[]),
            ctx(),
            "out_of_range",
            false,
        ),
        (
            &partial,
            &none,
            taking(Some(u64::MAX), Some("KES"), &[]),
            ctx(),
            "out_of_range",
            false,
        ),
        (
            &partial,
            &none,
            taking(None, None, &huge_rice),
            ctx(),
            "out_of_range",
            false,
        ),
        (
            &partial,
            &none,
            taking(Some(0), Some("KES"), &[]),
            ctx(),
            "invalid_request",
            false,
        ),
        (
            &partial,
            &none,
            taking(None, None, &rice0),
            ctx(),
            "invalid_request",
            false,
        ),
        (
            &partial,
            &none,
            taking(None, None, &rice_twice),
            ctx(),
            "invalid_request",
            false,
        ),
        (
            &partial,
            &none,
            taking(None, None, &[]),
            ctx(),
            "invalid_request",
            false,
        ),
        (
            &partial,
            &none,
            taking(None, Some("KES"), &rice3),
            ctx(),
            "invalid_request",
            false,
        ),
        (
            &partial,
            &none,
            taking(Some(10), None, &[]),
            ctx(),
            "wrong_currency",
            false,
        ),
        (
            &partial,
            &none,
            taking(Some(10), Some("EUR"), &[]),
            ctx(),
            "wrong_currency",
            false,
        ),
        (
            &cash_only,
            &none,
            taking(None, None, &rice3),
            ctx(),
            "unknown_item",
            false,
        ),
        (
            &goods_only,
            &none,
            taking(Some(10), Some("KES"), &[]),
            ctx(),
            "no_value",
            false,
        ),
        // Who, when, and cancellation.
        (
            &for_sp2,
            &none,
            taking(Some(1000), Some("KES"), &[]),
            ctx(),
            "wrong_provider",
            false,
        ),
        (
            &pharmacy,
            &none,
            taking(Some(1000), Some("KES"), &[]),
            ctx(),
            "category_not_allowed",
            false,
        ),
        (
            &single,
            &none,
            taking(Some(1000), Some("KES"), &rice5),
            at(NOW - 1001),
            "not_yet_valid",
            false,
        ),
        (
            &single,
            &none,
            taking(Some(1000), Some("KES"), &rice5),
            at(NOW + 100_000),
            "expired",
            false,
        ),
        (
            &single,
            &none,
            taking(Some(1000), Some("KES"), &rice5),
            revoked(NOW),
            "revoked",
            false,
        ),
    ];
    for (i, (v, c, t, cx, code, conflict)) in table.iter().enumerate() {
        match check(v, c, t, cx) {
            Err(r) => {
                assert_eq!(r.code(), *code, "case {i}: {r}");
                assert_eq!(r.is_conflict(), *conflict, "case {i}: {r}");
                // Messages never carry beneficiary data.
                assert!(!r.to_string().contains("ben"), "case {i}: {r}");
            }
            Ok(b) => panic!("case {i} ({code}) was allowed: {b:?}"),
        }
    }
    // And what is allowed, with what remains.
    let b = check(
        &single,
        &none,
        &taking(Some(1000), Some("KES"), &rice5),
        &ctx(),
    )
    .unwrap();
    assert_eq!(
        (b.amount, b.items, b.redemptions),
        (Some(0), items(&[("RICE", 0)]), 1)
    );
    let b = check(
        &partial,
        &used_600,
        &taking(Some(400), Some("KES"), &rice3),
        &ctx(),
    )
    .unwrap();
    assert_eq!((b.amount, b.items), (Some(0), items(&[("RICE", 2)])));
    // Cancelled after the redemption: allowed (the phone could not know).
    assert!(check(
        &single,
        &none,
        &taking(Some(1000), Some("KES"), &rice5),
        &revoked(NOW + 1)
    )
    .is_ok());
    assert!(check(
        &for_sp2,
        &none,
        &taking(Some(1000), Some("KES"), &[]),
        &Context {
            provider: "SP-2",
            ..ctx()
        }
    )
    .is_ok());
    assert!(check(
        &pharmacy,
        &none,
        &taking(Some(1000), Some("KES"), &[]),
        &Context {
            category: Some("pharmacy"),
            ..ctx()
        }
    )
    .is_ok());
}

/// Sums are checked: counted redemptions whose amounts would overflow are refused, never
/// wrapped into a small or negative total.
#[test]
fn sums_never_wrap() {
    let v = voucher(|b| {
        b.value(MAX_AMOUNT, "KES")
            .item("RICE", MAX_AMOUNT, None)
            .partial()
    });
    let half = MAX_AMOUNT / 2 + 1;
    let big = [
        counted("a", Some(u64::MAX), &[]),
        counted("b", Some(2), &[]),
    ];
    assert_eq!(rules::balance(&v, &big).unwrap_err().code(), "out_of_range");
    let r = check(&v, &big, &taking(Some(1), Some("KES"), &[]), &ctx()).unwrap_err();
    assert_eq!(r.code(), "out_of_range");
    let hi = items(&[("RICE", u64::MAX)]);
    let two = items(&[("RICE", 2)]);
    let big = [counted("a", None, &hi), counted("b", None, &two)];
    assert_eq!(rules::balance(&v, &big).unwrap_err().code(), "out_of_range");
    // At the very top of the range everything adds up exactly.
    let used = [counted("a", Some(half), &[])];
    let b = check(
        &v,
        &used,
        &taking(Some(MAX_AMOUNT - half), Some("KES"), &[]),
        &ctx(),
    )
    .unwrap();
    assert_eq!(b.amount, Some(0));
    let r = check(
        &v,
        &used,
        &taking(Some(MAX_AMOUNT - half + 1), Some("KES"), &[]),
        &ctx(),
    )
    .unwrap_err();
    assert_eq!(
        r,
        Refusal::InsufficientBalance {
            remaining: MAX_AMOUNT - half,
            requested: MAX_AMOUNT - half + 1
        }
    );
}

#[test]
fn voids_undo_only_an_accepted_redemption_of_the_same_device_once() {
    let vid = VoucherId([9; 16]);
    let other = VoucherId([8; 16]);
    let t = |device, is_redemption, accepted, voided, voucher_id| VoidTarget {
        is_redemption,
        device,
        voucher_id,
        accepted,
        voided,
    };
    assert_eq!(
        check_void(Some(&t("dev-a", true, true, false, &vid)), "dev-a", &vid),
        Ok(())
    );
    for (target, want) in [
        (None, VoidRefusal::UnknownEntry),
        (
            Some(t("dev-b", true, true, false, &vid)),
            VoidRefusal::OtherDevice,
        ),
        (
            Some(t("dev-a", false, true, false, &vid)),
            VoidRefusal::NotARedemption,
        ),
        (
            Some(t("dev-a", true, false, false, &vid)),
            VoidRefusal::NotAccepted,
        ),
        (
            Some(t("dev-a", true, true, true, &vid)),
            VoidRefusal::AlreadyVoided,
        ),
        (
            Some(t("dev-a", true, true, false, &other)),
            VoidRefusal::OtherVoucher,
        ),
    ] {
        assert_eq!(check_void(target.as_ref(), "dev-a", &vid), Err(want));
    }
}

#[test]
fn plan_turns_requests_into_exact_takings() {
    let partial = voucher(|b| b.value(1000, "KES").item("RICE", 5, None).partial());
    let used = [counted("r-1", Some(600), &[])];
    assert_eq!(
        rules::plan(&partial, &used, &RedeemRequest::Whole).unwrap(),
        (Some(400), items(&[("RICE", 5)]))
    );
    let single = voucher(|b| b.value(1000, "KES"));
    assert_eq!(
        rules::plan(&single, &[], &RedeemRequest::Amount(5)).unwrap_err(),
        Refusal::WholeOnly
    );
}

// ---- property tests ----

#[derive(Debug, Clone)]
enum Step {
    /// A device takes an amount and/or items (possibly more than remains, possibly absurd).
    Take {
        device: usize,
        amount: Option<u64>,
        rice: Option<u64>,
    },
    /// A device voids one of the accepted redemptions (its own or, wrongly, another's).
    Void { device: usize, nth: usize },
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 1u64..400,
        1 => Just(0u64),
        1 => (MAX_AMOUNT - 5)..=u64::MAX,
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (0usize..3, proptest::option::of(amount()), proptest::option::of(amount()))
            .prop_map(|(device, amount, rice)| Step::Take { device, amount, rice }),
        1 => (0usize..3, 0usize..20).prop_map(|(device, nth)| Step::Void { device, nth }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The server's view: every device's entries judged in arrival order against everything
    /// accepted before. The accepted total never exceeds the voucher and never wraps.
    #[test]
    fn accepted_never_exceeds_the_voucher(
        value in 1u64..2_000,
        rice in 1u64..50,
        single in any::<bool>(),
        steps in proptest::collection::vec(step(), 1..60),
    ) {
        let v = voucher(|b| {
            let b = b.value(value, "KES").item("RICE", rice, None);
            if single { b } else { b.partial() }
        });
        let devices = ["dev-a", "dev-b", "dev-c"];
        // (id, device, amount, items) of accepted, not voided redemptions.
        let mut accepted: Vec<(String, usize, Option<u64>, Vec<ItemQty>)> = Vec::new();
        let mut voided: Vec<String> = Vec::new();
        for (n, s) in steps.into_iter().enumerate() {
            match s {
                Step::Take { device, amount, rice: r } => {
                    let it = r.map(|q| items(&[("RICE", q)])).unwrap_or_default();
                    let counted: Vec<Counted<'_>> = accepted.iter().map(|(id, d, a, i)| Counted {
                        id, at: NOW, provider: "SP-1", device: devices[*d], amount: *a, items: i,
                    }).collect();
                    let t = taking(amount, amount.map(|_| "KES"), &it);
                    if let Ok(b) = check(&v, &counted, &t, &ctx()) {
                        accepted.push((format!("e{n}"), device, amount, it.clone()));
                        let used: u64 = accepted.iter().filter_map(|x| x.2).sum();
                        prop_assert_eq!(b.amount, Some(if single { 0 } else { value - used }));
                    }
                }
                Step::Void { device, nth } => {
                    if accepted.is_empty() { continue; }
                    let i = nth % accepted.len();
                    let (id, owner, ..) = &accepted[i];
                    let target = VoidTarget {
                        is_redemption: true,
                        device: devices[*owner],
                        voucher_id: &v.id,
                        accepted: true,
                        voided: voided.contains(id),
                    };
                    let r = check_void(Some(&target), devices[device], &v.id);
                    prop_assert_eq!(r.is_ok(), device == *owner);
                    if r.is_ok() {
                        voided.push(id.clone());
                        accepted.remove(i);
                    }
                }
            }
            let total: u128 = accepted.iter().filter_map(|x| x.2).map(u128::from).sum();
            let total_rice: u128 = accepted.iter().flat_map(|x| &x.3).map(|i| u128::from(i.quantity)).sum();
            prop_assert!(total <= u128::from(value));
            prop_assert!(total_rice <= u128::from(rice));
            if single {
                prop_assert!(accepted.len() <= 1);
            }
        }
    }
}

fn issuer() -> IssuerKey {
    IssuerKey::from_seed([31; 32])
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("evoucher-rules-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A real phone ledger decides every request exactly as the rulebook folded over the
    /// ledger's own history does (the server runs the same fold over every device's entries).
    #[test]
    fn a_phone_ledger_judges_as_the_rulebook(
        steps in proptest::collection::vec((proptest::option::of(amount()), proptest::option::of(amount()), any::<bool>()), 1..25),
    ) {
        let d = tmp("phone");
        let l = Ledger::open_with(&d.join("l.db"), Options { durable: false, ..Options::default() }).unwrap();
        let v = voucher(|b| b.value(1000, "KES").item("RICE", 20, None).partial());
        let text = encode(&v, &issuer()).unwrap().text;
        let trust = TrustStore::from_keys([issuer().trusted()]).unwrap();
        let verified = verify(&text, &trust, NOW).unwrap();
        let who = Redeemer { provider: "SP-1", category: Some("grocery"), device: "dev-a" };
        let mut accepted: Vec<(String, Option<u64>, Vec<ItemQty>)> = Vec::new();
        for (n, (amount, rice, void)) in steps.into_iter().enumerate() {
            if void && !accepted.is_empty() {
                let (id, ..) = accepted.remove(n % accepted.len());
                l.void(&id, &who, NOW).unwrap();
                continue;
            }
            let req = match (amount, rice) {
                (Some(a), _) => RedeemRequest::Amount(a),
                (None, Some(q)) => RedeemRequest::Items(items(&[("RICE", q)])),
                (None, None) => RedeemRequest::Whole,
            };
            let counted: Vec<Counted<'_>> = accepted.iter().map(|(id, a, i)| Counted {
                id, at: NOW, provider: "SP-1", device: "dev-a", amount: *a, items: i,
            }).collect();
            let model = rules::plan(&v, &counted, &req).and_then(|(a, it)| {
                check(&v, &counted, &taking(a, a.map(|_| "KES"), &it), &ctx()).map(|_| (a, it))
            });
            match (model, l.redeem(&verified, &who, &req, NOW)) {
                (Ok((a, it)), Ok(r)) => {
                    prop_assert_eq!(r.entry.amount, a);
                    prop_assert_eq!(&r.entry.items, &it);
                    accepted.push((r.entry.id, a, it));
                }
                (Err(m), Err(RedeemError::Refused(x))) => prop_assert_eq!(m, x),
                (m, r) => prop_assert!(false, "rulebook {:?}, ledger {:?}", m, r),
            }
        }
        let b = l.balance(&v).unwrap();
        let used: u64 = accepted.iter().filter_map(|x| x.1).sum();
        prop_assert_eq!(b.amount, Some(1000 - used));
        let _ = std::fs::remove_dir_all(&d);
    }
}
