//! Runs every file in `test-vectors/vouchers/` and checks that regenerating them gives the same
//! bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use evoucher_core::verify::{decode, stage_flags, verify};
use evoucher_core::{text, TrustStore};
use serde_json::Value;
use support::vectors;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../test-vectors/vouchers")
}

/// Every JSON file of a `test-vectors/` folder, by stem, sorted.
fn json_files(sub: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir().join("..").join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p.file_stem().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn files() -> Vec<(String, Value)> {
    json_files("vouchers")
}

#[test]
fn regenerating_gives_the_same_bytes() {
    let generated = vectors::generate();
    let on_disk = files();
    assert_eq!(
        generated.len(),
        on_disk.len(),
        "vector count differs: run `cargo run -p evoucher-core --example gen_vectors`"
    );
    for (name, v) in &generated {
        let path = dir().join(format!("{name}.json"));
        let disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            disk,
            vectors::to_file_text(v),
            "{name}: file differs from the generator"
        );
    }
    let keys = std::fs::read_to_string(dir().join("../keys.json")).unwrap();
    assert_eq!(keys, vectors::to_file_text(&vectors::keys_json()));
}

#[test]
fn every_vector_gives_its_expected_result() {
    let all = files();
    assert!(all.len() >= 40, "expected the full set of vectors");
    let mut valid = 0;
    for (name, v) in &all {
        let trust = TrustStore::from_jwks_json(&v["context"]["jwks"].to_string()).unwrap();
        let clock = v["context"]["clock"].as_i64().unwrap();
        let text = v["stages"]["text"].as_str().unwrap();
        let result = verify(text, &trust, clock);
        let exp = &v["expected"];
        assert_eq!(
            result.is_ok(),
            exp["valid"].as_bool().unwrap(),
            "{name}: {result:?}"
        );
        let failed = result.as_ref().err().map(|e| e.stage().as_str());
        assert_eq!(failed, exp["failed_stage"].as_str(), "{name}: {result:?}");
        for (stage, flag) in stage_flags(&result, &evoucher_core::Stage::ALL) {
            assert_eq!(
                flag,
                exp["stages"][stage.as_str()].as_bool(),
                "{name}: stage {stage}"
            );
        }
        if let Ok(ok) = &result {
            valid += 1;
            assert_eq!(
                Some(ok.voucher.id.to_hex().as_str()),
                exp["voucher_id"].as_str(),
                "{name}"
            );
            assert_eq!(
                serde_json::to_value(&ok.voucher).unwrap(),
                v["stages"]["claims"],
                "{name}: claims"
            );
            // Every intermediate stage matches the bytes recorded in the vector.
            let d = decode(text).unwrap();
            assert_eq!(
                hex::encode(&d.cose),
                v["stages"]["cose_hex"].as_str().unwrap(),
                "{name}"
            );
            if let Some(c) = v["stages"]["compressed_hex"].as_str() {
                assert_eq!(hex::encode(&d.body), c, "{name}");
                assert!(d.compressed);
            }
            assert_eq!(
                hex::encode(d.sign1.payload.as_ref().unwrap()),
                v["stages"]["claims_cbor_hex"].as_str().unwrap(),
                "{name}"
            );
        }
    }
    assert!(valid >= 8, "expected the valid vectors to verify");
}

#[test]
fn vectors_cover_every_stage() {
    let all = files();
    for stage in evoucher_core::Stage::ALL {
        assert!(
            all.iter()
                .any(|(_, v)| v["expected"]["failed_stage"].as_str() == Some(stage.as_str())),
            "no vector fails at {stage}"
        );
    }
}

#[test]
fn compressed_hex_decompresses_to_cose_hex() {
    for (name, v) in files() {
        if let (Some(c), Some(cose)) = (
            v["stages"]["compressed_hex"].as_str(),
            v["stages"]["cose_hex"].as_str(),
        ) {
            let (out, compressed) = text::decompress(&hex::decode(c).unwrap()).unwrap();
            assert!(compressed);
            assert_eq!(hex::encode(out), cose, "{name}");
        }
    }
}

fn jwt_files() -> Vec<(String, Value)> {
    json_files("jwt")
}

#[test]
fn jwt_regenerating_gives_the_same_bytes() {
    let generated = support::jwt_vectors::generate();
    assert_eq!(
        generated.len(),
        jwt_files().len(),
        "JWT vector count differs"
    );
    for (name, v) in &generated {
        let disk =
            std::fs::read_to_string(dir().join(format!("../jwt/{name}.json"))).unwrap_or_default();
        assert_eq!(
            disk,
            vectors::to_file_text(v),
            "{name}: file differs from the generator"
        );
    }
    let keys = std::fs::read_to_string(dir().join("../jwt-keys.json")).unwrap();
    assert_eq!(
        keys,
        vectors::to_file_text(&support::jwt_vectors::keys_json())
    );
}

#[test]
fn every_jwt_vector_gives_its_expected_result() {
    let all = jwt_files();
    assert!(all.len() >= 20);
    let mut valid = 0;
    for (name, v) in &all {
        let trust = TrustStore::from_jwks_json(&v["context"]["jwks"].to_string()).unwrap();
        let clock = v["context"]["clock"].as_i64().unwrap();
        let text = v["stages"]["text"].as_str().unwrap();
        let result = verify(text, &trust, clock);
        let exp = &v["expected"];
        let failed = result.as_ref().err().map(|e| e.stage().as_str());
        assert_eq!(failed, exp["failed_stage"].as_str(), "{name}: {result:?}");
        for (stage, flag) in stage_flags(&result, &evoucher_core::Stage::JWT) {
            assert_eq!(
                flag,
                exp["stages"][stage.as_str()].as_bool(),
                "{name}: stage {stage}"
            );
        }
        if let Ok(ok) = &result {
            valid += 1;
            let e = &exp["voucher"];
            let val = ok.voucher.value.as_ref().unwrap();
            assert_eq!(ok.voucher.id.to_hex(), e["id"].as_str().unwrap(), "{name}");
            assert_eq!(
                (val.amount, val.currency.as_str()),
                (
                    e["amount"].as_u64().unwrap(),
                    e["currency"].as_str().unwrap()
                )
            );
            assert_eq!(ok.voucher.aud.as_deref(), e["aud"].as_str());
            assert_eq!(
                ok.voucher.beneficiary.id,
                e["beneficiary"].as_str().unwrap()
            );
            assert_eq!(ok.voucher.beneficiary.name.as_deref(), e["name"].as_str());
            assert_eq!(ok.format, evoucher_core::Format::Openg2pJwt);
        }
    }
    assert_eq!(valid, 3);
    for stage in evoucher_core::Stage::JWT {
        assert!(
            all.iter()
                .any(|(_, v)| v["expected"]["failed_stage"].as_str() == Some(stage.as_str()))
                || stage == evoucher_core::Stage::Prefix,
            "no JWT vector fails at {stage}"
        );
    }
}

#[test]
fn openg2p_decimal_amounts() {
    use evoucher_core::jwt::parse_decimal;
    assert_eq!(parse_decimal("5000.0", 2), Ok(500_000));
    assert_eq!(parse_decimal("5000", 2), Ok(500_000));
    assert_eq!(parse_decimal("0.05", 2), Ok(5));
    assert_eq!(parse_decimal("12.50", 2), Ok(1_250));
    assert_eq!(parse_decimal("7", 0), Ok(7));
    assert_eq!(parse_decimal("7.000", 0), Ok(7));
    for bad in [
        "",
        ".5",
        "5.",
        "-1",
        "1e3",
        "5,000",
        " 5",
        "5.001",
        "0",
        "0.00",
        "99999999999999999999",
    ] {
        assert!(parse_decimal(bad, 2).is_err(), "{bad:?} accepted");
    }
}
