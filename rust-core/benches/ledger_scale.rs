//! The ledger at scale: with EVOUCHER_BENCH_ROWS (default 1,000,000) redemptions already in
//! it, time durable redemptions one by one (p50, p99, per second) and history lookups, and
//! measure bytes per redemption. Beside it, the same number of bare durable SQLite inserts
//! into a table of the same size (the peer). The prefilled ledger is cached in
//! target/bench-ledger/ so later runs skip the prefill.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use evoucher_core::ledger::{Ledger, Options, RedeemRequest, Redeemer};
use support::*;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rows: u64 = std::env::var("EVOUCHER_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let measure: u64 = std::env::var("EVOUCHER_BENCH_MEASURE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000);
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-ledger");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("ledger-{rows}.db"));
    let key = key();
    let who = Redeemer {
        provider: "SP-1",
        category: None,
        device: "bench",
    };

    let have = if path.exists() {
        Ledger::open(&path).unwrap().stats().unwrap().entries as u64
    } else {
        0
    };
    if have < rows {
        println!(
            "prefilling {} redemptions (cached in {}) ...",
            rows - have,
            path.display()
        );
        let l = Ledger::open_with(
            &path,
            Options {
                durable: false,
                ..Options::default()
            },
        )
        .unwrap();
        let t = Instant::now();
        for n in have..rows {
            l.redeem(&voucher(&key, n), &who, &RedeemRequest::Whole, NOW)
                .unwrap();
            if (n + 1) % 100_000 == 0 {
                println!("  {} rows, {:.0} s", n + 1, t.elapsed().as_secs_f64());
            }
        }
    }
    let l = Ledger::open(&path).unwrap();
    let base = l.stats().unwrap().entries as u64;
    let vouchers: Vec<_> = (0..measure)
        .map(|i| voucher(&key, 10_000_000_000 + base + i))
        .collect();

    let mut lat = Vec::with_capacity(measure as usize);
    let t = Instant::now();
    for v in &vouchers {
        let s = Instant::now();
        l.redeem(v, &who, &RedeemRequest::Whole, NOW).unwrap();
        lat.push(s.elapsed());
    }
    let total = t.elapsed();
    let per_sec = measure as f64 / total.as_secs_f64();

    let mut hist = Vec::new();
    for i in 0..10_000u64 {
        let id = voucher(&key, (i * 7919) % rows).voucher.id;
        let s = Instant::now();
        let h = l.history(&id).unwrap();
        hist.push(s.elapsed());
        assert_eq!(h.len(), 1);
    }

    // Peer: bare durable inserts of rows of the same size on the same disk.
    let peer_path = dir.join("peer.db");
    let _ = std::fs::remove_file(&peer_path);
    let raw = rusqlite::Connection::open(&peer_path).unwrap();
    raw.pragma_update(None, "journal_mode", "WAL").unwrap();
    raw.pragma_update(None, "synchronous", "FULL").unwrap();
    raw.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
        .unwrap();
    let row = vec![7u8; 600];
    let mut peer = Vec::new();
    let t = Instant::now();
    for _ in 0..measure {
        let s = Instant::now();
        raw.execute("INSERT INTO t (v) VALUES (?1)", [&row])
            .unwrap();
        peer.push(s.elapsed());
    }
    let peer_total = t.elapsed();
    drop(raw);
    let _ = std::fs::remove_file(&peer_path);

    drop(l);
    let c = rusqlite::Connection::open(&path).unwrap();
    c.pragma_update(None, "wal_checkpoint", "TRUNCATE").unwrap();
    let (pages, page_size): (i64, i64) = (
        c.pragma_query_value(None, "page_count", |r| r.get(0))
            .unwrap(),
        c.pragma_query_value(None, "page_size", |r| r.get(0))
            .unwrap(),
    );
    let n = base + measure;
    let bytes_per = (pages * page_size) as f64 / n as f64;

    let p50 = pct(&mut lat, 0.50);
    let p99 = pct(&mut lat, 0.99);
    let pp50 = pct(&mut peer, 0.50);
    let pp99 = pct(&mut peer, 0.99);
    println!();
    println!("ledger with {base} redemptions, {measure} more measured one by one (durable: WAL, synchronous=FULL)");
    println!(
        "  redeem              p50 {:7.3} ms   p99 {:7.3} ms   {:8.0} per second",
        ms(p50),
        ms(p99),
        per_sec
    );
    println!(
        "  peer: bare insert   p50 {:7.3} ms   p99 {:7.3} ms   {:8.0} per second",
        ms(pp50),
        ms(pp99),
        measure as f64 / peer_total.as_secs_f64()
    );
    println!(
        "  ratio redeem/peer   p50 {:7.2}x   p99 {:7.2}x",
        ms(p50) / ms(pp50),
        ms(p99) / ms(pp99)
    );
    println!(
        "  history lookup      p50 {:7.3} ms   p99 {:7.3} ms",
        ms(pct(&mut hist, 0.5)),
        ms(pct(&mut hist, 0.99))
    );
    println!(
        "  size                {:.0} bytes per redemption; 100,000 redemptions = {:.1} MB",
        bytes_per,
        bytes_per * 100_000.0 / 1e6
    );
    println!(
        "goals: p99 < 5 ms [{}], >= 1000 per second [{}], 100k under 100 MB [{}]",
        if ms(p99) < 5.0 { "met" } else { "NOT met" },
        if per_sec >= 1000.0 { "met" } else { "NOT met" },
        if bytes_per * 100_000.0 < 100e6 {
            "met"
        } else {
            "NOT met"
        }
    );
}
