//! The `evoucher` binary, run as a real process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// keygen into `d`, returning (key path, trust path).
fn keygen(d: &Path) -> (String, String) {
    let key = d.join("issuer.jwk");
    let o = run(&["keygen", "--out", key.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let trust = d.join("trust.json");
    std::fs::write(&trust, &o.stdout).unwrap();
    (key.to_str().unwrap().into(), trust.to_str().unwrap().into())
}

const ISSUE: &[&str] = &[
    "--iss",
    "https://food.example.org",
    "--program",
    "food-2026",
    "--valid-from",
    "2026-01-01T00:00:00Z",
    "--valid-until",
    "2026-12-31T00:00:00Z",
];

fn issue(key: &str, extra: &[&str]) -> String {
    let mut args = vec!["issue", "--key", key];
    args.extend_from_slice(ISSUE);
    args.extend_from_slice(extra);
    let o = run(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o).trim_end_matches('\n').to_owned()
}

#[test]
fn keygen_issue_verify_round_trip() {
    use std::os::unix::fs::PermissionsExt;
    let d = tmp("roundtrip");
    let (key, trust) = keygen(&d);
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let jwks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trust).unwrap()).unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "public JWKS must not hold d"
    );

    let png = d.join("v.png");
    let svg = d.join("v.svg");
    let text = issue(
        &key,
        &[
            "--beneficiary",
            "BEN-1",
            "--name",
            "Amina K.",
            "--amount",
            "2500",
            "--currency",
            "KES",
            "--png",
            png.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
        ],
    );
    assert!(text.starts_with("EV1:"), "{text}");
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));

    let o = run(&[
        "verify",
        "--trust",
        &trust,
        "--at",
        "2026-06-01T00:00:00Z",
        &text,
    ]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.starts_with("VALID"), "{out}");
    assert!(out.contains("25.00 KES"), "{out}");

    let o = run(&[
        "verify",
        "--json",
        "--trust",
        &trust,
        "--at",
        "2026-06-01T00:00:00Z",
        &text,
    ]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["valid"], true);
    assert_eq!(j["voucher"]["value"]["amount"], 2500);
    assert_eq!(j["voucher"]["beneficiary"]["name"], "Amina K.");

    // Expired, not yet valid.
    let o = run(&[
        "verify",
        "--json",
        "--trust",
        &trust,
        "--at",
        "2027-01-01T00:00:00Z",
        &text,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (j["valid"].as_bool(), j["stage"].as_str()),
        (Some(false), Some("expired"))
    );
    let o = run(&[
        "verify",
        "--json",
        "--trust",
        &trust,
        "--at",
        "2025-12-31T23:59:59Z",
        &text,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["stage"],
        "not_yet_valid"
    );
}

#[test]
fn verify_reads_stdin_and_refuses_tampering_and_unknown_keys() {
    let d = tmp("stdin");
    let (key, trust) = keygen(&d);
    let text = issue(
        &key,
        &[
            "--beneficiary",
            "B",
            "--item",
            "RICE:10:kg",
            "--item",
            "OIL:2",
            "--partial",
            "--aud",
            "SP-1",
        ],
    );
    let mut child = bin()
        .args([
            "verify",
            "--json",
            "--trust",
            &trust,
            "--at",
            "2026-06-01T00:00:00Z",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{text}\n").as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["voucher"]["rule"], "partial");
    assert_eq!(j["voucher"]["aud"], "SP-1");
    assert_eq!(j["voucher"]["items"][0]["unit"], "kg");

    // One character changed in the middle: refused, exit 1.
    let mut bad = text.clone();
    let mid = bad.len() / 2;
    let c = if &bad[mid..mid + 1] == "A" { "B" } else { "A" };
    bad.replace_range(mid..mid + 1, c);
    let o = run(&[
        "verify",
        "--trust",
        &trust,
        "--at",
        "2026-06-01T00:00:00Z",
        &bad,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).starts_with("INVALID"));

    // Another issuer's trust store: kid unknown.
    let d2 = tmp("stdin-other");
    let (_, other_trust) = keygen(&d2);
    let o = run(&[
        "verify",
        "--json",
        "--trust",
        &other_trust,
        "--at",
        "2026-06-01T00:00:00Z",
        &text,
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["stage"],
        "kid"
    );
}

#[test]
fn usage_and_io_errors_exit_2() {
    let d = tmp("usage");
    let (key, trust) = keygen(&d);
    // keygen never overwrites a key.
    let before = std::fs::read(&key).unwrap();
    assert_eq!(run(&["keygen", "--out", &key]).status.code(), Some(2));
    assert_eq!(std::fs::read(&key).unwrap(), before);
    assert_eq!(
        run(&["verify", "--trust", "/nonexistent/trust.json", "EV1:X"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&["verify", "--trust", &trust, "--at", "yesterday", "EV1:X"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&["verify", "EV1:X"]).status.code(),
        Some(2),
        "missing --trust"
    );
    // A private key is not a trust store.
    let private_set = d.join("private-set.json");
    let jwk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&key).unwrap()).unwrap();
    std::fs::write(&private_set, serde_json::json!({"keys": [jwk]}).to_string()).unwrap();
    let o = run(&["verify", "--trust", private_set.to_str().unwrap(), "EV1:X"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("private key"), "{err}");
    assert!(
        !err.contains(jwk["d"].as_str().unwrap()),
        "secret in error output"
    );
    // Issue: neither amount nor items; amount without currency.
    let mut args = vec!["issue", "--key", &key, "--beneficiary", "B"];
    args.extend_from_slice(ISSUE);
    assert_eq!(run(&args).status.code(), Some(2));
    args.extend_from_slice(&["--amount", "5"]);
    assert_eq!(run(&args).status.code(), Some(2));
    assert_eq!(run(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn inspect_shows_layers_without_trust() {
    let d = tmp("inspect");
    let (key, _) = keygen(&d);
    let text = issue(
        &key,
        &["--beneficiary", "B", "--amount", "100", "--currency", "USD"],
    );
    let o = run(&["inspect", "--json", &text]);
    assert_eq!(o.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["compressed"], true);
    assert_eq!(j["tagged"], true);
    assert_eq!(j["protected"]["alg"], "EdDSA");
    assert_eq!(j["claims"]["value"]["currency"], "USD");
    assert!(j["cose_hex"].as_str().unwrap().starts_with("d284"));
    let o = run(&["inspect", "--json", "EV1:000"]);
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["error"]["stage"], "zlib");
    let o = run(&["inspect", "hello"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("FAILED at prefix"));
}

#[test]
fn batch_issue_writes_pngs_and_index_and_bad_rows_change_nothing() {
    let d = tmp("batch");
    let (key, trust) = keygen(&d);
    let csv = d.join("ben.csv");
    std::fs::write(
        &csv,
        "beneficiary_id,name,amount,items\nB-1,Ann,,\nB-2,,700,\nB-3,Bo,,SOAP:2;RICE:5:kg\n",
    )
    .unwrap();
    let out = d.join("out");
    let mut args = vec![
        "issue",
        "--key",
        &key,
        "--amount",
        "500",
        "--currency",
        "KES",
        "--csv",
        csv.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(ISSUE);
    let o = run(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["issued"], 3);
    let mut rdr = csv::Reader::from_path(out.join("index.csv")).unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    let mut amounts = Vec::new();
    for r in &rows {
        assert!(out.join(&r[3]).exists());
        let v = run(&[
            "verify",
            "--json",
            "--trust",
            &trust,
            "--at",
            "2026-06-01T00:00:00Z",
            &r[4],
        ]);
        assert_eq!(v.status.code(), Some(0));
        let vj: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
        assert_eq!(vj["voucher"]["beneficiary"]["id"].as_str(), Some(&r[1]));
        amounts.push(vj["voucher"]["value"]["amount"].as_u64());
    }
    assert_eq!(amounts, vec![Some(500), Some(700), Some(500)]);

    // A bad row (quantity not a number) on line 3: exit 2, nothing written.
    std::fs::write(&csv, "beneficiary_id,items\nB-1,RICE:1\nB-2,RICE:x\n").unwrap();
    let out2 = d.join("out2");
    let mut args = vec![
        "issue",
        "--key",
        &key,
        "--csv",
        csv.to_str().unwrap(),
        "--out-dir",
        out2.to_str().unwrap(),
    ];
    args.extend_from_slice(ISSUE);
    let o = run(&args);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 3: items"), "{err}");
    assert!(
        !err.contains("RICE:x"),
        "errors do not echo beneficiary data: {err}"
    );
    assert!(!out2.exists(), "nothing may be written for a bad batch");
}

#[test]
fn redeem_once_then_refused_and_ledger_commands() {
    let d = tmp("redeem");
    let (key, trust) = keygen(&d);
    let ledger = d.join("shop.db");
    let ledger = ledger.to_str().unwrap();
    let at = "2026-06-01T10:00:00Z";
    let single = issue(
        &key,
        &[
            "--beneficiary",
            "B-1",
            "--amount",
            "2500",
            "--currency",
            "KES",
        ],
    );
    let redeem = |extra: &[&str], text: &str| {
        let mut args = vec![
            "redeem",
            "--json",
            "--ledger",
            ledger,
            "--trust",
            &trust,
            "--provider",
            "SP-1",
            "--at",
            at,
        ];
        args.extend_from_slice(extra);
        args.push(text);
        let o = run(&args);
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        (o.status.code(), j)
    };
    let (code, j) = redeem(&[], &single);
    assert_eq!(code, Some(0), "{j}");
    assert_eq!(j["redeemed"], true);
    assert_eq!(j["entry"]["amount"], 2500);
    assert!(j["entry"].get("voucher_text").is_none());
    let first_id = j["entry"]["id"].as_str().unwrap().to_owned();
    let (code, j) = redeem(&[], &single);
    assert_eq!(code, Some(1));
    assert_eq!(j["stage"], "already_redeemed");
    assert_eq!(j["entry_id"], first_id.as_str());
    assert_eq!(j["provider"], "SP-1");

    // Partial: draw down, then overdraw refused.
    let partial = issue(
        &key,
        &[
            "--beneficiary",
            "B-2",
            "--amount",
            "1000",
            "--currency",
            "KES",
            "--item",
            "RICE:5:kg",
            "--partial",
        ],
    );
    let (code, j) = redeem(&["--amount", "600"], &partial);
    assert_eq!(
        (code, j["remaining"]["amount"].as_u64()),
        (Some(0), Some(400))
    );
    let (code, j) = redeem(&["--amount", "401"], &partial);
    assert_eq!(
        (code, j["stage"].as_str()),
        (Some(1), Some("insufficient_balance"))
    );
    let (code, j) = redeem(&["--item", "RICE:5"], &partial);
    assert_eq!(
        (code, j["remaining"]["items"][0]["quantity"].as_u64()),
        (Some(0), Some(0))
    );

    // Wrong provider, invalid voucher.
    let for_other = issue(
        &key,
        &[
            "--beneficiary",
            "B-3",
            "--amount",
            "1",
            "--currency",
            "KES",
            "--aud",
            "SP-2",
        ],
    );
    let (code, j) = redeem(&[], &for_other);
    assert_eq!(
        (code, j["stage"].as_str()),
        (Some(1), Some("wrong_provider"))
    );
    let (code, j) = redeem(&[], "EV1:000");
    assert_eq!((code, j["stage"].as_str()), (Some(1), Some("zlib")));

    // ledger list / show / verify / export / void.
    let o = run(&["ledger", "list", "--json", "--ledger", ledger]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o).lines().count(), 3);
    let o = run(&["ledger", "show", "--json", "--ledger", ledger, &first_id]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["voucher_text"], single.as_str());
    assert_eq!(
        run(&["ledger", "show", "--ledger", ledger, "nope"])
            .status
            .code(),
        Some(1)
    );
    let o = run(&["ledger", "verify", "--json", "--ledger", ledger]);
    assert_eq!(o.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (j["intact"].as_bool(), j["entries"].as_i64()),
        (Some(true), Some(3))
    );
    let o = run(&["ledger", "export", "--csv", "--ledger", ledger]);
    let mut rdr = csv::Reader::from_reader(o.stdout.as_slice());
    assert_eq!(rdr.records().count(), 3);
    let o = run(&["ledger", "void", "--ledger", ledger, "--at", at, &first_id]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(
        run(&["ledger", "void", "--ledger", ledger, &first_id])
            .status
            .code(),
        Some(1)
    );
    let (code, _) = redeem(&[], &single);
    assert_eq!(code, Some(0), "a voided redemption frees the voucher");

    // Tampering shows up in `ledger verify` with exit 1.
    let c = rusqlite::Connection::open(ledger).unwrap();
    c.execute_batch(
        "DROP TRIGGER entries_append_only_update; UPDATE entries SET amount = 1 WHERE seq = 2;",
    )
    .unwrap();
    drop(c);
    let o = run(&["ledger", "verify", "--json", "--ledger", ledger]);
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (j["intact"].as_bool(), j["seq"].as_i64()),
        (Some(false), Some(2))
    );

    // Missing or corrupt ledgers: exit 2, nothing created or changed.
    let missing = d.join("missing.db");
    assert_eq!(
        run(&["ledger", "list", "--ledger", missing.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    assert!(!missing.exists());
    let corrupt = d.join("corrupt.db");
    std::fs::write(&corrupt, [7u8; 4096]).unwrap();
    let o = run(&[
        "redeem",
        "--ledger",
        corrupt.to_str().unwrap(),
        "--trust",
        &trust,
        "--provider",
        "SP-1",
        "--at",
        at,
        &for_other,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&corrupt).unwrap(), vec![7u8; 4096]);
}

fn shared() -> PathBuf {
    std::env::var_os("EVOUCHER_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

#[test]
fn openg2p_sample_inspects_and_its_kid_is_unknown() {
    let sample =
        std::fs::read_to_string(shared().join("openg2p/entitlement-voucher-qr-code.txt")).unwrap();
    let sample = sample.trim();
    let o = run(&["inspect", "--json", sample]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["format"], "openg2p_jwt");
    assert_eq!(j["jws_header"]["alg"], "RS256");
    assert_eq!(
        j["jws_header"]["kid"],
        "d95f3fbc-4906-428f-8dce-83ae8b136d72"
    );
    assert_eq!(j["jws_claims"]["type"], "voucher");
    assert_eq!(j["jws_claims"]["amount"], "5000.0");
    assert_eq!(
        j["signature_hex"].as_str().unwrap().len(),
        512,
        "RSA-2048 signature"
    );

    let d = tmp("openg2p");
    let (_, trust) = keygen(&d);
    let o = run(&["verify", "--json", "--trust", &trust, sample]);
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["stage"], "kid");
    assert!(j["error"]
        .as_str()
        .unwrap()
        .contains("d95f3fbc-4906-428f-8dce-83ae8b136d72"));
    assert_eq!(j["stages"]["jws"], true);
    assert_eq!(j["stages"]["alg"], true);
    assert!(j["stages"].get("base45").is_none(), "JWT stages only");
    let o = run(&["verify", "--trust", &trust, sample]);
    assert!(stdout(&o).starts_with("INVALID (kid)"), "{}", stdout(&o));
}

/// A tiny HTTP/1.1 server on loopback: answers `routes` (path → body) with 200, else 404.
fn serve(routes: Vec<(&'static str, String)>) -> (String, std::thread::JoinHandle<()>) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let h = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let (status, body) = match routes.iter().find(|(p, _)| *p == path) {
                Some((_, b)) => ("200 OK", b.clone()),
                None => ("404 Not Found", "{}".to_owned()),
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\netag: \"v1\"\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (base, h)
}

#[test]
fn trust_fetch_caches_a_program_jwks_for_offline_use() {
    let d = tmp("fetch");
    let vector: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../test-vectors/jwt/valid-rs256.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut jwks = vector["context"]["jwks"].clone();
    for k in jwks["keys"].as_array_mut().unwrap() {
        k.as_object_mut().unwrap().remove("currency");
    }
    let token = vector["stages"]["text"].as_str().unwrap();
    let cache = d.join("program.jwks.json");
    let cache_s = cache.to_str().unwrap();

    // OpenG2P 17 path.
    let (base, h) = serve(vec![(
        "/api/v1/security/.well-known/jwks.json",
        jwks.to_string(),
    )]);
    let o = run(&[
        "trust",
        "fetch",
        "--json",
        "--openg2p",
        &base,
        "--currency",
        "PHP",
        "--out",
        cache_s,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["keys"], 2);
    assert!(j["url"]
        .as_str()
        .unwrap()
        .ends_with("/api/v1/security/.well-known/jwks.json"));
    drop(h);
    let cached: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    assert_eq!(cached["evoucher_source"]["etag"], "\"v1\"");
    assert_eq!(cached["keys"][0]["currency"], "PHP");

    // Offline: the cache verifies the voucher, and says where it came from.
    let o = run(&[
        "verify",
        "--json",
        "--trust",
        cache_s,
        "--at",
        "2023-07-22T00:00:00Z",
        token,
    ]);
    assert_eq!(o.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["voucher"]["value"]["amount"], 500000);
    let o = run(&["trust", "show", "--json", "--trust", cache_s]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(j["source"]["url"].as_str().unwrap().starts_with(&base));
    assert_eq!(j["keys"].as_array().unwrap().len(), 2);

    // OpenG2P 15 path: the first URL 404s, the second answers.
    let cache15 = d.join("p15.json");
    let (base, h) = serve(vec![(
        "/api/v1/payments/.well-known/jwks.json",
        jwks.to_string(),
    )]);
    let o = run(&[
        "trust",
        "fetch",
        "--openg2p",
        &base,
        "--out",
        cache15.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout(&o).contains("/api/v1/payments/"));
    drop(h);

    // A 404 without fallback, or garbage: exit 2 and the old cache is untouched.
    let before = std::fs::read(&cache).unwrap();
    let o = run(&[
        "trust",
        "fetch",
        "--url",
        &format!("{base}/jwks.json"),
        "--out",
        cache_s,
    ]);
    assert_eq!(o.status.code(), Some(2));
    let (base, h) = serve(vec![("/jwks.json", "not json".into())]);
    let o = run(&[
        "trust",
        "fetch",
        "--url",
        &format!("{base}/jwks.json"),
        "--out",
        cache_s,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("left as it was"));
    drop(h);
    assert_eq!(std::fs::read(&cache).unwrap(), before);
}

#[test]
fn scan_reads_files_as_json_lines_with_reliable_exit_codes() {
    let sample = shared().join("openg2p/entitlement-voucher-qr-code.png");
    let expected =
        std::fs::read_to_string(shared().join("openg2p/entitlement-voucher-qr-code.txt")).unwrap();
    let o = run(&["scan", "--json", sample.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["codes"][0]["text"].as_str().unwrap(), expected.trim());
    assert_eq!(j["codes"][0]["corners"].as_array().unwrap().len(), 4);

    // Our own voucher's PNG, a file without a code, and a missing file, in one call.
    let d = tmp("scan");
    let (key, trust) = keygen(&d);
    let png = d.join("v.png");
    let text = issue(
        &key,
        &[
            "--beneficiary",
            "B",
            "--amount",
            "100",
            "--currency",
            "KES",
            "--png",
            png.to_str().unwrap(),
        ],
    );
    let blank = d.join("blank.png");
    let img = image::GrayImage::from_pixel(64, 64, image::Luma([255u8]));
    img.save(&blank).unwrap();
    let o = run(&[
        "scan",
        "--json",
        png.to_str().unwrap(),
        blank.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "a file without a code");
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["codes"][0]["text"], text.as_str());
    assert_eq!(lines[1]["codes"].as_array().unwrap().len(), 0);
    let o = run(&["scan", "--json", png.to_str().unwrap(), "/nonexistent.png"]);
    assert_eq!(o.status.code(), Some(2));
    let last: serde_json::Value = serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap();
    assert!(last["error"].is_string());
    // What was scanned verifies.
    let o = run(&["verify", "--trust", &trust, &text]);
    assert_eq!(o.status.code(), Some(0));
    // Without the camera feature, --camera is a clear usage error.
    if !cfg!(feature = "camera") {
        assert_eq!(run(&["scan", "--camera"]).status.code(), Some(2));
    }
}

#[test]
fn serve_runs_on_embedded_defaults_and_stops_gracefully() {
    use std::os::unix::fs::PermissionsExt;
    let d = tmp("serve");
    let mut cmd = bin();
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(&d)
        .env_remove("EVOUCHER_MASTER_KEY")
        .env_remove("EVOUCHER_ADMIN_TOKEN");
    let (mut child, addr) = spawn_serve(cmd);
    // Secrets were made with mode 0600; the database beside them.
    for f in ["evoucher-admin.token", "evoucher-master.key"] {
        assert_eq!(
            std::fs::metadata(d.join(f)).unwrap().permissions().mode() & 0o777,
            0o600,
            "{f}"
        );
    }
    assert!(d.join("evoucher-server.db").exists());
    let token = std::fs::read_to_string(d.join("evoucher-admin.token")).unwrap();
    assert_eq!(http(&addr, "GET", "/healthz", None, None).0, 200);
    assert_eq!(http(&addr, "GET", "/readyz", None, None).0, 200);
    let program =
        r#"{"id":"p1","name":"P1","issuer":"https://p1.example","currency":"KES","amount":100}"#;
    assert_eq!(
        http(&addr, "POST", "/api/v1/programs", None, Some(program)).0,
        401
    );
    assert_eq!(
        http(
            &addr,
            "POST",
            "/api/v1/programs",
            Some(&token),
            Some(program)
        )
        .0,
        201
    );
    let (st, body) = http(
        &addr,
        "POST",
        "/api/v1/programs/p1/vouchers",
        Some(&token),
        Some(r#"{"beneficiaries":[{"id":"B-1"}]}"#),
    );
    assert_eq!(st, 201);
    let text = serde_json::from_str::<serde_json::Value>(&body).unwrap()["vouchers"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, jwks) = http(&addr, "GET", "/api/v1/trust", None, None);
    let trust = d.join("trust.json");
    std::fs::write(&trust, jwks).unwrap();
    assert_eq!(
        run(&["verify", "--trust", trust.to_str().unwrap(), &text])
            .status
            .code(),
        Some(0)
    );
    // A shop's phone: enrol, sync, redeem offline, sync again.
    assert_eq!(
        http(
            &addr,
            "POST",
            "/api/v1/providers",
            Some(&token),
            Some(r#"{"id":"SP-1","name":"Shop"}"#)
        )
        .0,
        201
    );
    let (_, code) = http(
        &addr,
        "POST",
        "/api/v1/providers/SP-1/enrolment-codes",
        Some(&token),
        Some("{}"),
    );
    let code = serde_json::from_str::<serde_json::Value>(&code).unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let ledger = d.join("phone.db");
    let ledger_s = ledger.to_str().unwrap();
    let base = format!("http://{addr}");
    let o = run(&[
        "enrol", "--json", "--server", &base, "--code", &code, "--ledger", ledger_s,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::metadata(format!("{ledger_s}.token"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let o = run(&["sync", "--json", "--ledger", ledger_s, "--server", &base]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let phone_trust = format!("{ledger_s}.trust.json");
    assert_eq!(
        run(&[
            "redeem",
            "--ledger",
            ledger_s,
            "--trust",
            &phone_trust,
            "--provider",
            "SP-1",
            &text
        ])
        .status
        .code(),
        Some(0)
    );
    let o = run(&["sync", "--json", "--ledger", ledger_s, "--server", &base]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (
            j["pushed"].as_u64(),
            j["accepted"].as_u64(),
            j["remaining"].as_u64()
        ),
        (Some(1), Some(1), Some(0)),
        "{j}"
    );
    // Redeemed once: refused the second time; a wrong token cannot push.
    assert_eq!(
        run(&[
            "redeem",
            "--ledger",
            ledger_s,
            "--trust",
            &phone_trust,
            "--provider",
            "SP-1",
            &text
        ])
        .status
        .code(),
        Some(1)
    );
    let phone2 = d.join("phone2.db");
    let p2 = phone2.to_str().unwrap();
    assert_eq!(
        run(&[
            "redeem",
            "--ledger",
            p2,
            "--trust",
            &phone_trust,
            "--provider",
            "SP-1",
            &text
        ])
        .status
        .code(),
        Some(0)
    );
    assert_eq!(
        run(&["sync", "--ledger", p2, "--server", &base, "--token", "wrong"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&["ledger", "verify", "--json", "--ledger", p2])
            .status
            .code(),
        Some(0)
    );
    // `qr` renders a voucher that `scan` reads back.
    let png = d.join("v.png");
    assert_eq!(
        run(&["qr", "--png", png.to_str().unwrap(), &text])
            .status
            .code(),
        Some(0)
    );
    let o = run(&["scan", "--json", png.to_str().unwrap()]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["codes"][0]["text"],
        text.as_str()
    );

    // SIGTERM: graceful stop, exit 0.
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn serve_refuses_a_letter_font_it_cannot_use_before_it_starts() {
    let d = tmp("serve-font");
    std::fs::write(d.join("notes.ttf"), b"this is not a font").unwrap();
    for (font, why) in [
        ("missing.ttf", "cannot read it"),
        ("notes.ttf", "not a TrueType or OpenType font"),
    ] {
        let o = bin()
            .args(["serve", "--listen", "127.0.0.1:0", "--letter-font", font])
            .current_dir(&d)
            .env("EVOUCHER_ADMIN_TOKEN", "font-admin-token-0123456789")
            .env("EVOUCHER_MASTER_KEY", "11".repeat(32))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("letter font {font}: {why}")), "{err}");
        assert!(o.stdout.is_empty(), "it never listened");
        assert!(!d.join("evoucher-server.db").exists(), "nothing was made");
    }
}

#[test]
fn serve_finishes_requests_in_flight_then_stops_after_its_grace_period() {
    use std::io::{Read, Write};
    let d = tmp("serve-grace");
    let mut cmd = bin();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--shutdown-grace", "3"])
        .current_dir(&d)
        .env("EVOUCHER_ADMIN_TOKEN", "grace-admin-token-0123456789")
        .env("EVOUCHER_MASTER_KEY", "11".repeat(32));
    let (mut child, addr) = spawn_serve(cmd);
    let body =
        r#"{"id":"p1","name":"P1","issuer":"https://p1.example","currency":"KES","amount":100}"#;
    let head = format!(
        "POST /api/v1/programs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer grace-admin-token-0123456789\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // Two requests in flight: one will finish its body after the signal, one never will. Each
    // connection first gets one whole answer, so the server has surely accepted it.
    let accepted = || {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !seen.ends_with(b"\r\n\r\n") {
            c.read_exact(&mut byte).unwrap();
            seen.push(byte[0]);
        }
        let head = String::from_utf8(seen).unwrap().to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        let len: usize = head
            .split("content-length:")
            .nth(1)
            .and_then(|v| v.lines().next())
            .map(|v| v.trim().parse().unwrap())
            .unwrap();
        c.read_exact(&mut vec![0; len]).unwrap();
        c
    };
    let mut finishing = accepted();
    finishing.write_all(head.as_bytes()).unwrap();
    finishing.write_all(&body.as_bytes()[..10]).unwrap();
    let mut stalled = accepted();
    stalled.write_all(head.as_bytes()).unwrap();
    stalled.write_all(b"{").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let signalled = std::time::Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    // The request in flight is still served after the signal.
    finishing.write_all(&body.as_bytes()[10..]).unwrap();
    let mut answer = String::new();
    finishing.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    // The stalled one does not keep the server up past its grace period.
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if signalled.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("serve still running 30 s after SIGTERM with a 3 s grace period");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
    assert!(signalled.elapsed() >= std::time::Duration::from_secs(3));
    drop(stalled);
}

/// Start an `evoucher serve` command and wait for its `listening on` line; (child, addr).
/// The server is SIGKILLed while phones push (at several points into a push of 500), and the
/// phone's sync process with it; after each restart the server holds whole pushes only; the
/// last sync completes and the server holds every redemption exactly once.
#[test]
fn server_killed_mid_push_loses_and_duplicates_nothing() {
    use evoucher_core::ledger::{Ledger, RedeemRequest, Redeemer};
    const N: usize = 2500;
    let d = tmp("kill");
    let db = server_database(&d, "kill");
    let admin = "kill-test-admin-token-0123456789";
    let (mut server, addr) = serve_process(&d, &db, admin);
    let program =
        r#"{"id":"p1","name":"P1","issuer":"https://p1.example","currency":"KES","amount":100}"#;
    assert_eq!(
        http(
            &addr,
            "POST",
            "/api/v1/programs",
            Some(admin),
            Some(program)
        )
        .0,
        201
    );
    let bens: Vec<String> = (0..N).map(|i| format!(r#"{{"id":"B-{i}"}}"#)).collect();
    let (st, issued) = http(
        &addr,
        "POST",
        "/api/v1/programs/p1/vouchers",
        Some(admin),
        Some(&format!(r#"{{"beneficiaries":[{}]}}"#, bens.join(","))),
    );
    assert_eq!(st, 201);
    let issued: serde_json::Value = serde_json::from_str(&issued).unwrap();
    let (_, jwks) = http(&addr, "GET", "/api/v1/trust", None, None);
    let trust = evoucher_core::TrustStore::from_jwks_json(&jwks).unwrap();
    http(
        &addr,
        "POST",
        "/api/v1/providers",
        Some(admin),
        Some(r#"{"id":"SP-1","name":"Shop"}"#),
    );
    let (_, code) = http(
        &addr,
        "POST",
        "/api/v1/providers/SP-1/enrolment-codes",
        Some(admin),
        Some("{}"),
    );
    let code: serde_json::Value = serde_json::from_str(&code).unwrap();
    let ledger = d.join("phone.db");
    let ledger_s = ledger.to_str().unwrap().to_owned();
    let base = format!("http://{addr}");
    let o = run(&[
        "enrol",
        "--server",
        &base,
        "--code",
        code["code"].as_str().unwrap(),
        "--ledger",
        &ledger_s,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let device_token = std::fs::read_to_string(format!("{ledger_s}.token"))
        .unwrap()
        .trim()
        .to_owned();
    {
        let l = Ledger::open(&ledger).unwrap();
        let now = evoucher_core::ledger_now();
        // An enrolled ledger records its enrolled device id (an empty one takes it).
        let who = Redeemer {
            provider: "SP-1",
            category: None,
            device: "",
        };
        for v in issued["vouchers"].as_array().unwrap() {
            let v = evoucher_core::verify(v["text"].as_str().unwrap(), &trust, now).unwrap();
            l.redeem(&v, &who, &RedeemRequest::Whole, now).unwrap();
        }
    }

    // Kill the server (and the phone's sync) at different points into the pushes.
    let mut addr = addr;
    let mut cut = 0;
    for delay_ms in [40u64, 80, 120, 180, 250] {
        let mut sync = bin()
            .args([
                "sync",
                "--ledger",
                &ledger_s,
                "--server",
                &format!("http://{addr}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        let _ = sync.kill();
        sync.wait().unwrap();
        (server, addr) = serve_process(&d, &db, admin);
        let held = server_statuses(&addr, &device_token);
        assert_eq!(
            held.len() % 500,
            0,
            "a push is stored whole or not at all: {}",
            held.len()
        );
        let seqs: Vec<i64> = held.iter().map(|x| x.0).collect();
        assert_eq!(
            seqs,
            (1..=held.len() as i64).collect::<Vec<_>>(),
            "no gap, no duplicate"
        );
        assert!(held.iter().all(|x| x.1 == "accepted"));
        eprintln!(
            "killed after {delay_ms} ms: the server holds {}",
            held.len()
        );
        if held.len() < N {
            cut += 1;
        }
    }
    assert!(cut > 0, "no kill landed before the end of the sync");
    let o = run(&[
        "sync",
        "--json",
        "--ledger",
        &ledger_s,
        "--server",
        &format!("http://{addr}"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["remaining"].as_u64(), Some(0), "{j}");
    let held = server_statuses(&addr, &device_token);
    assert_eq!(held.len(), N);
    assert!(
        held.iter().all(|x| x.1 == "accepted"),
        "nothing counted twice"
    );
    let seqs: Vec<i64> = held.iter().map(|x| x.0).collect();
    assert_eq!(seqs, (1..=N as i64).collect::<Vec<_>>());
    // The phone's ledger is intact and fully synced.
    let o = run(&["ledger", "verify", "--json", "--ledger", &ledger_s]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    server.kill().unwrap();
    server.wait().unwrap();
}
