//! Property tests: no input panics the decoder; mutated vouchers are never accepted; any valid
//! voucher survives the round trip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use evoucher_core::encode::encode;
use evoucher_core::keys::IssuerKey;
use evoucher_core::verify::{inspect, verify};
use evoucher_core::voucher::{Voucher, VoucherBuilder, VoucherId};
use evoucher_core::{text, TrustStore};
use proptest::prelude::*;

const NOW: i64 = 1_780_000_000;

fn key() -> IssuerKey {
    IssuerKey::from_seed([42; 32])
}

fn trust() -> TrustStore {
    TrustStore::from_keys([key().trusted()]).unwrap()
}

fn sample() -> String {
    let v = VoucherBuilder::new("https://p.example", "prog", "ben")
        .value(1000, "USD")
        .item("RICE", 5, Some("kg"))
        .validity(NOW - 100, NOW + 100_000)
        .id(VoucherId([9; 16]))
        .build()
        .unwrap();
    encode(&v, &key()).unwrap().text
}

fn text_strategy() -> impl Strategy<Value = String> {
    "[ -~]{0,20}"
}

fn voucher_strategy() -> impl Strategy<Value = Voucher> {
    (
        "[a-z]{1,12}",
        "[A-Z0-9-]{1,16}",
        proptest::option::of("[ -~]{1,24}"),
        proptest::option::of((1u64..=evoucher_core::voucher::MAX_AMOUNT, "[A-Z]{3}")),
        proptest::collection::vec(
            (
                "[A-Z]{1,6}",
                1u64..1_000_000,
                proptest::option::of("[a-z]{1,3}"),
            ),
            0..4,
        ),
        any::<bool>(),
        proptest::option::of(text_strategy().prop_filter("non-empty", |s| !s.is_empty())),
        any::<[u8; 16]>(),
        (-1_000_000i64..1_000_000, 1i64..10_000_000),
    )
        .prop_filter_map(
            "needs value or items, distinct codes",
            |(prog, ben, name, value, items, partial, aud, id, (from, len))| {
                let mut b = VoucherBuilder::new("https://p.example", &prog, &ben)
                    .validity(NOW + from, NOW + from + len)
                    .id(VoucherId(id));
                if let Some(n) = name {
                    b = b.name(&n);
                }
                if let Some((a, c)) = value {
                    b = b.value(a, &c);
                }
                for (c, q, u) in items {
                    b = b.item(&c, q, u.as_deref());
                }
                if partial {
                    b = b.partial();
                }
                if let Some(a) = aud {
                    b = b.audience(&a);
                }
                b.build().ok()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let s = String::from_utf8_lossy(&bytes).into_owned();
        let _ = verify(&s, &trust(), NOW);
        let _ = inspect(&s);
        let with_prefix = format!("EV1:{}", text::base45_encode(&bytes));
        prop_assert!(verify(&with_prefix, &trust(), NOW).is_err());
        let _ = inspect(&with_prefix);
        let compressed = format!("EV1:{}", text::base45_encode(&text::compress(&bytes)));
        prop_assert!(verify(&compressed, &trust(), NOW).is_err());
    }

    #[test]
    fn random_base45_text_never_panics(s in "[0-9A-Z $%*+./:-]{0,400}") {
        let _ = verify(&format!("EV1:{s}"), &trust(), NOW);
        let _ = inspect(&format!("EV1:{s}"));
    }

    #[test]
    fn mutated_text_is_never_accepted_as_another_voucher(pos in 4usize..300, c in "[0-9A-Z $%*+./:-]") {
        let t = sample();
        let pos = pos % t.len();
        let mut m = t.clone();
        m.replace_range(pos..pos + 1, &c);
        let r = verify(&m, &trust(), NOW);
        if m != t {
            prop_assert!(r.is_err(), "mutation at {pos} accepted");
        }
    }

    #[test]
    fn mutated_cose_byte_is_refused(pos in 0usize..400, x in 1u8..=255) {
        let d = evoucher_core::verify::decode(&sample()).unwrap();
        let mut cose = d.cose.clone();
        let pos = pos % cose.len();
        cose[pos] ^= x;
        let m = format!("EV1:{}", text::base45_encode(&text::compress(&cose)));
        prop_assert!(verify(&m, &trust(), NOW).is_err());
        let _ = inspect(&m);
    }

    #[test]
    fn any_valid_voucher_round_trips(v in voucher_strategy()) {
        let enc = encode(&v, &key()).unwrap();
        let now = v.valid_from();
        let got = verify(&enc.text, &trust(), now).unwrap();
        prop_assert_eq!(got.voucher, v);
    }
}

/// A roster row as a generator sees it: (id, name, amount, items).
type GenRow = (
    String,
    Option<String>,
    Option<u64>,
    Vec<(String, u64, Option<String>)>,
);

fn roster_rows() -> impl Strategy<Value = Vec<GenRow>> {
    let row = (
        "[A-Za-z0-9-]{1,20}",
        proptest::option::of("[A-Za-z ,\"'À-ÿ\u{0900}-\u{097f}]{1,40}"),
        proptest::option::of(1u64..=i64::MAX as u64),
        proptest::collection::vec(
            (
                "[A-Z]{1,8}",
                1u64..1_000_000,
                proptest::option::of("[a-z]{1,4}"),
            ),
            0..3,
        ),
    );
    proptest::collection::vec(row, 1..30)
}

fn csv_cell(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes: a roster or a typed error, never a panic; an error names a line and no cell.
    #[test]
    fn roster_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Err(e) = evoucher_core::roster::parse(&bytes) {
            let _ = (e.line(), e.to_string());
        }
    }

    /// A roster written from rows (quoted, names with commas, quotes and other scripts, a BOM
    /// or not) parses back to the same rows, in order, with their line numbers.
    #[test]
    fn roster_round_trips(rows in roster_rows(), bom in any::<bool>()) {
        let mut seen = std::collections::HashSet::new();
        let rows: Vec<GenRow> = rows.into_iter().filter(|r| seen.insert(r.0.clone())).collect();
        let mut csv = String::from(if bom { "\u{feff}" } else { "" });
        csv.push_str("beneficiary_id,name,amount,items\n");
        for (id, name, amount, items) in &rows {
            let items: Vec<String> = items
                .iter()
                .map(|(c, q, u)| match u {
                    Some(u) => format!("{c}:{q}:{u}"),
                    None => format!("{c}:{q}"),
                })
                .collect();
            csv.push_str(&format!(
                "{},{},{},{}\n",
                csv_cell(id),
                name.as_deref().map(csv_cell).unwrap_or_default(),
                amount.map(|a| a.to_string()).unwrap_or_default(),
                items.join(";")
            ));
        }
        let parsed = evoucher_core::roster::parse(csv.as_bytes()).unwrap();
        prop_assert_eq!(parsed.len(), rows.len());
        for (i, (p, (id, name, amount, items))) in parsed.iter().zip(&rows).enumerate() {
            prop_assert_eq!(p.line, i as u64 + 2);
            prop_assert_eq!(&p.id, id);
            prop_assert_eq!(p.name.as_deref(), name.as_deref().map(str::trim).filter(|n| !n.is_empty()));
            prop_assert_eq!(p.amount, *amount);
            let got: Vec<(String, u64, Option<String>)> = p
                .items
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|it| (it.code, it.quantity, it.unit))
                .collect();
            prop_assert_eq!(&got, items);
        }
    }
}

proptest! {
    /// The `Date` a phone reads from a server: any text parses or is `None`, never a panic;
    /// every date from 1970 to 9999 comes back as itself.
    #[test]
    fn http_dates_parse_or_are_refused(text in ".{0,64}", t in 0i64..253_402_300_800) {
        let _ = evoucher_core::time::parse_http_date(&text);
        let shown = evoucher_core::time::http_date(t);
        prop_assert_eq!(evoucher_core::time::parse_http_date(&shown), Some(t), "{}", shown);
    }
}
