//! Deterministic generator for `test-vectors/jwt/`: OpenG2P-shaped JWT vouchers signed with
//! test keys (RSA 2048 from a seeded generator, P-256 from a fixed scalar, PSS salt from a
//! seeded generator). Expected results are written by hand per case.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use evoucher_core::Stage;
use rand_chacha::rand_core::SeedableRng;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use super::vectors::{expected_flags, rfc3339};

pub const RSA_KID: &str = "d95f3fbc-4906-428f-8dce-83ae8b136d72";
pub const EC_KID: &str = "3b1c1f5e-7d0a-4c55-9a56-2f1f0c6e9b10";
pub const OTHER_KID: &str = "00000000-0000-4000-8000-000000000000";
/// 2023-06-22T00:00:00Z and 2023-09-20T00:00:00Z, as in OpenG2P's sample.
pub const IAT: i64 = 1_687_392_000;
pub const EXP: i64 = 1_695_168_000;
pub const CLOCK: i64 = 1_690_000_000;

pub fn rsa_key(label: &str) -> rsa::RsaPrivateKey {
    let seed: [u8; 32] = Sha256::digest(format!("evoucher jwt test rsa {label}")).into();
    rsa::RsaPrivateKey::new(&mut rand_chacha::ChaCha20Rng::from_seed(seed), 2048).unwrap()
}

pub fn ec_key() -> p256::ecdsa::SigningKey {
    let seed: [u8; 32] = Sha256::digest("evoucher jwt test p256").into();
    p256::ecdsa::SigningKey::from_bytes(&seed.into()).unwrap()
}

fn b(x: &[u8]) -> String {
    B64.encode(x)
}

pub fn rsa_jwk(k: &rsa::RsaPrivateKey, kid: &str, private: bool) -> Json {
    let mut j = json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
        "n": b(&k.n().to_bytes_be()), "e": b(&k.e().to_bytes_be()), "currency": "PHP"});
    if private {
        j["d"] = b(&k.d().to_bytes_be()).into();
        j["p"] = b(&k.primes()[0].to_bytes_be()).into();
        j["q"] = b(&k.primes()[1].to_bytes_be()).into();
    }
    j
}

pub fn ec_jwk(k: &p256::ecdsa::SigningKey, private: bool) -> Json {
    let p = k.verifying_key().to_encoded_point(false);
    let mut j = json!({"kty": "EC", "crv": "P-256", "kid": EC_KID, "alg": "ES256",
        "x": b(p.x().unwrap()), "y": b(p.y().unwrap()), "currency": "PHP"});
    if private {
        j["d"] = b(&k.to_bytes()).into();
    }
    j
}

fn jwks() -> Json {
    // RSA key without `alg` so that PS256 may use it too.
    let mut r = rsa_jwk(&rsa_key("a"), RSA_KID, false);
    r.as_object_mut().unwrap().remove("alg");
    json!({"keys": [r, ec_jwk(&ec_key(), false)]})
}

/// OpenG2P's claim order and shape, as in the sample voucher.
pub fn claims(amount: &str, kind: &str) -> String {
    format!(
        r#"{{"iss":"https://uat-g2p.example.gov/api/v1/payments","sub":"12","aud":"34","exp":{EXP},"iat":{IAT},"amount":{amount},"type":"{kind}","code":"2-37ec-47d3-a937-5d55","bName":"Acuña, Juan","bAddress":"54355,manila,Metro Manila","spName":"Trent Hospital","docs":["ecb854fe-de60-413d-99d4-6b03b6f1af06-26.png"]}}"#
    )
}

fn header(alg: &str, kid: &str) -> String {
    format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"JWT"}}"#)
}

#[derive(Clone, Copy)]
enum Sig {
    Rs256,
    Ps256,
    Es256,
    Raw(&'static [u8]),
}

fn sign(how: Sig, input: &str, rsa_label: &str) -> Vec<u8> {
    match how {
        Sig::Rs256 => rsa::pkcs1v15::SigningKey::<Sha256>::new(rsa_key(rsa_label))
            .sign(input.as_bytes())
            .to_vec(),
        Sig::Ps256 => {
            let mut rng = rand_chacha::ChaCha20Rng::from_seed([5; 32]);
            rsa::pss::SigningKey::<Sha256>::new(rsa_key(rsa_label))
                .sign_with_rng(&mut rng, input.as_bytes())
                .to_vec()
        }
        Sig::Es256 => {
            let s: p256::ecdsa::Signature = ec_key().sign(input.as_bytes());
            s.to_bytes().to_vec()
        }
        Sig::Raw(b) => b.to_vec(),
    }
}

struct Case {
    name: &'static str,
    description: &'static str,
    header: String,
    claims: String,
    sig: Sig,
    rsa_label: &'static str,
    clock: i64,
    fails_at: Option<Stage>,
    text: Option<String>,
}

fn case(
    name: &'static str,
    description: &'static str,
    alg: &str,
    kid: &str,
    sig: Sig,
    fails_at: Option<Stage>,
) -> Case {
    Case {
        name,
        description,
        header: header(alg, kid),
        claims: claims("\"5000.0\"", "voucher"),
        sig,
        rsa_label: "a",
        clock: CLOCK,
        fails_at,
        text: None,
    }
}

impl Case {
    fn to_json(&self) -> Json {
        let input = format!(
            "{}.{}",
            b(self.header.as_bytes()),
            b(self.claims.as_bytes())
        );
        let sig = sign(self.sig, &input, self.rsa_label);
        let text = self
            .text
            .clone()
            .unwrap_or_else(|| format!("{input}.{}", b(&sig)));
        let stages = expected_flags(&Stage::JWT, self.fails_at);
        let voucher = self.fails_at.is_none().then(|| {
            json!({"id": evoucher_core::jwt::derive_id("https://uat-g2p.example.gov/api/v1/payments", "12", "2-37ec-47d3-a937-5d55").to_hex(),
                   "amount": 500000, "currency": "PHP", "aud": "34", "beneficiary": "12", "name": "Acuña, Juan"})
        });
        json!({
            "name": self.name,
            "description": self.description,
            "context": {"jwks": jwks(), "clock": self.clock, "clock_rfc3339": rfc3339(self.clock)},
            "stages": {"header": self.header, "claims": self.claims, "signing_input": input, "signature_hex": hex::encode(&sig), "text": text},
            "expected": {"valid": self.fails_at.is_none(), "failed_stage": self.fails_at.map(|s| s.as_str()), "voucher": voucher, "stages": stages},
        })
    }
}

pub fn generate() -> Vec<(String, Json)> {
    let mut cs = vec![
        case("valid-rs256", "OpenG2P's shape, RS256, amount \"5000.0\" in PHP (trust store currency) = 500000 minor units.", "RS256", RSA_KID, Sig::Rs256, None),
        case("valid-ps256", "PS256 (RSASSA-PSS, SHA-256, 32-byte salt) with the same RSA key.", "PS256", RSA_KID, Sig::Ps256, None),
        case("valid-es256", "ES256 with a P-256 key.", "ES256", EC_KID, Sig::Es256, None),
        case("alg-none", "alg none: an unsigned token.", "none", RSA_KID, Sig::Raw(b""), Some(Stage::Alg)),
        case("alg-hs256", "alg HS256: HMAC is refused (a public key must never serve as an HMAC secret).", "HS256", RSA_KID, Sig::Raw(&[7; 32]), Some(Stage::Alg)),
        case("alg-es512", "An algorithm outside RS256, PS256, ES256.", "ES512", EC_KID, Sig::Raw(&[7; 132]), Some(Stage::Alg)),
        case("alg-key-mismatch", "RS256 in the header, but the kid names the P-256 key.", "RS256", EC_KID, Sig::Rs256, Some(Stage::Alg)),
        case("alg-key-mismatch-es", "ES256 in the header, but the kid names the RSA key.", "ES256", RSA_KID, Sig::Es256, Some(Stage::Alg)),
        case("kid-unknown", "A kid that is not in the trust store.", "RS256", OTHER_KID, Sig::Rs256, Some(Stage::Kid)),
        case("signature-wrong-key", "The trusted kid, but signed by another RSA key.", "RS256", RSA_KID, Sig::Rs256, Some(Stage::Signature)),
        case("signature-pss-as-pkcs1", "A PSS signature labelled RS256.", "RS256", RSA_KID, Sig::Ps256, Some(Stage::Signature)),
        case("not-yet-valid", "Clock one second before iat (valid from).", "RS256", RSA_KID, Sig::Rs256, Some(Stage::NotYetValid)),
        case("expired", "Clock at exp.", "RS256", RSA_KID, Sig::Rs256, Some(Stage::Expired)),
    ];
    cs[9].rsa_label = "b";
    cs[11].clock = IAT - 1;
    cs[12].clock = EXP;
    let mut c = case(
        "kid-missing",
        "No kid in the header.",
        "RS256",
        "",
        Sig::Rs256,
        Some(Stage::Kid),
    );
    c.header = r#"{"alg":"RS256","typ":"JWT"}"#.into();
    cs.push(c);
    let mut c = case(
        "jws-crit",
        "A crit header.",
        "RS256",
        RSA_KID,
        Sig::Rs256,
        Some(Stage::Jws),
    );
    c.header = format!(r#"{{"alg":"RS256","kid":"{RSA_KID}","crit":["exp"],"typ":"JWT"}}"#);
    cs.push(c);
    let mut c = case(
        "jws-duplicate-alg",
        "alg given twice in the header.",
        "RS256",
        RSA_KID,
        Sig::Rs256,
        Some(Stage::Jws),
    );
    c.header = format!(r#"{{"alg":"none","alg":"RS256","kid":"{RSA_KID}"}}"#);
    cs.push(c);
    let mut c = case(
        "claims-type",
        "type is not \"voucher\".",
        "RS256",
        RSA_KID,
        Sig::Rs256,
        Some(Stage::Claims),
    );
    c.claims = claims("\"5000.0\"", "payment");
    cs.push(c);
    let mut c = case(
        "claims-amount",
        "amount \"5,000\" is not a decimal.",
        "RS256",
        RSA_KID,
        Sig::Rs256,
        Some(Stage::Claims),
    );
    c.claims = claims("\"5,000\"", "voucher");
    cs.push(c);
    let mut c = case(
        "claims-amount-precision",
        "amount with more decimals than PHP has.",
        "RS256",
        RSA_KID,
        Sig::Rs256,
        Some(Stage::Claims),
    );
    c.claims = claims("\"5000.001\"", "voucher");
    cs.push(c);
    let mut c = case(
        "claims-amount-over-i64",
        "amount \"92233720368547758.08\" PHP = 2^63 minor units, over the largest a voucher carries (2^63 - 1): refused at verify, not later at redeem.",
        "RS256",
        RSA_KID,
        Sig::Rs256,
        Some(Stage::Claims),
    );
    c.claims = claims("\"92233720368547758.08\"", "voucher");
    cs.push(c);
    let mut c = case(
        "claims-duplicate-amount",
        "amount given twice in the claims.",
        "RS256",
        RSA_KID,
        Sig::Rs256,
        Some(Stage::Claims),
    );
    c.claims = claims("\"1.0\",\"amount\":\"5000.0\"", "voucher");
    cs.push(c);
    let mut c = case(
        "claims-missing-exp",
        "No exp.",
        "RS256",
        RSA_KID,
        Sig::Rs256,
        Some(Stage::Claims),
    );
    c.claims = claims("\"5000.0\"", "voucher").replace(&format!("\"exp\":{EXP},"), "");
    cs.push(c);

    // Texts altered after signing.
    let base = cs[0].to_json()["stages"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let parts: Vec<&str> = base.split('.').collect();
    let tampered_claims = claims("\"9000.0\"", "voucher");
    let alter = |name, description, text: String, stage| {
        let mut c = case(name, description, "RS256", RSA_KID, Sig::Rs256, Some(stage));
        c.text = Some(text);
        c
    };
    cs.push(alter(
        "signature-tampered-amount",
        "amount raised after signing.",
        format!(
            "{}.{}.{}",
            parts[0],
            b(tampered_claims.as_bytes()),
            parts[2]
        ),
        Stage::Signature,
    ));
    cs.push(alter(
        "jws-padded",
        "base64url with '=' padding.",
        format!("{}.{}.{}==", parts[0], parts[1], parts[2]),
        Stage::Jws,
    ));
    cs.push(alter(
        "jws-standard-base64",
        "'+' and '/' from standard base64.",
        format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            parts[2].replace('-', "+").replace('_', "/")
        ),
        Stage::Jws,
    ));
    cs.push(alter(
        "jws-four-parts",
        "A fourth part.",
        format!("{base}.eyJ9"),
        Stage::Jws,
    ));
    cs.push(alter(
        "jws-not-json",
        "The header is not JSON.",
        format!("eyJub3QganNvbg.{}.{}", parts[1], parts[2]),
        Stage::Jws,
    ));
    cs.push(alter(
        "input-too-large",
        "Over 4096 bytes.",
        format!("{base}{}", "A".repeat(4000)),
        Stage::Input,
    ));
    cs.iter()
        .map(|c| (c.name.to_owned(), c.to_json()))
        .collect()
}

/// The test keys (private), published on purpose for other implementations.
pub fn keys_json() -> Json {
    json!({
        "_comment": "TEST KEYS ONLY. Never trust them in production.",
        "rsa-a": rsa_jwk(&rsa_key("a"), RSA_KID, true),
        "rsa-b": rsa_jwk(&rsa_key("b"), RSA_KID, true),
        "p256": ec_jwk(&ec_key(), true),
    })
}
