//! Reimbursement at scale, on the real server (`evoucher serve`, release build, a separate
//! process), run by `scripts/bench-claims.sh`. Not criterion: one long run per database,
//! each step timed, with a peer measured in the same run.
//!
//! A provider's phone redeems EVOUCHER_BENCH_CLAIM_LINES (default 10,000) vouchers offline and
//! syncs them; then the claim: made for "everything unclaimed" with a 1 MiB receipt photo,
//! submitted, read whole by the accountant (every line), approved by the accountant with one
//! line lowered and by the cash manager (which makes and signs the payable); the payable PDF
//! downloaded and checked by `evoucher payable verify` as a separate process. Printed: each
//! step's time, the server's CPU time and memory before and after (peak), and the verifier's
//! peak memory. Peer: the sync of the same redemptions through the sync API, which the phone
//! did anyway: reimbursing them should cost no more than recording them.
//!
//! Environment: EVOUCHER_BIN (the `evoucher` binary), EVOUCHER_BENCH_DATABASES (space-separated
//! URLs; default a SQLite file), EVOUCHER_BENCH_CLAIM_LINES (default 10,000).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use evoucher_core::ledger::{Ledger, Options, RedeemRequest, Redeemer};
use serde_json::{json, Value};

mod common;
use common::*;

fn get(c: &reqwest::blocking::Client, url: &str, token: &str) -> reqwest::blocking::Response {
    let r = c.get(url).bearer_auth(token).send().unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r
}

/// A JPEG-looking photo of `len` bytes (the server checks the type by its first bytes).
fn photo(len: usize) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0];
    let mut x: u32 = 0x1234_5678;
    while b.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b.push(x as u8);
    }
    b
}

/// Run `evoucher payable verify` on a PDF; its exit code, wall time and peak memory (MiB).
/// Reaped by `wait4`, which gives this child's own resource usage.
#[allow(clippy::zombie_processes)]
fn verify_process(pdf: &std::path::Path, jwks: &std::path::Path) -> (i32, f64, f64) {
    let bin = std::env::var("EVOUCHER_BIN").unwrap();
    let t = Instant::now();
    let child = std::process::Command::new(bin)
        .args(["payable", "verify"])
        .arg(pdf)
        .arg("--trust")
        .arg(jwks)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for the child we spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet waited for; the pointers are to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let secs = t.elapsed().as_secs_f64();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, secs, usage.ru_maxrss as f64 / 1024.0)
}

fn run(database: &str, dir: &std::path::Path, n: usize) {
    let server = start(database, dir);
    let base = server.base.clone();
    let pid = server.child.id();
    let c = reqwest::blocking::Client::new();
    post(
        &c,
        &format!("{base}/api/v1/programs"),
        ADMIN,
        &json!({"id": "bench", "name": "Bench", "issuer": "https://bench.example", "currency": "KES", "amount": 1000,
                "payer": {"name": "Bench Program", "account": "KE00BENCH0001", "bic": "CBKEKENX"}}),
    );
    post(
        &c,
        &format!("{base}/api/v1/providers"),
        ADMIN,
        &json!({"id": "SP-1", "name": "Mama Mboga", "payout": {"kind": "bank", "holder": "Mama Mboga Ltd", "number": "0123456789012", "bank": "Equity Bank", "bic": "EQBLKENA"}}),
    );
    let ids: Vec<String> = (0..n).map(|i| format!("B-{i:07}")).collect();
    let vouchers = issue(&c, &base, "bench", &ids);
    let jwks = get(&c, &format!("{base}/api/v1/trust"), ADMIN)
        .text()
        .unwrap();
    let trust = evoucher_core::TrustStore::from_jwks_json(&jwks).unwrap();

    // The phone: enrol, redeem every voucher offline.
    let ledger = Ledger::open_with(
        &dir.join("phone.db"),
        Options {
            durable: false,
            ..Options::default()
        },
    )
    .unwrap();
    let device = enrol(&c, &base, "SP-1", &ledger.device_public());
    let now = evoucher_core::ledger_now();
    let who = Redeemer {
        provider: "SP-1",
        category: None,
        device: "phone",
    };
    for v in &vouchers {
        let v = evoucher_core::verify(v["text"].as_str().unwrap(), &trust, now).unwrap();
        ledger.redeem(&v, &who, &RedeemRequest::Whole, now).unwrap();
    }
    let out = ledger.outbox(n).unwrap();

    // Peer: the sync of these redemptions (batches of 500, one phone).
    let t = Instant::now();
    let mut accepted = 0;
    for b in out.chunks(500) {
        let r = post(
            &c,
            &format!("{base}/api/v1/sync/redemptions"),
            &device,
            &json!({ "entries": b }),
        );
        accepted += r["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["status"] == "accepted")
            .count();
    }
    let sync_secs = t.elapsed().as_secs_f64();
    assert_eq!(accepted, n, "every redemption accepted");
    let acct = person_token(&c, &base, "acct", "accountant");
    let cash = person_token(&c, &base, "cash", "cash_manager");
    let (rss0, _) = memory_mib(pid);
    let cpu0 = cpu_seconds(pid);

    let mut steps: Vec<(&str, f64)> = Vec::new();
    let total = Instant::now();
    // The claim: everything unclaimed, a receipt photo, submitted.
    let t = Instant::now();
    let claim = post(
        &c,
        &format!("{base}/api/v1/sync/claims"),
        &device,
        &json!({"key": "bench-claim", "program": "bench", "note": "the month's redemptions"}),
    );
    let id = claim["id"].as_str().unwrap().to_owned();
    assert_eq!(claim["line_count"].as_i64(), Some(n as i64), "{claim}");
    steps.push(("claim made (every line valued)", t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let doc = photo(1 << 20);
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&doc));
    let r = c
        .put(format!("{base}/api/v1/sync/claims/{id}/documents/{sha}"))
        .bearer_auth(&device)
        .header("content-type", "application/octet-stream")
        .body(doc)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "document: {}", r.status());
    post(
        &c,
        &format!("{base}/api/v1/sync/claims/{id}/submit"),
        &device,
        &json!({}),
    );
    steps.push(("1 MiB photo uploaded, submitted", t.elapsed().as_secs_f64()));
    // The accountant reads it whole, lowers one line and approves.
    let t = Instant::now();
    let full: Value = get(&c, &format!("{base}/api/v1/claims/{id}"), &acct)
        .json()
        .unwrap();
    let lines = full["lines"].as_array().unwrap();
    assert_eq!(lines.len(), n);
    steps.push(("read whole by the accountant", t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let first = lines[0]["redemption"].as_str().unwrap();
    post(
        &c,
        &format!("{base}/api/v1/claims/{id}/decision"),
        &acct,
        &json!({"stage": 1, "decision": "approve", "lines": [{"redemption": first, "approved": 500, "reason": "half on the receipt"}]}),
    );
    steps.push((
        "stage 1 approved (a line lowered)",
        t.elapsed().as_secs_f64(),
    ));
    let t = Instant::now();
    let done = post(
        &c,
        &format!("{base}/api/v1/claims/{id}/decision"),
        &cash,
        &json!({"stage": 2, "decision": "approve"}),
    );
    assert_eq!(done["state"].as_str(), Some("payable"), "{done}");
    let pay = done["payable"]["id"].as_str().unwrap().to_owned();
    steps.push((
        "stage 2 approved, payable signed",
        t.elapsed().as_secs_f64(),
    ));
    let t = Instant::now();
    let pdf = get(&c, &format!("{base}/api/v1/payables/{pay}/pdf"), &cash)
        .bytes()
        .unwrap();
    steps.push(("payable PDF written", t.elapsed().as_secs_f64()));
    let server_secs = total.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu0;
    let (rss1, peak) = memory_mib(pid);
    let pdf_path = dir.join("payable.pdf");
    std::fs::write(&pdf_path, &pdf).unwrap();
    let jwks_path = dir.join("payables.jwks");
    std::fs::write(
        &jwks_path,
        get(&c, &format!("{base}/api/v1/payables/trust"), ADMIN)
            .text()
            .unwrap(),
    )
    .unwrap();
    let (code, verify_secs, verify_peak) = verify_process(&pdf_path, &jwks_path);
    assert_eq!(code, 0, "payable verify accepts the PDF");
    let expected = (n as i64 - 1) * 1000 + 500;
    assert_eq!(done["approved"].as_i64(), Some(expected), "{done}");
    drop(server);

    let kind = if database.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "claims {kind}: a claim of {n} redemptions ({} approved), one phone, one 1 MiB photo",
        evoucher_core::voucher::format_amount(expected as u64, "KES")
    );
    for (what, secs) in &steps {
        println!("  {what:<36} {:>8.3} s", secs);
    }
    println!(
        "  {:<36} {:>8.3} s (claim made to PDF, over HTTP)",
        "total on the server", server_secs
    );
    println!(
        "  {:<36} {:>8.3} s, peak memory {:.1} MiB ({} bytes of PDF)",
        "payable verify (its own process)",
        verify_secs,
        verify_peak,
        pdf.len()
    );
    println!(
        "  server process: {:.2} CPU s; RSS {:.1} MiB before the claim, {:.1} MiB after, peak {:.1} MiB{}",
        cpu,
        rss0,
        rss1,
        peak,
        if kind == "PostgreSQL" { " (PostgreSQL's own processes not counted)" } else { "" }
    );
    println!(
        "  peer, syncing the same {n} redemptions (batches of 500): {:.3} s; claim-to-PDF/sync = {:.2}",
        sync_secs,
        server_secs / sync_secs
    );
}

fn main() {
    let n = env_usize("EVOUCHER_BENCH_CLAIM_LINES", 10_000).max(1);
    let work = std::env::temp_dir().join(format!("evoucher-bench-claims-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let databases = std::env::var("EVOUCHER_BENCH_DATABASES").unwrap_or_default();
    let mut dbs: Vec<String> = databases.split_whitespace().map(str::to_owned).collect();
    if dbs.is_empty() {
        dbs.push("sqlite://".into());
    }
    for (i, db) in dbs.iter().enumerate() {
        let dir = work.join(i.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let url = if db == "sqlite://" {
            format!("sqlite://{}", dir.join("server.db").display())
        } else {
            fresh_pg(db, &format!("bench_claims_{}", std::process::id()))
        };
        run(&url, &dir, n);
    }
    let _ = std::fs::remove_dir_all(&work);
}
