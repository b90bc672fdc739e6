//! A provider's phone (the CLI on an enrolled ledger) against a real `evoucher serve`, walked
//! through every state the server can put it in, and out again: accepted, conflict, invalid,
//! suspect, a server restored from a backup, a phone restored from a backup, a revoked device.
//! Also the first hour of a new user: enrolment that fails leaves nothing, codes used or
//! expired are named, one device id everywhere, a clear message before the first sync.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

struct Phone<'a> {
    ledger: String,
    server: &'a str,
}

impl Phone<'_> {
    fn redeem(&self, text: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
        let mut args = vec!["redeem", "--json", "--ledger", &self.ledger];
        args.extend_from_slice(extra);
        args.push(text);
        let o = run(&args);
        (
            o.status.code(),
            serde_json::from_slice(&o.stdout).unwrap_or_default(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
    fn sync(&self) -> (Option<i32>, Value, String) {
        let o = run(&["sync", "--json", "--ledger", &self.ledger]);
        (
            o.status.code(),
            serde_json::from_slice(&o.stdout).unwrap_or_default(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
    fn sync_text(&self) -> (Option<i32>, String) {
        let o = run(&["sync", "--ledger", &self.ledger]);
        (o.status.code(), stdout(&o))
    }
    fn list(&self) -> Vec<Value> {
        let o = run(&["ledger", "list", "--json", "--ledger", &self.ledger]);
        assert_eq!(o.status.code(), Some(0));
        stdout(&o)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn code(addr: &str, provider: &str) -> String {
    let (st, c) = call(
        addr,
        "POST",
        &format!("/api/v1/providers/{provider}/enrolment-codes"),
        Some(ADMIN),
        None,
    );
    assert_eq!(st, 201, "{c}");
    c["code"].as_str().unwrap().to_owned()
}

fn enrol<'a>(d: &Path, addr: &'a str, name: &str, provider: &str) -> (Phone<'a>, Value) {
    let ledger = d.join(format!("{name}.db")).to_str().unwrap().to_owned();
    let o = run(&[
        "enrol",
        "--json",
        "--server",
        &format!("http://{addr}"),
        "--code",
        &code(addr, provider),
        "--ledger",
        &ledger,
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    (
        Phone {
            ledger,
            server: addr,
        },
        serde_json::from_slice(&o.stdout).unwrap(),
    )
}

fn issue(addr: &str, program: &str, n: usize) -> Vec<String> {
    let list: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("{program}-{i}")}))
        .collect();
    let (st, v) = call(
        addr,
        "POST",
        &format!("/api/v1/programs/{program}/vouchers"),
        Some(ADMIN),
        Some(&json!({"beneficiaries": list})),
    );
    assert_eq!(st, 201, "{v}");
    v["vouchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["text"].as_str().unwrap().to_owned())
        .collect()
}

fn statuses(report: &Value) -> Vec<String> {
    report["not_accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["status"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_phone_recovers_from_every_state_the_server_can_put_it_in() {
    let d = tmp("phone-states");
    let db = d.join("server.db");
    let url = format!("sqlite://{}", db.display());
    let (server, addr) = serve_with(&d, &url, &[]);
    for (id, extra) in [
        ("food", json!({})),
        ("elsewhere", json!({"providers": ["SP-2", "SP-3"]})),
    ] {
        let mut p = json!({"id": id, "name": id, "issuer": "https://p.example", "currency": "KES", "amount": 1000});
        p.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        assert_eq!(
            call(&addr, "POST", "/api/v1/programs", Some(ADMIN), Some(&p)).0,
            201
        );
    }
    for sp in ["SP-1", "SP-2", "SP-3"] {
        call(
            &addr,
            "POST",
            "/api/v1/providers",
            Some(ADMIN),
            Some(&json!({"id": sp, "name": sp, "category": "grocery"})),
        );
    }
    let food = issue(&addr, "food", 12);
    let elsewhere = issue(&addr, "elsewhere", 1);
    let (phone, enrolled) = enrol(&d, &addr, "phone", "SP-1");
    assert_eq!(enrolled["category"], "grocery");

    // Before the first sync there is no trust list: said so, not "No such file or directory".
    let (code, _, err) = phone.redeem(&food[0], &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("run `evoucher sync"), "{err}");
    assert_eq!(phone.sync().0, Some(0));

    // Another provider asked for on an enrolled ledger: refused offline, nothing recorded.
    let (code, _, err) = phone.redeem(&food[0], &["--provider", "SP-9"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("enrolled for provider SP-1, not SP-9"),
        "{err}"
    );
    assert!(phone.list().is_empty());

    // accepted: nothing to do.
    assert_eq!(phone.redeem(&food[0], &[]).0, Some(0));
    let (code, r, _) = phone.sync();
    assert_eq!((code, r["accepted"].as_i64()), (Some(0), Some(1)), "{r}");

    // conflict: a second phone redeemed the same voucher offline. Its sync names the entry and
    // the first redemption (exit 1); the entry stays in its ledger marked conflict, and the
    // next sync has nothing left to do.
    let (phone2, _) = enrol(&d, &addr, "phone2", "SP-1");
    assert_eq!(phone2.sync().0, Some(0));
    assert_eq!(phone2.redeem(&food[0], &[]).0, Some(0));
    let (code, out) = phone2.sync_text();
    assert_eq!(code, Some(1));
    assert!(
        out.contains("CONFLICT") && out.contains("first redemption"),
        "{out}"
    );
    assert_eq!(phone2.list()[0]["sync"], "conflict");
    assert_eq!(phone2.sync().0, Some(0));

    // invalid: a voucher of a program that allows only other providers (the format cannot
    // say so offline). The server stores it invalid and the chain goes on: the phone is not
    // stuck, its next redemption syncs.
    assert_eq!(phone.redeem(&elsewhere[0], &[]).0, Some(0));
    assert_eq!(phone.redeem(&food[1], &[]).0, Some(0));
    let (code, r, _) = phone.sync();
    assert_eq!(code, Some(1));
    assert_eq!(statuses(&r), ["invalid"]);
    assert!(r["not_accepted"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("does not allow this provider"));
    assert_eq!(
        (r["accepted"].as_i64(), r["remaining"].as_i64()),
        (Some(1), Some(0))
    );

    // suspect: the phone's clock an hour ahead. Flagged for review, not paid; the chain goes
    // on and later entries at the right time are accepted.
    let ahead = evoucher_core::time::rfc3339(evoucher_core::ledger_now() + 3600);
    assert_eq!(phone.redeem(&food[2], &["--at", &ahead]).0, Some(0));
    let (code, r, _) = phone.sync();
    assert_eq!(
        (code, statuses(&r)),
        (Some(1), vec!["suspect".to_owned()]),
        "{r}"
    );
    assert_eq!(phone.redeem(&food[3], &[]).0, Some(0));
    assert_eq!(phone.sync().0, Some(0));

    // The server restored from a backup taken now loses what the phone syncs next: the phone
    // sends those entries again, and nothing is lost.
    // A copy of the live database with its write-ahead log is a consistent backup here (the
    // server is idle between requests).
    std::fs::copy(&db, d.join("backup.db")).unwrap();
    let _ = std::fs::copy(d.join("server.db-wal"), d.join("backup.db-wal"));
    assert_eq!(phone.redeem(&food[4], &[]).0, Some(0));
    assert_eq!(phone.redeem(&food[5], &[]).0, Some(0));
    assert_eq!(phone.sync().0, Some(0));
    drop(server);
    std::fs::copy(d.join("backup.db"), &db).unwrap();
    let _ = std::fs::remove_file(d.join("server.db-shm"));
    let _ = std::fs::remove_file(d.join("server.db-wal"));
    let _ = std::fs::copy(d.join("backup.db-wal"), d.join("server.db-wal"));
    let (_server, addr2) = serve_with(&d, &url, &[]);
    let phone = Phone {
        ledger: phone.ledger,
        server: &addr2,
    };
    assert_eq!(phone.redeem(&food[6], &[]).0, Some(0));
    let (code, r, err) = phone.sync_with(&addr2);
    assert_eq!(code, Some(0), "{r} {err}");
    assert_eq!(
        (r["resent"].as_i64(), r["accepted"].as_i64()),
        (Some(2), Some(3)),
        "{r}"
    );
    // All eight of its entries, the two the restore lost among them.
    assert_eq!(
        server_statuses(
            &addr2,
            &std::fs::read_to_string(format!("{}.token", phone.ledger)).unwrap()
        )
        .len(),
        8
    );

    // The phone restored from an old copy of its ledger: its chain is behind the server's.
    // The server rejects the first new entry (it cannot be placed); the sync says so and
    // points to the documentation, and nothing is stored from it.
    let (phone3, _) = enrol(&d, &addr2, "phone3", "SP-1");
    phone3.sync_with(&addr2);
    assert_eq!(phone3.redeem(&food[7], &[]).0, Some(0));
    std::fs::copy(&phone3.ledger, d.join("phone3-old.db")).unwrap();
    let _ = std::fs::copy(
        format!("{}-wal", phone3.ledger),
        d.join("phone3-old.db-wal"),
    );
    assert_eq!(phone3.sync_with(&addr2).0, Some(0));
    assert_eq!(phone3.redeem(&food[8], &[]).0, Some(0));
    assert_eq!(phone3.sync_with(&addr2).0, Some(0));
    for suffix in ["", "-wal"] {
        let _ = std::fs::copy(
            d.join(format!("phone3-old.db{suffix}")),
            format!("{}{suffix}", phone3.ledger),
        );
    }
    let _ = std::fs::remove_file(format!("{}-shm", phone3.ledger));
    assert_eq!(phone3.redeem(&food[9], &[]).0, Some(0));
    let (code, out) = phone3.sync_text_with(&addr2);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("REJECTED") && out.contains("docs/ledger.md"),
        "{out}"
    );

    // A revoked device: the token stops working; the sync says what to do.
    let dev = enrolled["device_id"].as_str().unwrap().to_owned();
    assert_eq!(
        call(
            &addr2,
            "POST",
            &format!("/api/v1/devices/{dev}/revoke"),
            Some(ADMIN),
            None
        )
        .0,
        200
    );
    let (code, _, err) = phone.sync_with(&addr2);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("revoked") && err.contains("enrol again"),
        "{err}"
    );
}

impl Phone<'_> {
    /// Sync with an explicit server (after the server moved to another port).
    fn sync_with(&self, addr: &str) -> (Option<i32>, Value, String) {
        let o = run(&[
            "sync",
            "--json",
            "--ledger",
            &self.ledger,
            "--server",
            &format!("http://{addr}"),
        ]);
        (
            o.status.code(),
            serde_json::from_slice(&o.stdout).unwrap_or_default(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
    fn sync_text_with(&self, addr: &str) -> (Option<i32>, String) {
        let o = run(&[
            "sync",
            "--ledger",
            &self.ledger,
            "--server",
            &format!("http://{addr}"),
        ]);
        (o.status.code(), stdout(&o))
    }
}

#[test]
fn the_first_hour_enrolment_and_one_device_id() {
    let d = tmp("first-hour");
    let url = format!("sqlite://{}", d.join("server.db").display());
    let (_server, addr) = serve_with(&d, &url, &["--enrolment-code-days", "1"]);
    call(
        &addr,
        "POST",
        "/api/v1/programs",
        Some(ADMIN),
        Some(
            &json!({"id": "food", "name": "Food", "issuer": "https://p.example", "currency": "KES", "amount": 1000}),
        ),
    );
    call(
        &addr,
        "POST",
        "/api/v1/providers",
        Some(ADMIN),
        Some(&json!({"id": "SP-1", "name": "Shop"})),
    );
    let server = format!("http://{addr}");
    // A failed enrolment leaves no ledger and no key behind, and says why.
    let ledger = d.join("shop.db");
    let l = ledger.to_str().unwrap();
    let o = run(&[
        "enrol",
        "--server",
        &server,
        "--code",
        "not-a-real-code",
        "--ledger",
        l,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unknown enrolment code"),
        "{o:?}"
    );
    let left: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("shop"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A code used twice is named as such.
    let c = code(&addr, "SP-1");
    let o = run(&[
        "enrol", "--json", "--server", &server, "--code", &c, "--ledger", l,
    ]);
    assert_eq!(o.status.code(), Some(0));
    let e: Value = serde_json::from_slice(&o.stdout).unwrap();
    let o = run(&[
        "enrol",
        "--server",
        &server,
        "--code",
        &c,
        "--ledger",
        d.join("other.db").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already used"),
        "{o:?}"
    );
    // An enrolled ledger enrols once.
    let o = run(&[
        "enrol",
        "--server",
        &server,
        "--code",
        &code(&addr, "SP-1"),
        "--ledger",
        l,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already enrolled"),
        "{o:?}"
    );
    // One device id: what enrol printed is what the entries carry and what the server lists.
    let phone = Phone {
        ledger: l.to_owned(),
        server: &addr,
    };
    assert_eq!(phone.sync().0, Some(0));
    let text = issue(&addr, "food", 1).remove(0);
    assert_eq!(phone.redeem(&text, &[]).0, Some(0));
    assert_eq!(phone.list()[0]["device"], e["device_id"]);
    assert_eq!(phone.list()[0]["sync"], "waiting");
    assert_eq!(phone.sync().0, Some(0));
    assert_eq!(phone.list()[0]["sync"], "accepted");
    let devices = call(&addr, "GET", "/api/v1/devices", Some(ADMIN), None).1;
    assert_eq!(devices["devices"][0]["id"], e["device_id"]);
    let _ = phone.server;
}

/// Every flag of every command has a help line.
#[test]
fn every_flag_of_every_command_is_explained() {
    let top = stdout(&run(&["--help"]));
    let commands: Vec<String> = top
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 12, "{commands:?}");
    let mut all = Vec::new();
    for c in &commands {
        let help = stdout(&run(&[c, "--help"]));
        if help.contains("Commands:") {
            for sub in help
                .split("Commands:")
                .nth(1)
                .unwrap()
                .split("Options:")
                .next()
                .unwrap()
                .lines()
            {
                if let Some(s) = sub.split_whitespace().next().filter(|s| *s != "help") {
                    all.push((format!("{c} {s}"), stdout(&run(&[c, s, "--help"]))));
                }
            }
        } else {
            all.push((c.clone(), help));
        }
    }
    for (cmd, help) in all {
        let options = help.split("Options:").nth(1).unwrap_or("");
        let lines: Vec<&str> = options.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            if !t.starts_with('-') {
                continue;
            }
            // A flag's text is on its line (after two spaces) or on the next, indented further.
            let flag = t.split("  ").next().unwrap();
            let same_line = t.len() > flag.len() && !t[flag.len()..].trim().is_empty();
            let next_line = lines.get(i + 1).is_some_and(|n| {
                let n2 = n.trim_start();
                !n2.is_empty() && !n2.starts_with('-') && n.len() - n2.len() > line.len() - t.len()
            });
            assert!(
                same_line || next_line,
                "`evoucher {cmd}`: {flag} has no help text"
            );
        }
    }
}
