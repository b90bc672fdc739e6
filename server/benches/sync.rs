//! Sync ingest and issuance throughput of the real server (`evoucher serve`, release build, a
//! separate process), run by `scripts/bench-sync.sh`. Not criterion: each figure is one long
//! run, printed with a peer measured in the same run on the same database.
//!
//! - ingest: phones (real evoucher-core ledgers) redeem offline, then push their outboxes in
//!   batches of 500 over HTTP, several phones at once; redemptions per second, the server's
//!   CPU time and peak memory. Peer: the same rows inserted straight into the same database,
//!   500 per transaction, with no HTTP and no checks.
//! - issuance: a CSV of beneficiaries imported, vouchers issued to them, and every voucher's PNG
//!   downloaded. Peer: signing and rendering the same number of vouchers in-process, on every
//!   core.
//!
//! Environment: EVOUCHER_BIN (the `evoucher` binary), EVOUCHER_BENCH_DATABASES (space-separated
//! URLs; default a SQLite file), EVOUCHER_BENCH_REDEMPTIONS (default 20,000),
//! EVOUCHER_BENCH_DEVICES (default 8), EVOUCHER_BENCH_ISSUE (default 100,000; 0 skips).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use evoucher_core::ledger::{Ledger, Options, RedeemRequest, Redeemer};

mod common;
use common::*;
use serde_json::{json, Value};

fn ingest(database: &str, dir: &std::path::Path, n: usize, devices: usize) {
    let server = start(database, dir);
    let base = server.base.clone();
    let c = reqwest::blocking::Client::new();
    post(
        &c,
        &format!("{base}/api/v1/programs"),
        ADMIN,
        &json!({"id": "bench", "name": "Bench", "issuer": "https://bench.example", "currency": "KES", "amount": 1000}),
    );
    let ids: Vec<String> = (0..n).map(|i| format!("B-{i:07}")).collect();
    let vouchers = issue(&c, &base, "bench", &ids);
    let jwks: String = c
        .get(format!("{base}/api/v1/trust"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let trust = evoucher_core::TrustStore::from_jwks_json(&jwks).unwrap();
    post(
        &c,
        &format!("{base}/api/v1/providers"),
        ADMIN,
        &json!({"id": "SP-1", "name": "Shop"}),
    );

    // Phones: enrol, redeem their share offline, and prepare the pushes (batches of 500).
    let now = evoucher_core::ledger_now();
    let per = n.div_ceil(devices);
    let mut phones = Vec::new();
    let mut ledgers = Vec::new();
    for d in 0..devices {
        let path = dir.join(format!("phone-{d}.db"));
        let l = Ledger::open_with(
            &path,
            Options {
                durable: false,
                ..Options::default()
            },
        )
        .unwrap();
        let token = enrol(&c, &base, "SP-1", &l.device_public());
        let who = Redeemer {
            provider: "SP-1",
            category: None,
            device: "phone",
        };
        for v in vouchers.iter().skip(d * per).take(per) {
            let v = evoucher_core::verify(v["text"].as_str().unwrap(), &trust, now).unwrap();
            l.redeem(&v, &who, &RedeemRequest::Whole, now).unwrap();
        }
        let out = l.outbox(per).unwrap();
        let bodies: Vec<String> = out
            .chunks(500)
            .map(|b| json!({ "entries": b }).to_string())
            .collect();
        phones.push((token, bodies));
        ledgers.push((l, out.len()));
    }

    let pid = server.child.id();
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    let accepted = push_all(&base, &phones, "accepted");
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu0;
    let (rss, peak) = memory_mib(pid);
    let total: usize = phones.iter().map(|p| p.1.len()).sum();
    assert_eq!(accepted, n, "every redemption accepted once");
    // Every phone sends everything again (its answers were lost): stored entries answer their
    // stored status without being checked again.
    let t1 = Instant::now();
    assert_eq!(
        push_all(&base, &phones, "accepted"),
        n,
        "resent entries answer accepted"
    );
    let resend = t1.elapsed().as_secs_f64();
    // Two phones offline: every phone also redeems the next phone's vouchers, so each of
    // these entries is judged against the redemption accepted before it: a conflict.
    let conflicts = (devices > 1).then(|| {
        let who = Redeemer {
            provider: "SP-1",
            category: None,
            device: "phone",
        };
        let mut second = Vec::new();
        for (d, (l, first)) in ledgers.iter().enumerate() {
            let next = (d + 1) % devices;
            for v in vouchers.iter().skip(next * per).take(per) {
                let v = evoucher_core::verify(v["text"].as_str().unwrap(), &trust, now).unwrap();
                l.redeem(&v, &who, &RedeemRequest::Whole, now).unwrap();
            }
            let out = l.outbox(2 * per).unwrap();
            let bodies: Vec<String> = out[*first..]
                .chunks(500)
                .map(|b| json!({ "entries": b }).to_string())
                .collect();
            second.push((phones[d].0.clone(), bodies));
        }
        let t = Instant::now();
        assert_eq!(
            push_all(&base, &second, "conflict"),
            n,
            "every one a conflict"
        );
        t.elapsed().as_secs_f64()
    });
    drop(server);

    // Peer: the same rows straight into the same database, 500 per transaction, no checks.
    let rows: Vec<Vec<evoucher_core::ledger::Entry>> = phones
        .iter()
        .flat_map(|(_, bodies)| bodies.iter())
        .map(|b| {
            serde_json::from_value(serde_json::from_str::<Value>(b).unwrap()["entries"].clone())
                .unwrap()
        })
        .collect();
    let peer = peer_insert(database, &rows);

    let kind = if database.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!("ingest {kind}: {n} redemptions from {devices} phones in {total} pushes of up to 500");
    println!(
        "  through the sync API: {:.2} s, {:.0} redemptions/s (goal >= 10,000)",
        secs,
        n as f64 / secs
    );
    println!(
        "  the same pushes resent (answers lost): {:.2} s, {:.0} redemptions/s ({:.1}x the first push)",
        resend,
        n as f64 / resend,
        secs / resend
    );
    if let Some(c) = conflicts {
        println!(
            "  the same vouchers redeemed again on other phones: {:.2} s, {:.0} conflicts judged/s ({:.1}x the first push)",
            c,
            n as f64 / c,
            secs / c
        );
    }
    println!(
        "  peer, bare batched INSERT of the same rows: {:.2} s, {:.0} rows/s; API/peer = {:.2}",
        peer,
        n as f64 / peer,
        secs / peer
    );
    println!(
        "  server process: {:.2} CPU s ({:.0} % of one core; {} cores), RSS {:.1} MiB, peak {:.1} MiB{}",
        cpu,
        100.0 * cpu / secs,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        rss,
        peak,
        if kind == "PostgreSQL" { " (PostgreSQL's own processes not counted)" } else { "" }
    );
}

/// Every phone sends its pushes at once, one client thread each; how many entries were
/// answered `status`.
fn push_all(base: &str, phones: &[(String, Vec<String>)], status: &str) -> usize {
    std::thread::scope(|s| {
        let handles: Vec<_> = phones
            .iter()
            .map(|(token, bodies)| {
                s.spawn(move || {
                    let c = reqwest::blocking::Client::new();
                    let mut ok = 0;
                    for b in bodies {
                        let r: Value = c
                            .post(format!("{base}/api/v1/sync/redemptions"))
                            .bearer_auth(token)
                            .header("content-type", "application/json")
                            .body(b.clone())
                            .send()
                            .unwrap()
                            .json()
                            .unwrap();
                        ok += r["results"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .filter(|x| x["status"] == status)
                            .count();
                    }
                    ok
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

fn peer_insert(database: &str, batches: &[Vec<evoucher_core::ledger::Entry>]) -> f64 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(database).await.unwrap();
        sqlx::query("DROP TABLE IF EXISTS bench_peer").execute(&pool).await.unwrap();
        sqlx::query("CREATE TABLE bench_peer (id TEXT PRIMARY KEY, device_id TEXT NOT NULL, seq BIGINT NOT NULL, kind TEXT NOT NULL, voucher_id TEXT NOT NULL, voids TEXT, amount BIGINT, currency TEXT, items TEXT NOT NULL, at BIGINT NOT NULL, received_at BIGINT NOT NULL, status TEXT NOT NULL, conflict_with TEXT, hash TEXT NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        let t0 = Instant::now();
        for (b, entries) in batches.iter().enumerate() {
            let mut tx = pool.begin().await.unwrap();
            for part in entries.chunks(100) {
                let values: Vec<String> = (0..part.len())
                    .map(|i| {
                        let p: Vec<String> = (1..=14).map(|k| format!("${}", i * 14 + k)).collect();
                        format!("({})", p.join(", "))
                    })
                    .collect();
                let sql = format!("INSERT INTO bench_peer VALUES {}", values.join(", "));
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for e in part {
                    q = q
                        .bind(e.id.clone())
                        .bind(format!("dev-{b}"))
                        .bind(e.seq)
                        .bind(e.kind.as_str())
                        .bind(e.voucher_id.to_hex())
                        .bind(e.voids.clone())
                        .bind(e.amount.map(|a| a as i64))
                        .bind(e.currency.clone())
                        .bind(serde_json::to_string(&e.items).unwrap())
                        .bind(e.at)
                        .bind(e.at)
                        .bind("accepted")
                        .bind(None::<String>)
                        .bind(hex::encode(&e.hash));
                }
                q.execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
        let secs = t0.elapsed().as_secs_f64();
        sqlx::query("DROP TABLE bench_peer").execute(&pool).await.unwrap();
        secs
    })
}

fn issuance(database: &str, dir: &std::path::Path, n: usize) {
    let server = start(database, dir);
    let base = server.base.clone();
    let c = reqwest::blocking::Client::new();
    post(
        &c,
        &format!("{base}/api/v1/programs"),
        ADMIN,
        &json!({"id": "print", "name": "Print", "issuer": "https://print.example", "currency": "KES", "amount": 1000}),
    );
    let mut csv = String::from("beneficiary_id,name\n");
    for i in 0..n {
        csv.push_str(&format!("P-{i:07},Beneficiary {i}\n"));
    }
    let t0 = Instant::now();
    for part in csv.lines().skip(1).collect::<Vec<_>>().chunks(200_000) {
        let body = format!("beneficiary_id,name\n{}\n", part.join("\n"));
        let r = c
            .post(format!("{base}/api/v1/programs/print/beneficiaries"))
            .bearer_auth(ADMIN)
            .header("content-type", "text/csv")
            .body(body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().unwrap_or_default());
    }
    let import = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let mut ids = Vec::with_capacity(n);
    loop {
        let j = post(
            &c,
            &format!("{base}/api/v1/programs/print/vouchers"),
            ADMIN,
            &json!({"imported": true}),
        );
        ids.extend(
            j["vouchers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_owned()),
        );
        if j["remaining"] == 0 {
            break;
        }
    }
    let issue = t1.elapsed().as_secs_f64();
    assert_eq!(ids.len(), n);
    let t2 = Instant::now();
    let threads = 4;
    let bytes: usize = std::thread::scope(|s| {
        let hs: Vec<_> = ids
            .chunks(n.div_ceil(threads))
            .map(|part| {
                let base = base.clone();
                s.spawn(move || {
                    let c = reqwest::blocking::Client::new();
                    let mut total = 0;
                    for id in part {
                        let r = c
                            .get(format!("{base}/api/v1/vouchers/{id}/qr.png"))
                            .bearer_auth(ADMIN)
                            .send()
                            .unwrap();
                        assert!(r.status().is_success());
                        total += r.bytes().unwrap().len();
                    }
                    total
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let pngs = t2.elapsed().as_secs_f64();
    let pid = server.child.id();
    let (_, peak) = memory_mib(pid);
    drop(server);

    // Peer: sign and render the same number of vouchers in this process, on every core.
    let key = evoucher_core::IssuerKey::generate().unwrap();
    let now = evoucher_core::ledger_now();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let t3 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..cores {
            let key = &key;
            s.spawn(move || {
                for i in (t..n).step_by(cores) {
                    let v = evoucher_core::VoucherBuilder::new(
                        "https://print.example",
                        "print",
                        &format!("P-{i:07}"),
                    )
                    .times(now, None, now + 90 * 86_400)
                    .value(1000, "KES")
                    .name(&format!("Beneficiary {i}"))
                    .id(evoucher_core::VoucherId::random().unwrap())
                    .build()
                    .unwrap();
                    let text = evoucher_core::encode::encode(&v, key).unwrap().text;
                    let png = evoucher_core::qr::symbol(&text).unwrap().png(8).unwrap();
                    std::hint::black_box(png);
                }
            });
        }
    });
    let peer = t3.elapsed().as_secs_f64();
    let kind = if database.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!("issuance {kind}: {n} beneficiaries");
    println!("  CSV import {import:.2} s; issue {issue:.2} s ({:.0} vouchers/s); all PNGs over HTTP ({threads} clients) {pngs:.2} s ({:.0}/s, {:.1} MB)", n as f64 / issue, n as f64 / pngs, bytes as f64 / 1e6);
    println!(
        "  total {:.2} s; peer, sign + render in-process on every core: {:.2} s; total/peer = {:.2}; server peak RSS {:.1} MiB",
        import + issue + pngs,
        peer,
        (import + issue + pngs) / peer,
        peak
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let n = env_usize("EVOUCHER_BENCH_REDEMPTIONS", 20_000);
    let devices = env_usize("EVOUCHER_BENCH_DEVICES", 8).max(1);
    let issue_n = env_usize("EVOUCHER_BENCH_ISSUE", 100_000);
    let work = std::env::temp_dir().join(format!("evoucher-bench-sync-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let databases = std::env::var("EVOUCHER_BENCH_DATABASES").unwrap_or_default();
    let mut dbs: Vec<String> = databases.split_whitespace().map(str::to_owned).collect();
    if dbs.is_empty() {
        dbs.push("sqlite://".into());
    }
    for (i, db) in dbs.iter().enumerate() {
        for (j, what) in ["ingest", "issue"].iter().enumerate() {
            if *what == "issue" && issue_n == 0 {
                continue;
            }
            let dir = work.join(format!("{i}-{what}"));
            std::fs::create_dir_all(&dir).unwrap();
            let url = if db == "sqlite://" {
                format!("sqlite://{}", dir.join("server.db").display())
            } else {
                // A fresh database per run on the PostgreSQL server.
                fresh_pg(db, &format!("bench_{}_{j}", std::process::id()))
            };
            if *what == "ingest" {
                ingest(&url, &dir, n, devices);
            } else {
                issuance(&url, &dir, issue_n);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
}
