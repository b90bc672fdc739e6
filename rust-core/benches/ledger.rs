//! criterion: a durable redemption (verify-free: the voucher is already verified) beside a bare
//! durable SQLite insert of a row of the same size (the peer), and a voucher history lookup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use evoucher_core::ledger::{Ledger, RedeemRequest, Redeemer};
use support::*;

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("evoucher-bench-ledger-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = key();
    let l = Ledger::open(&dir.join("l.db")).unwrap();
    let who = Redeemer {
        provider: "SP-1",
        category: None,
        device: "bench",
    };
    for n in 0..10_000 {
        l.redeem(&voucher(&key, n), &who, &RedeemRequest::Whole, NOW)
            .unwrap();
    }
    let mut next = 10_000u64;
    let mut g = c.benchmark_group("ledger");
    g.sample_size(50);
    g.bench_function("redeem_durable", |b| {
        b.iter_batched(
            || {
                next += 1;
                voucher(&key, next)
            },
            |v| l.redeem(&v, &who, &RedeemRequest::Whole, NOW).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let probe = voucher(&key, 1234).voucher.id;
    g.bench_function("history_lookup", |b| b.iter(|| l.history(&probe).unwrap()));

    // Peer: a bare durable insert (WAL, synchronous=FULL) of a row of the same size.
    let raw = rusqlite::Connection::open(dir.join("raw.db")).unwrap();
    raw.pragma_update(None, "journal_mode", "WAL").unwrap();
    raw.pragma_update(None, "synchronous", "FULL").unwrap();
    raw.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
        .unwrap();
    let row = vec![7u8; 600];
    g.bench_function("peer_sqlite_insert_durable", |b| {
        b.iter(|| {
            raw.execute("INSERT INTO t (v) VALUES (?1)", [&row])
                .unwrap()
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
