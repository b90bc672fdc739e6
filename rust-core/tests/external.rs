//! Cross-checks against vectors that are not ours, read from `../shared/vectors`:
//! cose-wg/Examples (COSE_Sign1 structure, EdDSA byte for byte) and Wycheproof Ed25519.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use coset::{iana, CoseSign1, HeaderBuilder, RegisteredLabelWithPrivate};
use ed25519_dalek::VerifyingKey;
use evoucher_core::cose::{alg, decode_sign1, sig_structure, sign1_ed25519, verify_ed25519};
use evoucher_core::keys::{ed25519_verify_strict, IssuerKey};
use serde_json::Value;

fn shared() -> PathBuf {
    std::env::var_os("EVOUCHER_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

fn load(rel: &str) -> Value {
    let p = shared().join(rel);
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (shared data must sit beside the repo)",
            p.display()
        )
    });
    serde_json::from_str(&s).unwrap()
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn b64(v: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(v.as_str().unwrap())
        .unwrap()
}

#[test]
fn cose_wg_eddsa_sig_01_byte_for_byte() {
    let v = load("vectors/cose-wg/eddsa-sig-01.json");
    let k = &v["input"]["sign0"]["key"];
    let seed: [u8; 32] = unhex(&k["d_hex"]).try_into().unwrap();
    let key = IssuerKey::from_seed(seed);
    assert_eq!(key.verifying_key().as_bytes().to_vec(), unhex(&k["x_hex"]));
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .content_format(iana::CoapContentFormat::TextPlainUtf8)
        .build();
    let unprotected = HeaderBuilder::new().key_id(b"11".to_vec()).build();
    let payload = v["input"]["plaintext"]
        .as_str()
        .unwrap()
        .as_bytes()
        .to_vec();
    let out = sign1_ed25519(protected, unprotected, payload, b"", &key).unwrap();
    assert_eq!(
        hex::encode_upper(&out),
        v["output"]["cbor"].as_str().unwrap(),
        "COSE_Sign1 bytes"
    );
    let parsed = decode_sign1(&out).unwrap();
    assert_eq!(
        hex::encode_upper(parsed.tbs_data(b"")),
        v["intermediates"]["ToBeSign_hex"].as_str().unwrap(),
        "Sig_structure"
    );
    verify_ed25519(&parsed, &key.verifying_key(), b"").unwrap();
    // The expected bytes, decoded and verified the other way round.
    let expected = unhex(&v["output"]["cbor"]);
    verify_ed25519(&decode_sign1(&expected).unwrap(), &key.verifying_key(), b"").unwrap();
}

/// Verify a parsed COSE_Sign1 with the algorithm its header names: EdDSA through our code,
/// ES256 through p256 (the cose-wg structure cases are ES256). Anything else is refused.
fn verify_any(s: &CoseSign1, key: &Value, aad: &[u8]) -> Result<(), String> {
    use p256::ecdsa::signature::Verifier;
    match alg(s) {
        Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256)) => {
            let mut sec1 = vec![0x04];
            sec1.extend(b64(&key["x"]));
            sec1.extend(b64(&key["y"]));
            let vk =
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|e| e.to_string())?;
            let sig =
                p256::ecdsa::Signature::from_slice(&s.signature).map_err(|e| e.to_string())?;
            vk.verify(&sig_structure(s, aad), &sig)
                .map_err(|e| e.to_string())
        }
        Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::EdDSA)) => {
            let vk = VerifyingKey::from_bytes(&b64(&key["x"]).try_into().unwrap()).unwrap();
            verify_ed25519(s, &vk, aad).map_err(|e| e.to_string())
        }
        other => Err(format!("algorithm refused: {other:?}")),
    }
}

fn run_cose_wg(name: &str) -> Result<(), String> {
    let v = load(&format!("vectors/cose-wg/{name}.json"));
    let bytes = unhex(&v["output"]["cbor"]);
    let aad = v["input"]["sign0"]["external"]
        .as_str()
        .map(|h| hex::decode(h).unwrap())
        .unwrap_or_default();
    let s = decode_sign1(&bytes).map_err(|e| e.to_string())?;
    verify_any(&s, &v["input"]["sign0"]["key"], &aad)
}

#[test]
fn cose_wg_pass_cases_verify() {
    for n in ["sign-pass-01", "sign-pass-02", "sign-pass-03"] {
        run_cose_wg(n).unwrap_or_else(|e| panic!("{n}: {e}"));
    }
}

#[test]
fn cose_wg_fail_cases_are_refused() {
    let dir = shared().join("vectors/cose-wg");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name
            .strip_prefix("sign-fail-")
            .and_then(|s| s.strip_suffix(".json"))
        {
            let r = run_cose_wg(&format!("sign-fail-{stem}"));
            assert!(r.is_err(), "sign-fail-{stem} was accepted");
            n += 1;
        }
    }
    assert!(n >= 6, "expected the cose-wg fail cases, found {n}");
}

#[test]
fn wycheproof_ed25519_agrees_on_every_case() {
    let v = load("vectors/wycheproof-ed25519_test.json");
    let (mut total, mut valid) = (0, 0);
    for g in v["testGroups"].as_array().unwrap() {
        let pk = unhex(&g["publicKey"]["pk"]);
        let key = <[u8; 32]>::try_from(pk.as_slice())
            .ok()
            .and_then(|b| VerifyingKey::from_bytes(&b).ok());
        for t in g["tests"].as_array().unwrap() {
            let ours = key
                .as_ref()
                .is_some_and(|k| ed25519_verify_strict(k, &unhex(&t["msg"]), &unhex(&t["sig"])));
            let expected = match t["result"].as_str().unwrap() {
                "valid" => true,
                "invalid" => false,
                other => panic!("tcId {}: unexpected result {other}", t["tcId"]),
            };
            assert_eq!(ours, expected, "tcId {} ({})", t["tcId"], t["comment"]);
            total += 1;
            valid += usize::from(expected);
        }
    }
    assert!(total > 100 && valid > 50, "{total} cases, {valid} valid");
}

#[test]
fn wycheproof_rsa_pkcs1_2048_sha256_agrees_on_every_case() {
    use evoucher_core::jwt::{verify_signature, JwsAlg, JwtKey};
    let v = load("vectors/wycheproof-rsa_signature_2048_sha256_test.json");
    let (mut total, mut valid) = (0, 0);
    for g in v["testGroups"].as_array().unwrap() {
        let jwk: evoucher_core::keys::Jwk = serde_json::from_value(g["keyJwk"].clone()).unwrap();
        let key = JwtKey::from_jwk(&jwk).unwrap();
        for t in g["tests"].as_array().unwrap() {
            let ours = verify_signature(
                JwsAlg::Rs256,
                &key.kind,
                &unhex(&t["msg"]),
                &unhex(&t["sig"]),
            );
            match t["result"].as_str().unwrap() {
                "valid" => assert!(ours, "tcId {} valid but refused", t["tcId"]),
                "invalid" => assert!(
                    !ours,
                    "tcId {} ({}) invalid but accepted",
                    t["tcId"], t["comment"]
                ),
                // "acceptable" (a DigestInfo without the NULL parameter): either answer is right.
                _ => {}
            }
            total += 1;
            valid += usize::from(ours);
        }
    }
    assert!(total > 200 && valid >= 9, "{total} cases, {valid} accepted");
}

#[test]
fn wycheproof_ecdsa_p256_sha256_agrees_on_every_case() {
    use evoucher_core::jwt::{verify_signature, JwsAlg, JwtKeyKind};
    let v = load("vectors/wycheproof-ecdsa_secp256r1_sha256_test.json");
    let (mut total, mut valid) = (0, 0);
    for g in v["testGroups"].as_array().unwrap() {
        let key =
            p256::ecdsa::VerifyingKey::from_sec1_bytes(&unhex(&g["publicKey"]["uncompressed"]));
        for t in g["tests"].as_array().unwrap() {
            // Wycheproof gives DER; a JWS carries r‖s. Strict DER decoding, then our check.
            let ours = match (&key, p256::ecdsa::Signature::from_der(&unhex(&t["sig"]))) {
                (Ok(k), Ok(sig)) => verify_signature(
                    JwsAlg::Es256,
                    &JwtKeyKind::P256(*k),
                    &unhex(&t["msg"]),
                    &sig.to_bytes(),
                ),
                _ => false,
            };
            let expected = t["result"].as_str().unwrap() == "valid";
            assert_eq!(ours, expected, "tcId {} ({})", t["tcId"], t["comment"]);
            total += 1;
            valid += usize::from(expected);
        }
    }
    assert!(total > 400 && valid > 100, "{total} cases, {valid} valid");
}
