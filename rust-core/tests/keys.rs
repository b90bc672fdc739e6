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

/// RFC 7517 §5: keys a store cannot use are skipped with a reason; the store is refused only
/// when no usable key remains, or when it holds a private key (a leak).
#[test]
fn trust_store_skips_unusable_keys_with_their_reason() {
    let k = IssuerKey::from_seed([2; 32]);
    let public = serde_json::to_value(k.public_jwk()).unwrap();
    let ok = serde_json::json!({"keys": [public.clone()]}).to_string();
    let t = TrustStore::from_jwks_json(&ok).unwrap();
    assert_eq!((t.len(), t.skipped().len()), (1, 0));

    let private = serde_json::json!({"keys": [k.private_jwk()]}).to_string();
    assert!(matches!(
        TrustStore::from_jwks_json(&private),
        Err(KeyError::PrivateInTrustStore)
    ));
    // A private key anywhere refuses the whole store, even beside usable keys.
    let private =
        serde_json::json!({"keys": [public.clone(), IssuerKey::from_seed([9; 32]).private_jwk()]})
            .to_string();
    assert!(matches!(
        TrustStore::from_jwks_json(&private),
        Err(KeyError::PrivateInTrustStore)
    ));

    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = serde_json::to_value(IssuerKey::from_seed([4; 32]).public_jwk()).unwrap();
        f(&mut v);
        v
    };
    // (key, words the reason must hold)
    let unusable: Vec<(serde_json::Value, &str)> = vec![
        (with(&|v| v["use"] = "enc".into()), "use is \"enc\""),
        (
            with(&|v| v["key_ops"] = serde_json::json!(["encrypt"])),
            "key_ops",
        ),
        (with(&|v| v["alg"] = "ES256".into()), "alg \"ES256\""),
        (
            with(&|v| v["kid"] = "AAAAAAAAAAA".into()),
            "kid does not match",
        ),
        (
            with(&|v| {
                v["x"] = "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
                v.as_object_mut().unwrap().remove("kid");
            }),
            "small order",
        ),
        (with(&|v| v["x"] = "AQAB".into()), "`x`"),
        (
            serde_json::json!({"kty": "oct", "kid": "hmac", "k": "AQAB"}),
            "key type oct",
        ),
        (
            serde_json::json!({"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AQAB", "y": "AQAB"}),
            "P-384",
        ),
        (
            // A 1,024-bit modulus (2^1023 + 1).
            serde_json::json!({"kty": "RSA", "kid": "rsa-1024", "n": "gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE", "e": "AQAB"}),
            "RSA key of 1024 bits",
        ),
        (
            serde_json::json!({"kty": "RSA", "kid": "no-n", "e": "AQAB"}),
            "`n`",
        ),
        (public.clone(), "same kid"),
    ];
    let mut keys = vec![public.clone()];
    keys.extend(unusable.iter().map(|(k, _)| k.clone()));
    let t = TrustStore::from_jwks_json(&serde_json::json!({ "keys": keys }).to_string()).unwrap();
    assert_eq!(t.len(), 1, "only the good key is loaded");
    assert_eq!(t.skipped().len(), unusable.len());
    for (skipped, (_, words)) in t.skipped().iter().zip(&unusable) {
        assert!(
            skipped.reason.contains(words),
            "{:?}: {:?} should say {words:?}",
            skipped.kid,
            skipped.reason
        );
    }
    // Every one alone: no usable key remains, so the store is refused, naming the reason.
    for (key, words) in &unusable[..unusable.len() - 1] {
        let s = serde_json::json!({ "keys": [key] }).to_string();
        match TrustStore::from_jwks_json(&s) {
            Err(KeyError::NoUsableKey(why)) => assert!(why.contains(words), "{why}"),
            other => panic!("{words}: {other:?}"),
        }
    }
    // An empty set is an empty store (a new program server has no keys yet).
    assert!(TrustStore::from_jwks_json(r#"{"keys": []}"#)
        .unwrap()
        .is_empty());
    assert!(matches!(
        TrustStore::from_jwks_json("{"),
        Err(KeyError::Json(_))
    ));
}

/// A voucher signed by a key the store skipped is refused at the `kid` stage with the reason
/// the key is not trusted.
#[test]
fn a_voucher_signed_by_a_skipped_key_names_why() {
    use evoucher_core::voucher::{VoucherBuilder, VoucherId};
    let good = IssuerKey::from_seed([5; 32]);
    let bad = IssuerKey::from_seed([6; 32]);
    let mut enc = serde_json::to_value(bad.public_jwk()).unwrap();
    enc["use"] = "enc".into();
    let jwks = serde_json::json!({"keys": [good.public_jwk(), enc]}).to_string();
    let t = TrustStore::from_jwks_json(&jwks).unwrap();
    let v = VoucherBuilder::new("https://p.example", "p", "b")
        .value(100, "KES")
        .validity(1_000, 2_000_000_000)
        .id(VoucherId([3; 16]))
        .build()
        .unwrap();
    let text = evoucher_core::encode::encode(&v, &bad).unwrap().text;
    let err = evoucher_core::verify(&text, &t, 1_500).unwrap_err();
    assert_eq!(err.stage(), evoucher_core::Stage::Kid);
    let msg = err.to_string();
    assert!(msg.contains(&bad.kid().to_b64()), "{msg}");
    assert!(msg.contains("not trusted") && msg.contains("enc"), "{msg}");
    let ok = evoucher_core::encode::encode(&v, &good).unwrap().text;
    assert!(evoucher_core::verify(&ok, &t, 1_500).is_ok());
}

#[test]
fn debug_output_never_shows_private_key() {
    let k = IssuerKey::from_seed([3; 32]);
    let d = k.private_jwk().d.unwrap();
    assert!(!format!("{k:?}").contains(&d));
    assert!(!format!("{:?}", k.private_jwk()).contains(&d));
}
