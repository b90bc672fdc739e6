//! The phone's ledger through the CLI, in the situations a field phone meets: two processes
//! creating a ledger at once, a ledger file lost while its key remains, a ledger in a read-only
//! place, output into a closed pipe, and CSV cells a spreadsheet would run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use common::*;

/// A key, its trust store and `n` single-use vouchers (issued by the CLI).
fn vouchers(d: &Path, n: usize) -> (String, Vec<String>) {
    let key = d.join("issuer.jwk");
    let o = run(&["keygen", "--out", key.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let trust = d.join("trust.json");
    std::fs::write(&trust, &o.stdout).unwrap();
    let texts = (0..n)
        .map(|i| {
            let o = run(&[
                "issue",
                "--key",
                key.to_str().unwrap(),
                "--iss",
                "https://p.example",
                "--program",
                "p",
                "--beneficiary",
                &format!("B-{i}"),
                "--amount",
                "100",
                "--currency",
                "KES",
                "--valid-from",
                "2026-01-01T00:00:00Z",
                "--valid-until",
                "2030-01-01T00:00:00Z",
            ]);
            assert_eq!(o.status.code(), Some(0), "{o:?}");
            stdout(&o).trim().to_owned()
        })
        .collect();
    (trust.to_str().unwrap().to_owned(), texts)
}

fn redeem(ledger: &Path, trust: &str, provider: &str, text: &str) -> std::process::Output {
    run(&[
        "redeem",
        "--json",
        "--ledger",
        ledger.to_str().unwrap(),
        "--trust",
        trust,
        "--provider",
        provider,
        "--at",
        "2027-01-01T00:00:00Z",
        text,
    ])
}

/// Two processes redeem the same voucher at the same moment on a ledger that does not exist
/// yet: one creates it and redeems (exit 0), the other waits and reports `already_redeemed`
/// (exit 1), never a database error (exit 2).
#[test]
fn two_processes_creating_a_ledger_at_once_redeem_once() {
    let d = tmp("create-race");
    let (trust, texts) = vouchers(&d, 1);
    for round in 0..50 {
        let ledger = d.join(format!("shop{round}.db"));
        let spawn = || {
            bin()
                .args([
                    "redeem",
                    "--json",
                    "--ledger",
                    ledger.to_str().unwrap(),
                    "--trust",
                    &trust,
                    "--provider",
                    "SP-1",
                    "--at",
                    "2027-01-01T00:00:00Z",
                    &texts[0],
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let mut codes = [a.status.code(), b.status.code()];
        codes.sort();
        assert_eq!(
            codes,
            [Some(0), Some(1)],
            "round {round}: {}\n{}",
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stderr)
        );
        let loser = if a.status.code() == Some(1) { a } else { b };
        let j: serde_json::Value = serde_json::from_slice(&loser.stdout).unwrap();
        assert_eq!(j["reason"], "already_redeemed", "round {round}: {j}");
        let o = run(&[
            "ledger",
            "verify",
            "--json",
            "--ledger",
            ledger.to_str().unwrap(),
        ]);
        let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            (j["intact"].as_bool(), j["entries"].as_i64()),
            (Some(true), Some(1))
        );
    }
}

/// A ledger that is gone or empty while its device key remains was lost: refused with a clear
/// error (exit 2) and a way forward, and nothing is written (no second chain with the key).
#[test]
fn a_lost_ledger_is_refused_never_restarted() {
    let d = tmp("lost");
    let (trust, texts) = vouchers(&d, 2);
    let ledger = d.join("shop.db");
    assert_eq!(
        redeem(&ledger, &trust, "SP-1", &texts[0]).status.code(),
        Some(0)
    );
    let key = std::fs::read(format!("{}.device.jwk", ledger.display())).unwrap();
    for f in ["shop.db", "shop.db-wal", "shop.db-shm"] {
        let _ = std::fs::remove_file(d.join(f));
    }
    for how in ["gone", "empty"] {
        if how == "empty" {
            std::fs::write(&ledger, b"").unwrap();
        }
        let o = redeem(&ledger, &trust, "SP-1", &texts[0]);
        assert_eq!(o.status.code(), Some(2), "{how}: {o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("was lost") && err.contains("enrol again"),
            "{how}: {err}"
        );
        // Nothing was written: the file is as it was, the key unchanged.
        assert_eq!(
            std::fs::read(format!("{}.device.jwk", ledger.display())).unwrap(),
            key
        );
        match how {
            "gone" => assert!(!ledger.exists()),
            _ => assert_eq!(std::fs::read(&ledger).unwrap(), b""),
        }
        let o = run(&["ledger", "verify", "--ledger", ledger.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{how}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("was lost"));
    }
}

/// `ledger verify`, `list`, `show` and `export` read a ledger in a place where nothing may be
/// written (run as an unprivileged user when the tests run as root, as in CI).
#[test]
fn read_only_commands_work_on_a_ledger_in_a_read_only_place() {
    use std::os::unix::fs::PermissionsExt;
    let base = tmp("read-only");
    let d = base.join("ro");
    std::fs::create_dir_all(&d).unwrap();
    let (trust, texts) = vouchers(&base, 3);
    let ledger = d.join("shop.db");
    for t in &texts {
        assert_eq!(redeem(&ledger, &trust, "SP-1", t).status.code(), Some(0));
    }
    // No device key here: read-only commands do not need it (a copy sent for audit).
    std::fs::remove_file(format!("{}.device.jwk", ledger.display())).unwrap();
    let before: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(&ledger, std::fs::Permissions::from_mode(0o444)).unwrap();
    let root = unsafe { libc::geteuid() } == 0;
    let as_reader = |args: &[&str]| {
        let mut c = if root {
            // An unprivileged user: root can write anywhere, so the check would prove nothing.
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(env!("CARGO_BIN_EXE_evoucher"));
            c
        } else {
            bin()
        };
        c.args(args).current_dir("/").output().unwrap()
    };
    if root {
        // The unprivileged user must be able to reach the directory.
        let mut p = base.clone();
        while let Some(parent) = p.parent() {
            let m = std::fs::metadata(&p).unwrap().permissions().mode();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m | 0o005)).unwrap();
            p = parent.to_owned();
            if p == std::env::temp_dir() {
                break;
            }
        }
    }
    let l = ledger.to_str().unwrap();
    let o = as_reader(&["ledger", "verify", "--json", "--ledger", l]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (j["intact"].as_bool(), j["entries"].as_i64()),
        (Some(true), Some(3))
    );
    let o = as_reader(&["ledger", "list", "--ledger", l]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout(&o).lines().count(), 3);
    assert!(stdout(&o).contains("waiting"), "sync status shown");
    let o = as_reader(&["ledger", "export", "--csv", "--ledger", l]);
    assert_eq!(o.status.code(), Some(0));
    // Writing is refused with a clear error, and nothing appeared in the directory.
    let o = as_reader(&[
        "redeem",
        "--ledger",
        l,
        "--trust",
        &trust,
        "--provider",
        "SP-1",
        "--at",
        "2027-01-01T00:00:00Z",
        &texts[0],
    ]);
    assert_eq!(o.status.code(), Some(2));
    let after: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after);
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Output into a closed pipe (`evoucher ledger list … | head -1`) ends quietly: no panic, no
/// message, the process ends as `cat` would (SIGPIPE).
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let d = tmp("pipe");
    let (trust, texts) = vouchers(&d, 4);
    let ledger = d.join("shop.db");
    for t in &texts {
        assert_eq!(redeem(&ledger, &trust, "SP-1", t).status.code(), Some(0));
    }
    for args in [
        vec!["ledger", "list", "--ledger", ledger.to_str().unwrap()],
        vec![
            "ledger",
            "export",
            "--csv",
            "--ledger",
            ledger.to_str().unwrap(),
        ],
    ] {
        // Enough output to fill the pipe after the reader has gone: list the ledger many
        // times over by running the command in a loop until the pipe is closed.
        let mut child = bin()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // The reader is gone (dropped above) before the command finishes writing.
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            out.status.code() == Some(0) || out.status.signal() == Some(libc::SIGPIPE),
            "{:?}",
            out.status
        );
        assert_ne!(out.status.code(), Some(101));
    }
}

/// Cells a spreadsheet would run as a formula are neutralised in CSV the CLI writes.
#[test]
fn csv_cells_are_safe_to_open_in_a_spreadsheet() {
    let d = tmp("csv");
    let (trust, texts) = vouchers(&d, 2);
    let ledger = d.join("shop.db");
    let evil = "=HYPERLINK(\"http://x.example\",\"click\")";
    assert_eq!(
        redeem(&ledger, &trust, evil, &texts[0]).status.code(),
        Some(0)
    );
    assert_eq!(
        redeem(&ledger, &trust, "+254700000000", &texts[1])
            .status
            .code(),
        Some(0)
    );
    let o = run(&[
        "ledger",
        "export",
        "--csv",
        "--ledger",
        ledger.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let mut r = csv::Reader::from_reader(o.stdout.as_slice());
    let providers: Vec<String> = r.records().map(|x| x.unwrap()[5].to_owned()).collect();
    assert_eq!(providers, [format!("'{evil}"), "'+254700000000".to_owned()]);
}

/// A JWKS with a key evoucher cannot use: the others still work, and `trust show` lists the
/// skipped key with its reason.
#[test]
fn trust_show_lists_skipped_keys_with_their_reason() {
    let d = tmp("skipped");
    let (trust, texts) = vouchers(&d, 1);
    let mut jwks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trust).unwrap()).unwrap();
    jwks["keys"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"kty": "oct", "kid": "hmac-key", "k": "AQAB"}));
    jwks["keys"].as_array_mut().unwrap().push(
        serde_json::json!({"kty": "RSA", "kid": "enc-key", "use": "enc", "n": "AQAB", "e": "AQAB"}),
    );
    std::fs::write(&trust, jwks.to_string()).unwrap();
    let o = run(&["trust", "show", "--trust", &trust]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    assert!(
        out.contains("skipped hmac-key (oct): key type oct is not used by evoucher"),
        "{out}"
    );
    assert!(
        out.contains("skipped enc-key (RSA): use is \"enc\""),
        "{out}"
    );
    let o = run(&["trust", "show", "--json", "--trust", &trust]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["skipped"].as_array().unwrap().len(), 2);
    assert_eq!(
        run(&[
            "verify",
            "--trust",
            &trust,
            "--at",
            "2027-01-01T00:00:00Z",
            &texts[0]
        ])
        .status
        .code(),
        Some(0)
    );
}
