//! Keys and trust stores: files, modes, JWK checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use evoucher_core::error::KeyError;
use evoucher_core::keys::{IssuerKey, Kid};
use evoucher_core::TrustStore;

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("evoucher-keys-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn private_key_file_is_0600_and_never_overwritten() {
    use std::os::unix::fs::PermissionsExt;
    let d = tmp("mode");
    let p = d.join("issuer.jwk");
    let k = IssuerKey::generate().unwrap();
    k.write_new(&p).unwrap();
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let before = std::fs::read(&p).unwrap();
    let other = IssuerKey::generate().unwrap();
    assert!(matches!(other.write_new(&p), Err(KeyError::Exists(_))));
    assert_eq!(std::fs::read(&p).unwrap(), before, "file changed");
    let back = IssuerKey::read(&p).unwrap();
    assert_eq!(back.kid(), k.kid());
}

#[test]
fn kid_is_first_8_bytes_of_sha256_of_public_key() {
    use sha2::Digest;
    let k = IssuerKey::from_seed([1; 32]);
    let h = sha2::Sha256::digest(k.verifying_key().as_bytes());
    assert_eq!(k.kid().0.as_slice(), &h[..8]);
    assert_eq!(Kid::of(k.verifying_key().as_bytes()), k.kid());
}

#[test]
fn trust_store_refuses_bad_keys() {
    let k = IssuerKey::from_seed([2; 32]);
    let public = serde_json::to_value(k.public_jwk()).unwrap();
    let ok = serde_json::json!({"keys": [public.clone()]}).to_string();
    assert_eq!(TrustStore::from_jwks_json(&ok).unwrap().len(), 1);

    let private = serde_json::json!({"keys": [k.private_jwk()]}).to_string();
    assert!(matches!(
        TrustStore::from_jwks_json(&private),
        Err(KeyError::PrivateInTrustStore)
    ));

    let mut wrong_kid = public.clone();
    wrong_kid["kid"] = "AAAAAAAAAAA".into();
    let s = serde_json::json!({"keys": [wrong_kid]}).to_string();
    assert!(matches!(
        TrustStore::from_jwks_json(&s),
        Err(KeyError::KidMismatch { .. })
    ));

    let dup = serde_json::json!({"keys": [public.clone(), public.clone()]}).to_string();
    assert!(matches!(
        TrustStore::from_jwks_json(&dup),
        Err(KeyError::DuplicateKid(_))
    ));

    // The identity point has small order: refused.
    let mut weak = public.clone();
    weak["x"] = "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
    weak.as_object_mut().unwrap().remove("kid");
    let s = serde_json::json!({"keys": [weak]}).to_string();
    assert!(matches!(
        TrustStore::from_jwks_json(&s),
        Err(KeyError::BadPoint)
    ));

    let mut short = public.clone();
    short["x"] = "AQAB".into();
    let s = serde_json::json!({"keys": [short]}).to_string();
    assert!(matches!(
        TrustStore::from_jwks_json(&s),
        Err(KeyError::Member("x"))
    ));

    // Key types evoucher does not use are skipped, not loaded.
    let other = serde_json::json!({"keys": [public, {"kty": "oct", "k": "AQAB"}, {"kty": "EC", "crv": "P-384", "x": "AQAB", "y": "AQAB"}]}).to_string();
    let t = TrustStore::from_jwks_json(&other).unwrap();
    assert_eq!((t.len(), t.skipped()), (1, 2));
    // An RSA key under 2048 bits is refused, not skipped.
    let small = serde_json::json!({"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}]})
        .to_string();
    assert!(matches!(
        TrustStore::from_jwks_json(&small),
        Err(KeyError::Member("n") | KeyError::Unsupported(_))
    ));

    assert!(matches!(
        TrustStore::from_jwks_json("{"),
        Err(KeyError::Json(_))
    ));
}

#[test]
fn debug_output_never_shows_private_key() {
    let k = IssuerKey::from_seed([3; 32]);
    let d = k.private_jwk().d.unwrap();
    assert!(!format!("{k:?}").contains(&d));
    assert!(!format!("{:?}", k.private_jwk()).contains(&d));
}
