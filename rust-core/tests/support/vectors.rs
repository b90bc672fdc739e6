//! Deterministic generator for `test-vectors/vouchers/`: fixed keys, fixed clock, fixed ids.
//!
//! Shared by `examples/gen_vectors.rs` (writes the files) and `tests/vectors.rs` (checks that
//! regenerating gives the same bytes). Expected results are written here by hand, per case:
//! they never come from the verifier under test.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use coset::cbor::value::Value;
use coset::cwt::{ClaimName, ClaimsSet, Timestamp};
use coset::{iana, CborSerializable, CoseSign1, Header, HeaderBuilder, TaggedCborSerializable};
use evoucher_core::keys::{IssuerKey, Jwks};
use evoucher_core::trust::TrustedKey;
use evoucher_core::voucher::{Voucher, VoucherBuilder, VoucherId};
use evoucher_core::{qr, text, Stage};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

/// 2026-01-01T00:00:00Z
pub const IAT: i64 = 1_767_225_600;
/// 2026-12-31T00:00:00Z
pub const EXP: i64 = 1_798_675_200;
/// The validation clock: 2026-06-01T00:00:00Z.
pub const CLOCK: i64 = 1_780_272_000;
pub const ISS: &str = "https://food.example.org";

pub fn key(label: &str) -> IssuerKey {
    let seed: [u8; 32] = Sha256::digest(format!("evoucher test key {label}")).into();
    IssuerKey::from_seed(seed)
}

fn id(n: u8) -> VoucherId {
    let mut b = [0u8; 16];
    b[0] = 0xE5;
    b[15] = n;
    VoucherId(b)
}

fn base() -> VoucherBuilder {
    VoucherBuilder::new(ISS, "food-2026", "BEN-0001")
        .name("Amina K.")
        .validity(IAT, EXP)
}

fn protected(k: &IssuerKey) -> Header {
    HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(k.kid().0.to_vec())
        .build()
}

fn sign(p: Header, u: Header, payload: Vec<u8>, k: &IssuerKey) -> Vec<u8> {
    evoucher_core::cose::sign1_ed25519(p, u, payload, b"", k).unwrap()
}

fn claims_bytes(v: &Voucher) -> Vec<u8> {
    v.to_claims().to_vec().unwrap()
}

/// Edit the private voucher map inside a claims set.
fn edit_private(c: &mut ClaimsSet, f: impl FnOnce(&mut Vec<(Value, Value)>)) {
    let slot = c
        .rest
        .iter_mut()
        .find(|(name, _)| *name == ClaimName::PrivateUse(-65537));
    if let Some((_, Value::Map(m))) = slot {
        f(m);
    }
}

fn jwks(keys: &[TrustedKey]) -> Json {
    serde_json::to_value(Jwks {
        keys: keys.iter().map(TrustedKey::to_jwk).collect(),
        evoucher_source: None,
    })
    .unwrap()
}

/// CBOR diagnostic notation (RFC 8949 §8), for the comments in the vectors.
pub fn diag(v: &Value) -> String {
    match v {
        Value::Integer(i) => i128::from(*i).to_string(),
        Value::Bytes(b) => format!("h'{}'", hex::encode(b)),
        Value::Float(f) => format!("{f:?}"),
        Value::Text(s) => serde_json::to_string(s).unwrap(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Tag(t, v) => format!("{t}({})", diag(v)),
        Value::Array(a) => format!("[{}]", a.iter().map(diag).collect::<Vec<_>>().join(", ")),
        Value::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", diag(k), diag(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "?".into(),
    }
}

fn diag_bytes(b: &[u8]) -> Option<String> {
    let mut r = b;
    let v: Value = coset::cbor::de::from_reader(&mut r).ok()?;
    Some(if r.is_empty() {
        diag(&v)
    } else {
        format!("{} + {} trailing byte(s)", diag(&v), r.len())
    })
}

/// How the COSE bytes become text.
#[derive(Clone, Copy)]
enum Wrap {
    Zlib,
    Raw,
}

/// One case under construction.
struct Case {
    name: String,
    description: String,
    claims: Option<Json>,
    claims_cbor: Option<Vec<u8>>,
    cose: Option<Vec<u8>>,
    compressed: Option<Vec<u8>>,
    text: String,
    trust: Vec<TrustedKey>,
    clock: i64,
    /// `None` = valid.
    fails_at: Option<Stage>,
    voucher_id: Option<VoucherId>,
}

fn case(name: &str, description: &str, fails_at: Option<Stage>) -> Case {
    Case {
        name: name.into(),
        description: description.into(),
        claims: None,
        claims_cbor: None,
        cose: None,
        compressed: None,
        text: String::new(),
        trust: vec![key("issuer-a").trusted()],
        clock: CLOCK,
        fails_at,
        voucher_id: None,
    }
}

impl Case {
    fn voucher(mut self, v: &Voucher) -> Self {
        self.claims = Some(serde_json::to_value(v).unwrap());
        self.claims_cbor = Some(claims_bytes(v));
        self.voucher_id = Some(v.id);
        self
    }
    fn payload(mut self, p: Vec<u8>) -> Self {
        self.claims_cbor = Some(p);
        self
    }
    /// Sign the payload with protected {alg: EdDSA, kid} of `k`, and wrap.
    fn signed(self, k: &IssuerKey) -> Self {
        let p = self.claims_cbor.clone().unwrap();
        let cose = sign(protected(k), Header::default(), p, k);
        self.cose(cose, Wrap::Zlib)
    }
    fn cose(mut self, cose: Vec<u8>, wrap: Wrap) -> Self {
        let body = match wrap {
            Wrap::Zlib => {
                let c = text::compress(&cose);
                self.compressed = Some(c.clone());
                c
            }
            Wrap::Raw => cose.clone(),
        };
        self.cose = Some(cose);
        self.text = format!("EV1:{}", text::base45_encode(&body));
        self
    }
    fn text(mut self, t: String) -> Self {
        self.text = t;
        self
    }
    fn trust(mut self, t: Vec<TrustedKey>) -> Self {
        self.trust = t;
        self
    }
    fn clock(mut self, c: i64) -> Self {
        self.clock = c;
        self
    }

    fn to_json(&self) -> Json {
        let stages = expected_flags(&Stage::ALL, self.fails_at);
        let png = if self.text.len() <= 2000 {
            qr::png(&self.text, 4)
                .ok()
                .map(|p| base64::engine::general_purpose::STANDARD.encode(p))
        } else {
            None
        };
        json!({
            "name": self.name,
            "description": self.description,
            "context": {
                "jwks": jwks(&self.trust),
                "clock": self.clock,
                "clock_rfc3339": rfc3339(self.clock),
            },
            "stages": {
                "claims": self.claims,
                "claims_cbor_hex": self.claims_cbor.as_ref().map(hex::encode),
                "claims_cbor_diag": self.claims_cbor.as_deref().and_then(diag_bytes),
                "cose_hex": self.cose.as_ref().map(hex::encode),
                "cose_diag": self.cose.as_deref().and_then(diag_bytes),
                "compressed_hex": self.compressed.as_ref().map(hex::encode),
                "text": self.text,
                "qr_png_b64": png,
            },
            "expected": {
                "valid": self.fails_at.is_none(),
                "failed_stage": self.fails_at.map(|s| s.as_str()),
                "voucher_id": if self.fails_at.is_none() { self.voucher_id.map(|i| i.to_hex()) } else { None },
                "stages": stages,
            },
        })
    }
}

/// The expected flag of each stage for a case that fails at `fails_at` (None: valid): passed
/// before it, failed at it, not reached after it. Written out here, not taken from the
/// verifier under test.
pub fn expected_flags(stages: &[Stage], fails_at: Option<Stage>) -> serde_json::Map<String, Json> {
    stages
        .iter()
        .map(|&s| {
            let flag = match fails_at {
                None => Some(true),
                Some(f) if s < f => Some(true),
                Some(f) if s == f => Some(false),
                Some(_) => None,
            };
            (s.as_str().to_owned(), json!(flag))
        })
        .collect()
}

pub fn rfc3339(t: i64) -> String {
    // Days-from-civil inverse (Howard Hinnant), enough for fixed test clocks.
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Every case, in a fixed order: (file stem, JSON).
pub fn generate() -> Vec<(String, Json)> {
    let a = key("issuer-a");
    let b = key("issuer-b");
    let other = key("not-trusted");
    let cash = base().value(2_500, "KES").id(id(1)).build().unwrap();
    let mut cases: Vec<Case> = Vec::new();

    // ---- valid ----
    cases.push(
        case(
            "valid-cash-single",
            "Cash voucher, single use: 25.00 KES.",
            None,
        )
        .voucher(&cash)
        .signed(&a),
    );
    let inkind = base()
        .item("RICE", 10, Some("kg"))
        .item("OIL", 2, Some("l"))
        .id(id(2))
        .build()
        .unwrap();
    cases.push(
        case(
            "valid-inkind-single",
            "In-kind voucher, single use: 10 kg rice and 2 l oil.",
            None,
        )
        .voucher(&inkind)
        .signed(&a),
    );
    let partial = base()
        .value(10_000, "KES")
        .partial()
        .id(id(3))
        .build()
        .unwrap();
    cases.push(
        case(
            "valid-cash-partial",
            "Cash voucher drawn down over several visits.",
            None,
        )
        .voucher(&partial)
        .signed(&a),
    );
    let full = base()
        .value(5_000, "KES")
        .item("SOAP", 3, None)
        .partial()
        .audience("SP-0042")
        .cycle("2026-06")
        .category("grocery")
        .category("pharmacy")
        .times(IAT, Some(IAT + 86_400), EXP)
        .id(id(4))
        .build()
        .unwrap();
    cases.push(
        case(
            "valid-full",
            "Every optional claim: aud, nbf, cycle, value and items, partial, categories.",
            None,
        )
        .voucher(&full)
        .signed(&a),
    );
    let t = cases[0].text.clone();
    cases.push(
        case(
            "valid-lowercase-prefix",
            "The prefix in lower case is accepted.",
            None,
        )
        .voucher(&cash)
        .signed(&a)
        .text(t.replacen("EV1:", "ev1:", 1)),
    );
    let cose = sign(protected(&a), Header::default(), claims_bytes(&cash), &a);
    cases.push(
        case(
            "valid-uncompressed",
            "Body is the COSE_Sign1 itself, not zlib-compressed (first byte 0xD2).",
            None,
        )
        .voucher(&cash)
        .cose(cose.clone(), Wrap::Raw),
    );
    let untagged = CoseSign1::from_tagged_slice(&cose)
        .unwrap()
        .to_vec()
        .unwrap();
    cases.push(
        case(
            "valid-untagged",
            "COSE_Sign1 without tag 18 (first byte 0x84) is accepted.",
            None,
        )
        .voucher(&cash)
        .cose(untagged, Wrap::Zlib),
    );
    let mut c = cash.to_claims();
    c.rest.push((
        ClaimName::PrivateUse(-65538),
        Value::Text("future claim".into()),
    ));
    edit_private(&mut c, |m| {
        m.push((Value::Integer(99.into()), Value::Bool(true)))
    });
    cases.push(
        case(
            "valid-unknown-claims",
            "Unknown CWT claims and unknown voucher keys are ignored (forward compatible).",
            None,
        )
        .voucher(&cash)
        .payload(c.to_vec().unwrap())
        .signed(&a),
    );
    let rot = base().value(2_500, "KES").id(id(5)).build().unwrap();
    cases.push(
        case(
            "valid-second-key",
            "Trust store holds two keys; the voucher is signed by the second (key rotation).",
            None,
        )
        .voucher(&rot)
        .signed(&b)
        .trust(vec![a.trusted(), b.trusted()]),
    );
    cases.push(
        case(
            "valid-last-second",
            "Clock one second before exp: still valid.",
            None,
        )
        .voucher(&cash)
        .signed(&a)
        .clock(EXP - 1),
    );

    // ---- input, prefix, base45 ----
    cases.push(
        case(
            "input-too-large",
            "A text over 4096 bytes is refused before decoding.",
            Some(Stage::Input),
        )
        .text(format!("EV1:{}", "0".repeat(4093))),
    );
    cases.push(
        case("prefix-missing", "No EV1: prefix.", Some(Stage::Prefix))
            .voucher(&cash)
            .signed(&a)
            .text(t.replacen("EV1:", "", 1)),
    );
    cases.push(
        case(
            "prefix-other",
            "Another scheme's prefix (HC1:).",
            Some(Stage::Prefix),
        )
        .text(t.replacen("EV1:", "HC1:", 1)),
    );
    cases.push(
        case(
            "base45-bad-char",
            "A character outside the Base45 alphabet (lower case).",
            Some(Stage::Base45),
        )
        .text(format!("{}a", &t[..t.len() - 1])),
    );
    let len_bad = format!("{}0", t);
    let len_bad = if (len_bad.len() - 4) % 3 == 1 {
        len_bad
    } else if (len_bad.len() - 3) % 3 == 1 {
        format!("{t}00")
    } else {
        format!("{t}000")
    };
    cases.push(
        case(
            "base45-bad-length",
            "Body length is 1 mod 3.",
            Some(Stage::Base45),
        )
        .text(len_bad),
    );
    cases.push(
        case(
            "base45-pair-over-255",
            "Final two-character group decodes to more than 255.",
            Some(Stage::Base45),
        )
        .text("EV1:000::".into()),
    );
    cases.push(
        case(
            "base45-triple-over-65535",
            "A three-character group decodes to more than 65535.",
            Some(Stage::Base45),
        )
        .text("EV1:::::::".into()),
    );

    // ---- zlib ----
    let mut z = text::compress(&cose);
    let mid = z.len() / 2;
    z[mid] ^= 0x55;
    cases.push(
        case(
            "zlib-corrupt",
            "A byte flipped inside the zlib stream.",
            Some(Stage::Zlib),
        )
        .text(format!("EV1:{}", text::base45_encode(&z))),
    );
    let mut z = text::compress(&cose);
    z.truncate(z.len() - 6);
    cases.push(
        case(
            "zlib-truncated",
            "The zlib stream cut short.",
            Some(Stage::Zlib),
        )
        .text(format!("EV1:{}", text::base45_encode(&z))),
    );
    let mut z = text::compress(&cose);
    z.extend_from_slice(b"\x00\x01");
    cases.push(
        case(
            "zlib-trailing",
            "Two bytes after the end of the zlib stream.",
            Some(Stage::Zlib),
        )
        .text(format!("EV1:{}", text::base45_encode(&z))),
    );

    // ---- COSE structure ----
    let mut doubled = vec![0xD2];
    doubled.extend_from_slice(&cose);
    cases.push(
        case(
            "cose-doubled-tag",
            "Tag 18 written twice.",
            Some(Stage::Cose),
        )
        .cose(doubled, Wrap::Zlib),
    );
    let mut other_tag = vec![0xD9, 0x03, 0xE6];
    other_tag.extend_from_slice(&cose[1..]);
    cases.push(
        case(
            "cose-wrong-tag",
            "Tag 998 instead of 18.",
            Some(Stage::Cose),
        )
        .cose(other_tag, Wrap::Zlib),
    );
    let mut trailing = cose.clone();
    trailing.push(0x00);
    cases.push(
        case(
            "cose-trailing",
            "A byte after the COSE_Sign1.",
            Some(Stage::Cose),
        )
        .cose(trailing, Wrap::Zlib),
    );
    let mut s = CoseSign1::from_tagged_slice(&cose).unwrap();
    s.payload = None;
    cases.push(
        case(
            "cose-detached",
            "Detached payload (nil).",
            Some(Stage::Cose),
        )
        .cose(s.to_tagged_vec().unwrap(), Wrap::Zlib),
    );
    cases.push(
        case(
            "cose-not-sign1",
            "A CBOR array of three, not four.",
            Some(Stage::Cose),
        )
        .cose(vec![0xD2, 0x83, 0x40, 0xA0, 0x40], Wrap::Zlib),
    );
    cases.push(
        case(
            "cose-not-cbor",
            "The body is not CBOR at all.",
            Some(Stage::Cose),
        )
        .cose(b"\xD2\xff\xff".to_vec(), Wrap::Zlib),
    );
    let mut p = protected(&a);
    p.crit.push(coset::RegisteredLabelWithPrivate::Text(
        "x-must-understand".into(),
    ));
    p.rest.push((
        coset::Label::Text("x-must-understand".into()),
        Value::Bool(true),
    ));
    cases.push(
        case(
            "cose-crit",
            "A critical header this version does not understand.",
            Some(Stage::Cose),
        )
        .voucher(&cash)
        .cose(
            sign(p, Header::default(), claims_bytes(&cash), &a),
            Wrap::Zlib,
        ),
    );

    // ---- alg ----
    let p = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES256)
        .key_id(a.kid().0.to_vec())
        .build();
    cases.push(
        case(
            "alg-es256",
            "alg ES256 (-7) in the protected header.",
            Some(Stage::Alg),
        )
        .voucher(&cash)
        .cose(
            sign(p, Header::default(), claims_bytes(&cash), &a),
            Wrap::Zlib,
        ),
    );
    let p = HeaderBuilder::new().key_id(a.kid().0.to_vec()).build();
    cases.push(
        case("alg-missing", "No alg anywhere.", Some(Stage::Alg))
            .voucher(&cash)
            .cose(
                sign(p, Header::default(), claims_bytes(&cash), &a),
                Wrap::Zlib,
            ),
    );
    let p = HeaderBuilder::new().key_id(a.kid().0.to_vec()).build();
    let u = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .build();
    cases.push(
        case(
            "alg-unprotected",
            "alg only in the unprotected header.",
            Some(Stage::Alg),
        )
        .voucher(&cash)
        .cose(sign(p, u, claims_bytes(&cash), &a), Wrap::Zlib),
    );

    // ---- kid ----
    let p = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .build();
    cases.push(
        case("kid-missing", "No kid anywhere.", Some(Stage::Kid))
            .voucher(&cash)
            .cose(
                sign(p, Header::default(), claims_bytes(&cash), &a),
                Wrap::Zlib,
            ),
    );
    let p = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .build();
    let u = HeaderBuilder::new().key_id(a.kid().0.to_vec()).build();
    cases.push(
        case(
            "kid-unprotected",
            "kid only in the unprotected header.",
            Some(Stage::Kid),
        )
        .voucher(&cash)
        .cose(sign(p, u, claims_bytes(&cash), &a), Wrap::Zlib),
    );
    cases.push(
        case(
            "kid-unknown",
            "Signed by a key that is not in the trust store.",
            Some(Stage::Kid),
        )
        .voucher(&cash)
        .signed(&other),
    );

    // ---- signature ----
    let mut s = CoseSign1::from_tagged_slice(&cose).unwrap();
    let mut tampered = cash.clone();
    tampered.value = Some(evoucher_core::voucher::Amount {
        amount: 250_000,
        currency: "KES".into(),
    });
    s.payload = Some(claims_bytes(&tampered));
    cases.push(
        case(
            "signature-tampered-payload",
            "Amount raised from 2500 to 250000 after signing.",
            Some(Stage::Signature),
        )
        .voucher(&tampered)
        .cose(s.to_tagged_vec().unwrap(), Wrap::Zlib),
    );
    cases.push(
        case(
            "signature-wrong-key",
            "Protected kid names a trusted key but another key signed.",
            Some(Stage::Signature),
        )
        .voucher(&cash)
        .cose(
            sign(
                protected(&a),
                Header::default(),
                claims_bytes(&cash),
                &other,
            ),
            Wrap::Zlib,
        ),
    );
    let mut s = CoseSign1::from_tagged_slice(&cose).unwrap();
    s.signature = add_l_to_s(&s.signature);
    cases.push(
        case(
            "signature-malleable-s",
            "S replaced by S + L: a malleable signature that lax verifiers accept.",
            Some(Stage::Signature),
        )
        .voucher(&cash)
        .cose(s.to_tagged_vec().unwrap(), Wrap::Zlib),
    );
    let mut s = CoseSign1::from_tagged_slice(&cose).unwrap();
    s.signature.truncate(63);
    cases.push(
        case(
            "signature-short",
            "A 63-byte signature.",
            Some(Stage::Signature),
        )
        .voucher(&cash)
        .cose(s.to_tagged_vec().unwrap(), Wrap::Zlib),
    );

    // ---- claims ----
    let mut p = claims_bytes(&cash);
    p.push(0x00);
    cases.push(
        case(
            "claims-trailing",
            "A byte after the claims map (signed).",
            Some(Stage::Claims),
        )
        .payload(p)
        .signed(&a),
    );
    cases.push(
        case(
            "claims-not-map",
            "Payload is a CBOR text, not a map.",
            Some(Stage::Claims),
        )
        .payload(b"\x63abc".to_vec())
        .signed(&a),
    );
    let mut c = cash.to_claims();
    c.cwt_id = None;
    cases.push(
        case("claims-missing-cti", "No cti.", Some(Stage::Claims))
            .payload(c.to_vec().unwrap())
            .signed(&a),
    );
    let mut c = cash.to_claims();
    c.cwt_id = Some(vec![1; 8]);
    cases.push(
        case(
            "claims-cti-8-bytes",
            "cti of 8 bytes instead of 16.",
            Some(Stage::Claims),
        )
        .payload(c.to_vec().unwrap())
        .signed(&a),
    );
    let mut c = cash.to_claims();
    c.expiration_time = None;
    cases.push(
        case("claims-missing-exp", "No exp.", Some(Stage::Claims))
            .payload(c.to_vec().unwrap())
            .signed(&a),
    );
    let mut c = cash.to_claims();
    c.expiration_time = Some(Timestamp::FractionalSeconds(EXP as f64 + 0.5));
    cases.push(
        case(
            "claims-fractional-exp",
            "exp as a float: integer seconds are required.",
            Some(Stage::Claims),
        )
        .payload(c.to_vec().unwrap())
        .signed(&a),
    );
    let mut c = cash.to_claims();
    edit_private(&mut c, |m| m[0].1 = Value::Integer(2.into()));
    cases.push(
        case(
            "claims-version-2",
            "Voucher map version 2.",
            Some(Stage::Claims),
        )
        .payload(c.to_vec().unwrap())
        .signed(&a),
    );
    let mut c = cash.to_claims();
    edit_private(&mut c, |m| {
        m.retain(|(k, _)| *k != Value::Integer(5.into()))
    });
    cases.push(
        case(
            "claims-no-entitlement",
            "Neither value nor items.",
            Some(Stage::Claims),
        )
        .payload(c.to_vec().unwrap())
        .signed(&a),
    );
    let mut c = cash.to_claims();
    edit_private(&mut c, |m| {
        let v = m
            .iter()
            .find(|(k, _)| *k == Value::Integer(5.into()))
            .unwrap()
            .clone();
        m.push((
            v.0,
            Value::Map(vec![
                (Value::Integer(1.into()), Value::Integer(999_999.into())),
                (Value::Integer(2.into()), Value::Text("KES".into())),
            ]),
        ));
    });
    cases.push(
        case(
            "claims-duplicate-key",
            "The value key appears twice in the voucher map.",
            Some(Stage::Claims),
        )
        .payload(c.to_vec().unwrap())
        .signed(&a),
    );
    let mut c = cash.to_claims();
    edit_private(&mut c, |m| {
        for (k, v) in m.iter_mut() {
            if *k == Value::Integer(5.into()) {
                *v = Value::Map(vec![
                    (Value::Integer(1.into()), Value::Integer((-5).into())),
                    (Value::Integer(2.into()), Value::Text("KES".into())),
                ]);
            }
        }
    });
    cases.push(
        case(
            "claims-negative-amount",
            "A negative amount.",
            Some(Stage::Claims),
        )
        .payload(c.to_vec().unwrap())
        .signed(&a),
    );
    let mut c = cash.to_claims();
    edit_private(&mut c, |m| {
        for (k, v) in m.iter_mut() {
            if *k == Value::Integer(5.into()) {
                *v = Value::Map(vec![
                    (
                        Value::Integer(1.into()),
                        Value::Integer((i64::MAX as u64 + 1).into()),
                    ),
                    (Value::Integer(2.into()), Value::Text("KES".into())),
                ]);
            }
        }
    });
    cases.push(
        case(
            "claims-amount-over-i64",
            "An amount of 2^63 minor units: over the largest a voucher carries (2^63 - 1), so that it fits a signed 64-bit integer wherever it is stored.",
            Some(Stage::Claims),
        )
        .payload(c.to_vec().unwrap())
        .signed(&a),
    );
    let mut c = cash.to_claims();
    c.issuer = None;
    cases.push(
        case("claims-missing-iss", "No iss.", Some(Stage::Claims))
            .payload(c.to_vec().unwrap())
            .signed(&a),
    );
    let mut restricted = a.trusted();
    restricted.iss = Some("https://other.example.org".into());
    cases.push(
        case(
            "claims-issuer-mismatch",
            "The trust store binds the key to another issuer.",
            Some(Stage::Claims),
        )
        .voucher(&cash)
        .signed(&a)
        .trust(vec![restricted]),
    );
    let mut retired = a.trusted();
    retired.exp = Some(IAT - 86_400);
    cases.push(
        case(
            "claims-key-retired-before-issue",
            "The voucher was issued after its key's validity ended.",
            Some(Stage::Claims),
        )
        .voucher(&cash)
        .signed(&a)
        .trust(vec![retired]),
    );

    // ---- time ----
    cases.push(
        case(
            "not-yet-valid",
            "Clock one second before nbf.",
            Some(Stage::NotYetValid),
        )
        .voucher(&full)
        .signed(&a)
        .clock(IAT + 86_400 - 1),
    );
    cases.push(
        case("expired", "Clock exactly at exp.", Some(Stage::Expired))
            .voucher(&cash)
            .signed(&a)
            .clock(EXP),
    );

    cases
        .iter()
        .map(|c| (c.name.clone(), c.to_json()))
        .collect()
}

/// S + L (little-endian), the classic Ed25519 malleability.
fn add_l_to_s(sig: &[u8]) -> Vec<u8> {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut out = sig.to_vec();
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(out[32 + i]) + u16::from(L[i]) + carry;
        out[32 + i] = v as u8;
        carry = v >> 8;
    }
    out
}

/// The test keys as private JWKs (test-only keys, published on purpose).
pub fn keys_json() -> Json {
    json!({
        "_comment": "TEST KEYS ONLY. Published so that other implementations can regenerate the vectors. Never trust them in production.",
        "issuer-a": key("issuer-a").private_jwk(),
        "issuer-b": key("issuer-b").private_jwk(),
        "not-trusted": key("not-trusted").private_jwk(),
    })
}

/// Pretty JSON with a trailing newline, as written to disk.
pub fn to_file_text(v: &Json) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s
}
