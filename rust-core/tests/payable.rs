//! Signed payables: a round trip, a table of texts that must be refused (each at its stage),
//! keys kept to their use (a payables key never verifies a voucher, a voucher key never a
//! payable), the printed fields compared, and properties over arbitrary input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use coset::cbor::value::Value;
use coset::{CborSerializable, HeaderBuilder};
use evoucher_core::keys::IssuerKey;
use evoucher_core::payable::{self, Account, Approval, Payable, PayableTrust};
use evoucher_core::{text, TrustStore, VoucherBuilder, VoucherId};
use proptest::prelude::*;

/// A CBOR map's entries.
type Entries = Vec<(Value, Value)>;

fn key() -> IssuerKey {
    IssuerKey::from_seed([9; 32])
}

fn sample() -> Payable {
    Payable {
        id: "PAY-0123456789abcdef01234567".into(),
        claim: "CLM-89abcdef0123456789abcdef".into(),
        program: "food-2026".into(),
        payee: "SP-0042".into(),
        payee_name: "Mama Mboga Grocers".into(),
        account: Account::Bank {
            holder: "Mama Mboga Ltd".into(),
            number: "0123456789012".into(),
            bank: "Equity Bank".into(),
            bic: Some("EQBLKENA".into()),
        },
        amount: 550_000,
        currency: "KES".into(),
        redemptions: 3,
        from: 1_795_000_000,
        to: 1_795_600_000,
        approvals: vec![
            Approval {
                stage: 1,
                role: "accountant".into(),
                by: "acct1".into(),
                at: 1_795_700_000,
            },
            Approval {
                stage: 2,
                role: "cash_manager".into(),
                by: "cash1".into(),
                at: 1_795_710_000,
            },
        ],
        documents: "ab".repeat(32),
        issued_at: 1_795_710_001,
    }
}

fn trust() -> PayableTrust {
    PayableTrust::from_keys([key().trusted()])
}

/// Sign raw parts: a protected header and a payload, as `EP1:` text.
fn signed(protected: coset::Header, payload: Vec<u8>, k: &IssuerKey) -> String {
    let cose =
        evoucher_core::cose::sign1_ed25519(protected, coset::Header::default(), payload, b"", k)
            .unwrap();
    format!("EP1:{}", text::base45_encode(&text::compress(&cose)))
}

fn header(k: &IssuerKey) -> coset::HeaderBuilder {
    HeaderBuilder::new()
        .algorithm(coset::iana::Algorithm::EdDSA)
        .key_id(k.kid().0.to_vec())
}

#[test]
fn a_payable_signs_and_verifies() {
    let p = sample();
    let e = payable::sign(&p, &key()).unwrap();
    assert!(e.text.starts_with("EP1:"));
    let (back, kid) = payable::verify(&e.text, &trust()).unwrap();
    assert_eq!(back, p);
    assert_eq!(kid, key().kid());
    // Lower-case prefix too, as QR readers may give it.
    let lower = format!("ep1:{}", &e.text[4..]);
    assert!(payable::verify(&lower, &trust()).is_ok());
    // It fits a QR code with room to spare.
    assert!(e.text.len() < 1200, "{}", e.text.len());
}

/// Texts that must be refused, with the stage that refuses them.
#[test]
fn payables_that_must_fail() {
    let k = key();
    let p = sample();
    let good = payable::sign(&p, &k).unwrap();
    let payload = p.to_cbor().unwrap();
    let ct = || header(&k).content_type(payable::CONTENT_TYPE.to_owned());
    let mut map = match Value::from_slice(&payload).unwrap() {
        Value::Map(m) => m,
        _ => unreachable!(),
    };
    let with = |f: &dyn Fn(&mut Entries)| {
        let mut m = map.clone();
        f(&mut m);
        Value::Map(m).to_vec().unwrap()
    };
    let other = IssuerKey::from_seed([10; 32]);
    let voucher = {
        let v = VoucherBuilder::new("https://p.example", "food-2026", "B-1")
            .value(100, "KES")
            .validity(1_795_000_000, 1_800_000_000)
            .id(VoucherId([3; 16]))
            .build()
            .unwrap();
        evoucher_core::encode::encode(&v, &k).unwrap()
    };
    let mut trailing = payload.clone();
    trailing.push(0x00);
    let mut tampered = good.cose.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let cases: Vec<(&str, String, &str)> = vec![
        ("too long", format!("EP1:{}", "A".repeat(5000)), "input"),
        ("a voucher", voucher.text.clone(), "prefix"),
        (
            "a voucher's COSE under EP1",
            format!("EP1:{}", &voucher.text[4..]),
            "content_type",
        ),
        ("not Base45", "EP1:%%%%".into(), "base45"),
        (
            "not zlib",
            format!("EP1:{}", text::base45_encode(b"hello")),
            "zlib",
        ),
        (
            "zlib, not COSE",
            format!("EP1:{}", text::base45_encode(&text::compress(b"hello"))),
            "cose",
        ),
        (
            "no content type",
            signed(header(&k).build(), payload.clone(), &k),
            "content_type",
        ),
        (
            "another content type",
            signed(
                header(&k).content_type("application/cwt".into()).build(),
                payload.clone(),
                &k,
            ),
            "content_type",
        ),
        (
            "alg not EdDSA",
            signed(
                HeaderBuilder::new()
                    .algorithm(coset::iana::Algorithm::ES256)
                    .key_id(k.kid().0.to_vec())
                    .content_type(payable::CONTENT_TYPE.into())
                    .build(),
                payload.clone(),
                &k,
            ),
            "alg",
        ),
        (
            "an untrusted key",
            signed(
                header(&other)
                    .content_type(payable::CONTENT_TYPE.into())
                    .build(),
                payload.clone(),
                &other,
            ),
            "kid",
        ),
        (
            "a bad signature",
            format!("EP1:{}", text::base45_encode(&text::compress(&tampered))),
            "signature",
        ),
        (
            "trailing bytes",
            signed(ct().build(), trailing, &k),
            "payload",
        ),
        (
            "an unknown key",
            signed(
                ct().build(),
                with(&|m| m.push((Value::Text("extra".into()), Value::Bool(true)))),
                &k,
            ),
            "payload",
        ),
        (
            "a key twice",
            signed(
                ct().build(),
                with(&|m| m.push((Value::Text("amount".into()), Value::Integer(1.into())))),
                &k,
            ),
            "payload",
        ),
        (
            "no amount",
            signed(
                ct().build(),
                with(&|m| m.retain(|(k, _)| k != &Value::Text("amount".into()))),
                &k,
            ),
            "payload",
        ),
        (
            "a zero amount",
            signed(
                ct().build(),
                with(&|m| {
                    for e in m.iter_mut() {
                        if e.0 == Value::Text("amount".into()) {
                            e.1 = Value::Integer(0.into())
                        }
                    }
                }),
                &k,
            ),
            "payload",
        ),
        (
            "a negative amount",
            signed(
                ct().build(),
                with(&|m| {
                    for e in m.iter_mut() {
                        if e.0 == Value::Text("amount".into()) {
                            e.1 = Value::Integer((-5).into())
                        }
                    }
                }),
                &k,
            ),
            "payload",
        ),
        (
            "a currency not ISO 4217",
            signed(
                ct().build(),
                with(&|m| {
                    for e in m.iter_mut() {
                        if e.0 == Value::Text("currency".into()) {
                            e.1 = Value::Text("kes".into())
                        }
                    }
                }),
                &k,
            ),
            "payload",
        ),
        (
            "an account of another kind",
            signed(
                ct().build(),
                with(&|m| {
                    for e in m.iter_mut() {
                        if e.0 == Value::Text("account".into()) {
                            e.1 = Value::Map(vec![(
                                Value::Text("kind".into()),
                                Value::Text("cash".into()),
                            )])
                        }
                    }
                }),
                &k,
            ),
            "payload",
        ),
        (
            "not a map",
            signed(ct().build(), Value::Array(vec![]).to_vec().unwrap(), &k),
            "payload",
        ),
    ];
    let _ = &mut map;
    for (what, t, stage) in cases {
        match payable::verify(&t, &trust()) {
            Err(e) => assert_eq!(e.stage(), stage, "{what}: {e}"),
            Ok(_) => panic!("{what} verified"),
        }
    }
}

/// A payables key never verifies a voucher, a voucher key never a payable; each trust store
/// skips the other's keys with a reason.
#[test]
fn keys_keep_to_their_use() {
    let k = key();
    let pj = payable::payables_jwk(&k);
    assert_eq!(pj.evoucher_use.as_deref(), Some("payable"));
    let payables_jwks = serde_json::json!({"keys": [pj]}).to_string();
    let err = TrustStore::from_jwks_json(&payables_jwks).unwrap_err();
    assert!(err.to_string().contains("never for vouchers"), "{err}");
    let voucher_jwks = serde_json::json!({"keys": [k.public_jwk()]}).to_string();
    let err = PayableTrust::from_jwks_json(&voucher_jwks).unwrap_err();
    assert!(err.contains("not a payables key"), "{err}");
    let both = serde_json::json!({"keys": [k.public_jwk(), payable::payables_jwk(&IssuerKey::from_seed([11; 32]))]}).to_string();
    let t = PayableTrust::from_jwks_json(&both).unwrap();
    assert_eq!((t.len(), t.skipped.len()), (1, 1));
    // A payable's COSE given the voucher prefix is refused by the voucher verifier.
    let e = payable::sign(&sample(), &k).unwrap();
    let as_voucher = format!("EV1:{}", &e.text[4..]);
    let vt = TrustStore::from_keys([k.trusted()]).unwrap();
    let err = evoucher_core::verify(&as_voucher, &vt, 1_795_710_002).unwrap_err();
    assert!(err.to_string().contains("payable"), "{err}");
}

#[test]
fn the_page_must_say_what_was_signed() {
    let p = sample();
    let lines: Vec<String> = payable::printed(&p)
        .into_iter()
        .map(|(l, v)| format!("{l}:   {v}"))
        .collect();
    assert!(payable::compare(&p, &lines).is_empty());
    let mut edited = lines.clone();
    for l in &mut edited {
        if l.starts_with("Account number:") {
            *l = "Account number: 9999999999999".into();
        }
    }
    let m = payable::compare(&p, &edited);
    assert_eq!(m.len(), 1);
    assert_eq!(
        (m[0].field.as_str(), m[0].printed.as_deref()),
        ("Account number", Some("9999999999999"))
    );
    // A payment field left out is refused; a second account number printed too.
    let missing: Vec<String> = lines
        .iter()
        .filter(|l| !l.starts_with("Amount:"))
        .cloned()
        .collect();
    assert_eq!(payable::compare(&p, &missing)[0].field, "Amount");
    let mut extra = lines.clone();
    extra.push("Account number: 1111".into());
    assert_eq!(payable::compare(&p, &extra).len(), 1);
    // Mobile money prints its own fields.
    let mut mobile = p.clone();
    mobile.account = Account::Mobile {
        holder: "Amina K.".into(),
        msisdn: "+254712345678".into(),
        operator: "M-Pesa".into(),
    };
    let labels: Vec<&str> = payable::printed(&mobile).iter().map(|f| f.0).collect();
    assert!(labels.contains(&"Mobile number") && !labels.contains(&"Bank"));
}

fn arb_payable() -> impl Strategy<Value = Payable> {
    (
        "[A-Z]{3}-[0-9a-f]{1,24}",
        "[ -~]{1,60}",
        1u64..=i64::MAX as u64,
        prop::bool::ANY,
        "[0-9]{8,15}",
        0i64..4_000_000_000,
        prop::collection::vec(
            ("[a-z_]{1,12}", "[a-z0-9.]{1,20}", 0i64..4_000_000_000),
            1..4,
        ),
    )
        .prop_map(|(id, name, amount, bank, digits, t, approvals)| Payable {
            id: id.clone(),
            claim: format!("CLM-{id}"),
            program: "p".into(),
            payee: "SP-1".into(),
            payee_name: if name.trim().is_empty() {
                "x".into()
            } else {
                name
            },
            account: if bank {
                Account::Bank {
                    holder: "H".into(),
                    number: digits.clone(),
                    bank: "B".into(),
                    bic: None,
                }
            } else {
                Account::Mobile {
                    holder: "H".into(),
                    msisdn: format!("+{digits}"),
                    operator: "O".into(),
                }
            },
            amount,
            currency: "KES".into(),
            redemptions: 1,
            from: t,
            to: t,
            approvals: approvals
                .into_iter()
                .enumerate()
                .map(|(i, (role, by, at))| Approval {
                    stage: i as u32 + 1,
                    role,
                    by,
                    at,
                })
                .collect(),
            documents: "0".repeat(64),
            issued_at: t,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any payable that passes its checks signs and reads back equal.
    #[test]
    fn any_payable_round_trips(p in arb_payable()) {
        let e = payable::sign(&p, &key()).unwrap();
        prop_assert_eq!(payable::verify(&e.text, &trust()).unwrap().0, p);
    }

    /// Arbitrary text and bytes never panic and never verify.
    #[test]
    fn arbitrary_input_is_refused(s in ".{0,300}", b in prop::collection::vec(any::<u8>(), 0..300)) {
        prop_assert!(payable::verify(&s, &trust()).is_err());
        let t = format!("EP1:{}", text::base45_encode(&b));
        prop_assert!(payable::verify(&t, &trust()).is_err());
        let _ = Payable::from_cbor(&b);
    }
}

/// The worked example of docs/payable-format.md, kept as a language-neutral vector
/// (`test-vectors/payables/payable-ok.json`): every stage of the encoding and the expected
/// result. Signing is deterministic (Ed25519), so the file is regenerated exactly; set
/// `EVOUCHER_WRITE_VECTORS=1` to write it after a deliberate change.
#[test]
fn the_worked_example_vector() {
    let k = key();
    let p = sample();
    let e = payable::sign(&p, &k).unwrap();
    let v = serde_json::json!({
        "description": "A payable signed with a program's payables key (seed 0x09 x 32): every stage, and the result a verifier must reach",
        "key": payable::payables_jwk(&k),
        "payable": p,
        "payload_cbor_hex": hex::encode(&e.payload),
        "cose_sign1_hex": hex::encode(&e.cose),
        "zlib_hex": hex::encode(text::compress(&e.cose)),
        "text": e.text,
        "expected": {"verified": true, "kid": k.kid().to_b64()},
        "printed": payable::printed(&p).into_iter().map(|(l, v)| format!("{l}: {v}")).collect::<Vec<_>>(),
    });
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../test-vectors/payables/payable-ok.json");
    let text = serde_json::to_string_pretty(&v).unwrap() + "\n";
    if std::env::var("EVOUCHER_WRITE_VECTORS").is_ok() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).expect("test-vectors/payables/payable-ok.json");
    assert_eq!(
        on_disk, text,
        "the vector file is what the code makes today"
    );
    let jwks = serde_json::json!({"keys": [v["key"]]}).to_string();
    let t = PayableTrust::from_jwks_json(&jwks).unwrap();
    assert_eq!(
        payable::verify(v["text"].as_str().unwrap(), &t).unwrap().0,
        p
    );
}
