//! The redemption ledger on real SQLite files: behaviour, concurrency across threads and
//! processes, SIGKILL crashes, tampering, migrations, and files that must stay untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use evoucher_core::encode::encode;
use evoucher_core::keys::IssuerKey;
use evoucher_core::ledger::{
    schema, EntryKind, ItemQty, Ledger, LedgerError, Options, RedeemError, RedeemRequest, Redeemer,
    Refusal,
};
use evoucher_core::voucher::{VoucherBuilder, VoucherId};
use evoucher_core::{verify, TrustStore, Verified};
use proptest::prelude::*;

const NOW: i64 = 1_780_000_000;
const SHOP: Redeemer<'static> = Redeemer {
    provider: "SP-1",
    category: Some("grocery"),
    device: "phone-1",
};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("evoucher-ledger-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn issuer() -> IssuerKey {
    IssuerKey::from_seed([11; 32])
}

fn verified(b: VoucherBuilder) -> Verified {
    let v = b.validity(NOW - 1000, NOW + 100_000).build().unwrap();
    let text = encode(&v, &issuer()).unwrap().text;
    let trust = TrustStore::from_keys([issuer().trusted()]).unwrap();
    verify(&text, &trust, NOW).unwrap()
}

fn id(n: u32) -> VoucherId {
    let mut b = [0u8; 16];
    b[12..].copy_from_slice(&n.to_be_bytes());
    VoucherId(b)
}

fn single(n: u32) -> Verified {
    verified(
        VoucherBuilder::new("https://p.example", "prog", "ben")
            .value(1000, "KES")
            .id(id(n)),
    )
}

fn partial(n: u32, value: u64) -> Verified {
    verified(
        VoucherBuilder::new("https://p.example", "prog", "ben")
            .value(value, "KES")
            .partial()
            .id(id(n)),
    )
}

fn refusal(r: Result<evoucher_core::ledger::Receipt, RedeemError>) -> Refusal {
    match r {
        Err(RedeemError::Refused(x)) => x,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn single_use_redeems_once_and_void_restores_it() {
    let d = tmp("single");
    let l = Ledger::open(&d.join("l.db")).unwrap();
    let v = single(1);
    let r = l.redeem(&v, &SHOP, &RedeemRequest::Whole, NOW).unwrap();
    assert_eq!(r.entry.amount, Some(1000));
    assert_eq!(r.entry.currency.as_deref(), Some("KES"));
    assert_eq!(r.entry.voucher_text, v.text);
    assert_eq!(r.entry.seq, 1);
    assert_eq!(r.remaining.amount, Some(0));
    assert_eq!(
        uuid::Uuid::parse_str(&r.entry.id)
            .unwrap()
            .get_version_num(),
        7
    );

    let other = Redeemer {
        provider: "SP-1",
        category: Some("grocery"),
        device: "phone-2",
    };
    match refusal(l.redeem(&v, &other, &RedeemRequest::Whole, NOW + 60)) {
        Refusal::AlreadyRedeemed {
            at,
            provider,
            device,
            entry_id,
        } => {
            assert_eq!(
                (at, provider.as_str(), device.as_str()),
                (NOW, "SP-1", "phone-1")
            );
            assert_eq!(entry_id, r.entry.id);
        }
        x => panic!("{x:?}"),
    }
    assert_eq!(
        refusal(l.redeem(&v, &SHOP, &RedeemRequest::Amount(10), NOW)),
        Refusal::AlreadyRedeemed {
            at: NOW,
            provider: "SP-1".into(),
            device: "phone-1".into(),
            entry_id: r.entry.id.clone()
        }
    );

    let void = l.void(&r.entry.id, &SHOP, NOW + 120).unwrap();
    assert_eq!(void.kind, EntryKind::Void);
    assert_eq!(void.voids.as_deref(), Some(r.entry.id.as_str()));
    assert!(matches!(
        l.void(&r.entry.id, &SHOP, NOW),
        Err(LedgerError::CannotVoid(_))
    ));
    assert!(matches!(
        l.void(&void.id, &SHOP, NOW),
        Err(LedgerError::CannotVoid(_))
    ));
    assert!(matches!(
        l.void("nope", &SHOP, NOW),
        Err(LedgerError::NoSuchEntry)
    ));
    // Voided: may be redeemed again; the original entry stays.
    assert_eq!(
        refusal(l.redeem(&v, &SHOP, &RedeemRequest::Amount(5), NOW)),
        Refusal::WholeOnly
    );
    l.redeem(&v, &SHOP, &RedeemRequest::Whole, NOW + 180)
        .unwrap();
    let h = l.history(&v.voucher.id).unwrap();
    assert_eq!(
        h.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EntryKind::Redeem, EntryKind::Void, EntryKind::Redeem]
    );
    assert!(l.verify_chain().unwrap().is_ok());
}

#[test]
fn partial_vouchers_draw_down_never_below_zero() {
    let d = tmp("partial");
    let l = Ledger::open(&d.join("l.db")).unwrap();
    let v = partial(2, 1000);
    assert_eq!(
        l.redeem(&v, &SHOP, &RedeemRequest::Amount(300), NOW)
            .unwrap()
            .remaining
            .amount,
        Some(700)
    );
    assert_eq!(
        l.redeem(&v, &SHOP, &RedeemRequest::Amount(700), NOW)
            .unwrap()
            .remaining
            .amount,
        Some(0)
    );
    assert_eq!(
        refusal(l.redeem(&v, &SHOP, &RedeemRequest::Amount(1), NOW)),
        Refusal::Exhausted
    );
    assert_eq!(
        refusal(l.redeem(&v, &SHOP, &RedeemRequest::Whole, NOW)),
        Refusal::Exhausted
    );

    let v = partial(3, 1000);
    l.redeem(&v, &SHOP, &RedeemRequest::Amount(600), NOW)
        .unwrap();
    assert_eq!(
        refusal(l.redeem(&v, &SHOP, &RedeemRequest::Amount(401), NOW)),
        Refusal::InsufficientBalance {
            remaining: 400,
            requested: 401
        }
    );
    assert_eq!(
        refusal(l.redeem(&v, &SHOP, &RedeemRequest::Amount(0), NOW)).code(),
        "invalid_request"
    );
    let r = l.redeem(&v, &SHOP, &RedeemRequest::Whole, NOW).unwrap();
    assert_eq!((r.entry.amount, r.remaining.amount), (Some(400), Some(0)));

    // Items.
    let v = verified(
        VoucherBuilder::new("https://p.example", "prog", "ben")
            .item("RICE", 10, Some("kg"))
            .item("OIL", 2, None)
            .partial()
            .id(id(4)),
    );
    let items = |c: &str, q| {
        RedeemRequest::Items(vec![ItemQty {
            code: c.into(),
            quantity: q,
        }])
    };
    let r = l.redeem(&v, &SHOP, &items("RICE", 4), NOW).unwrap();
    assert_eq!(r.remaining.items[0].quantity, 6);
    assert_eq!(
        refusal(l.redeem(&v, &SHOP, &items("RICE", 7), NOW)),
        Refusal::InsufficientItems {
            code: "RICE".into(),
            remaining: 6,
            requested: 7
        }
    );
    assert_eq!(
        refusal(l.redeem(&v, &SHOP, &items("SUGAR", 1), NOW)),
        Refusal::UnknownItem {
            code: "SUGAR".into()
        }
    );
    assert_eq!(
        refusal(l.redeem(&v, &SHOP, &RedeemRequest::Amount(1), NOW)),
        Refusal::NoValue
    );
    let r = l.redeem(&v, &SHOP, &RedeemRequest::Whole, NOW).unwrap();
    assert_eq!(
        r.entry.items,
        vec![
            ItemQty {
                code: "RICE".into(),
                quantity: 6
            },
            ItemQty {
                code: "OIL".into(),
                quantity: 2
            }
        ]
    );
    assert_eq!(
        refusal(l.redeem(&v, &SHOP, &items("OIL", 1), NOW)),
        Refusal::Exhausted
    );
}

#[test]
fn refusals_write_nothing() {
    let d = tmp("refusals");
    let l = Ledger::open(&d.join("l.db")).unwrap();
    let restricted = verified(
        VoucherBuilder::new("https://p.example", "prog", "ben")
            .value(1000, "KES")
            .audience("SP-9")
            .category("pharmacy")
            .id(id(5)),
    );
    let sp9_grocery = Redeemer {
        provider: "SP-9",
        category: Some("grocery"),
        device: "d",
    };
    let sp9_pharmacy = Redeemer {
        provider: "SP-9",
        category: Some("pharmacy"),
        device: "d",
    };
    let sp9_none = Redeemer {
        provider: "SP-9",
        category: None,
        device: "d",
    };
    assert_eq!(
        refusal(l.redeem(&restricted, &SHOP, &RedeemRequest::Whole, NOW)),
        Refusal::WrongProvider
    );
    assert_eq!(
        refusal(l.redeem(&restricted, &sp9_grocery, &RedeemRequest::Whole, NOW)),
        Refusal::CategoryNotAllowed
    );
    assert_eq!(
        refusal(l.redeem(&restricted, &sp9_none, &RedeemRequest::Whole, NOW)),
        Refusal::CategoryNotAllowed
    );
    assert_eq!(
        refusal(l.redeem(
            &restricted,
            &sp9_pharmacy,
            &RedeemRequest::Whole,
            NOW - 1001
        )),
        Refusal::NotYetValid { nbf: NOW - 1000 }
    );
    assert_eq!(
        refusal(l.redeem(
            &restricted,
            &sp9_pharmacy,
            &RedeemRequest::Whole,
            NOW + 100_000
        )),
        Refusal::Expired { exp: NOW + 100_000 }
    );
    assert_eq!(l.add_revocations(&[(id(5), NOW - 5)]).unwrap(), 1);
    assert_eq!(l.add_revocations(&[(id(5), NOW - 5)]).unwrap(), 0);
    assert_eq!(
        refusal(l.redeem(&restricted, &sp9_pharmacy, &RedeemRequest::Whole, NOW)),
        Refusal::Revoked {
            revoked_at: NOW - 5
        }
    );
    let s = l.stats().unwrap();
    assert_eq!((s.entries, s.revocations), (0, 1));
}

#[test]
fn outbox_and_acknowledgements() {
    let d = tmp("outbox");
    let l = Ledger::open(&d.join("l.db")).unwrap();
    let mut ids = Vec::new();
    for n in 10..15 {
        ids.push(
            l.redeem(&single(n), &SHOP, &RedeemRequest::Whole, NOW)
                .unwrap()
                .entry
                .id,
        );
    }
    let out = l.outbox(100).unwrap();
    assert_eq!(out.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(l.outbox(2).unwrap().len(), 2);
    assert_eq!(l.mark_synced(&ids[..2], NOW, Some("batch-1")).unwrap(), 2);
    assert_eq!(
        l.mark_synced(&ids[..2], NOW, Some("batch-1")).unwrap(),
        0,
        "idempotent"
    );
    // An unknown id: nothing recorded at all.
    assert!(matches!(
        l.mark_synced(&[ids[2].clone(), "unknown".into()], NOW, None),
        Err(LedgerError::NoSuchEntry)
    ));
    assert_eq!(l.outbox(100).unwrap().len(), 3);
    assert_eq!(l.stats().unwrap().unsynced, 3);
    // Acknowledged entries stay.
    assert_eq!(l.entries(0, 100).unwrap().len(), 5);
    assert!(l.entry(&ids[0]).unwrap().is_some());
}

#[test]
fn entries_are_append_only_in_sql() {
    let d = tmp("appendonly");
    let p = d.join("l.db");
    let l = Ledger::open(&p).unwrap();
    l.redeem(&single(20), &SHOP, &RedeemRequest::Whole, NOW)
        .unwrap();
    drop(l);
    let c = rusqlite::Connection::open(&p).unwrap();
    assert!(c.execute("UPDATE entries SET amount = 1", []).is_err());
    assert!(c.execute("DELETE FROM entries", []).is_err());
}

fn tamper(p: &Path, sql: &str) {
    let c = rusqlite::Connection::open(p).unwrap();
    c.execute_batch(
        "DROP TRIGGER entries_append_only_update; DROP TRIGGER entries_append_only_delete; PRAGMA foreign_keys = OFF;",
    )
    .unwrap();
    c.execute_batch(sql).unwrap();
}

fn ledger_with_five(name: &str) -> PathBuf {
    let d = tmp(name);
    let p = d.join("l.db");
    let l = Ledger::open(&p).unwrap();
    for n in 30..35 {
        l.redeem(&single(n), &SHOP, &RedeemRequest::Whole, NOW)
            .unwrap();
    }
    assert!(l.verify_chain().unwrap().is_ok());
    p
}

#[test]
fn verify_chain_finds_every_kind_of_tampering() {
    let cases: &[(&str, &str, i64)] = &[
        ("edit-amount", "UPDATE entries SET amount = 5 WHERE seq = 2", 2),
        ("edit-provider", "UPDATE entries SET provider = 'SP-EVIL' WHERE seq = 4", 4),
        ("edit-hash-too", "UPDATE entries SET amount = 5, hash = zeroblob(32) WHERE seq = 3", 3),
        ("delete-middle", "DELETE FROM entries WHERE seq = 2", 3),
        ("delete-and-renumber", "DELETE FROM entries WHERE seq = 2; UPDATE entries SET seq = seq - 1 WHERE seq > 2", 2),
        ("reorder", "UPDATE entries SET seq = 100 WHERE seq = 2; UPDATE entries SET seq = 2 WHERE seq = 3; UPDATE entries SET seq = 3 WHERE seq = 100", 2),
        ("insert-copy", "INSERT INTO entries SELECT 6, 'forged-id', kind, voucher_id, issuer_kid, provider, device, amount, currency, items, voids, at, voucher_text, hash, hash, signature FROM entries WHERE seq = 5", 6),
        ("malformed-items", "UPDATE entries SET items = 'not json' WHERE seq = 1", 1),
    ];
    for (name, sql, seq) in cases {
        let p = ledger_with_five(name);
        tamper(&p, sql);
        let l = Ledger::open(&p).unwrap();
        let err = l.verify_chain().unwrap().expect_err(name);
        assert_eq!(err.seq, *seq, "{name}: {err}");
    }
    // A forged entry with a correct hash but signed by another key.
    let p = ledger_with_five("forged-signature");
    let l = Ledger::open(&p).unwrap();
    let mut e = l.entries(4, 1).unwrap().remove(0);
    drop(l);
    let k = IssuerKey::from_seed([99; 32]);
    e.signature = k.sign(&e.hash).to_vec();
    let c = rusqlite::Connection::open(&p).unwrap();
    c.execute_batch("DROP TRIGGER entries_append_only_update")
        .unwrap();
    c.execute(
        "UPDATE entries SET signature = ?1 WHERE seq = 5",
        [&e.signature],
    )
    .unwrap();
    let err = Ledger::open(&p)
        .unwrap()
        .verify_chain()
        .unwrap()
        .unwrap_err();
    assert_eq!((err.seq, err.problem), (5, "device signature is invalid"));
}

#[test]
fn upgraded_database_equals_a_fresh_one() {
    let d = tmp("migrate");
    // A v1 ledger made the way v1 made it, with an entry in it.
    let old = d.join("old.db");
    let fresh = d.join("fresh.db");
    {
        let l = Ledger::open(&old).unwrap();
        l.redeem(&single(40), &SHOP, &RedeemRequest::Whole, NOW)
            .unwrap();
    }
    // Rebuild "old" at v1: copy its v1 tables into a database migrated only to v1.
    let v1 = d.join("v1.db");
    {
        let mut c = rusqlite::Connection::open(&v1).unwrap();
        schema::migrate_to(&mut c, 0, 1).unwrap();
        c.execute_batch(&format!(
            "ATTACH '{}' AS o; INSERT INTO meta SELECT * FROM o.meta; INSERT INTO entries SELECT * FROM o.entries; DETACH o;",
            old.display()
        ))
        .unwrap();
        assert_eq!(
            c.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
                .unwrap(),
            1
        );
    }
    std::fs::copy(Ledger::device_key_path(&old), Ledger::device_key_path(&v1)).unwrap();
    let upgraded = Ledger::open(&v1).unwrap();
    assert!(upgraded.verify_chain().unwrap().is_ok());
    assert_eq!(upgraded.stats().unwrap().entries, 1);
    drop(upgraded);
    drop(Ledger::open(&fresh).unwrap());
    let dump = |p: &Path| schema::dump(&rusqlite::Connection::open(p).unwrap()).unwrap();
    assert_eq!(dump(&v1), dump(&fresh));
    let version = |p: &Path| {
        rusqlite::Connection::open(p)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .unwrap()
    };
    assert_eq!(version(&v1), schema::VERSION);
    assert_eq!(version(&fresh), schema::VERSION);
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_ledger_that_cannot_be_opened_is_left_untouched() {
    // Corrupt: random bytes.
    let d = tmp("corrupt");
    std::fs::write(d.join("l.db"), [0x42u8; 8192]).unwrap();
    let before = snapshot(&d);
    assert!(matches!(
        Ledger::open(&d.join("l.db")),
        Err(LedgerError::Corrupt)
    ));
    assert_eq!(snapshot(&d), before);

    // A real ledger whose header was damaged.
    let p = ledger_with_five("damaged");
    let d = p.parent().unwrap().to_owned();
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[..16].copy_from_slice(b"NOT SQLITE AT AL");
    std::fs::write(&p, &bytes).unwrap();
    let before = snapshot(&d);
    assert!(matches!(Ledger::open(&p), Err(LedgerError::Corrupt)));
    assert_eq!(snapshot(&d), before);

    // Newer schema.
    let p = ledger_with_five("newer");
    let d = p.parent().unwrap().to_owned();
    rusqlite::Connection::open(&p)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let before = snapshot(&d);
    assert!(matches!(
        Ledger::open(&p),
        Err(LedgerError::NewerSchema { found: 99, .. })
    ));
    assert_eq!(snapshot(&d), before);

    // Device key missing, or another device's key.
    let p = ledger_with_five("wrongkey");
    let d = p.parent().unwrap().to_owned();
    let kp = Ledger::device_key_path(&p);
    std::fs::rename(&kp, d.join("saved.jwk")).unwrap();
    let before = snapshot(&d);
    assert!(matches!(
        Ledger::open(&p),
        Err(LedgerError::DeviceKey("is missing"))
    ));
    assert_eq!(snapshot(&d), before);
    IssuerKey::from_seed([7; 32]).write_new(&kp).unwrap();
    let before = snapshot(&d);
    assert!(matches!(
        Ledger::open(&p),
        Err(LedgerError::DeviceKey("does not match this ledger"))
    ));
    assert_eq!(snapshot(&d), before);

    // Another application's SQLite database.
    let d = tmp("foreign");
    let c = rusqlite::Connection::open(d.join("l.db")).unwrap();
    c.execute_batch("CREATE TABLE contacts (name TEXT)")
        .unwrap();
    drop(c);
    let before = snapshot(&d);
    assert!(matches!(
        Ledger::open(&d.join("l.db")),
        Err(LedgerError::NotALedger)
    ));
    assert_eq!(snapshot(&d), before);
}

#[test]
fn device_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = tmp("devkey");
    let p = d.join("l.db");
    let l = Ledger::open(&p).unwrap();
    let m = std::fs::metadata(Ledger::device_key_path(&p)).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    let public = l.device_public();
    drop(l);
    assert_eq!(
        Ledger::open(&p).unwrap().device_public(),
        public,
        "same key on reopen"
    );
}

#[test]
fn threads_redeem_exactly_once() {
    let d = tmp("threads");
    let p = d.join("l.db");
    // Shared handle.
    let l = Arc::new(Ledger::open(&p).unwrap());
    let v = Arc::new(single(50));
    let wins: usize = std::thread::scope(|s| {
        let hs: Vec<_> = (0..16)
            .map(|i| {
                let (l, v) = (l.clone(), v.clone());
                s.spawn(move || {
                    let dev = format!("t{i}");
                    let who = Redeemer {
                        provider: "SP-1",
                        category: None,
                        device: &dev,
                    };
                    usize::from(l.redeem(&v, &who, &RedeemRequest::Whole, NOW).is_ok())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, 1);
    // Separate connections per thread, partial voucher: the sum never exceeds the value.
    let v = Arc::new(partial(51, 1000));
    let total: u64 = std::thread::scope(|s| {
        let hs: Vec<_> = (0..16)
            .map(|_| {
                let (p, v) = (p.clone(), v.clone());
                s.spawn(move || {
                    let l = Ledger::open(&p).unwrap();
                    let mut got = 0;
                    for _ in 0..10 {
                        if let Ok(r) = l.redeem(&v, &SHOP, &RedeemRequest::Amount(30), NOW) {
                            got += r.entry.amount.unwrap();
                        }
                    }
                    got
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(total, 990, "33 draws of 30 fit in 1000");
    assert_eq!(l.balance(&v.voucher).unwrap().amount, Some(10));
    assert!(l.verify_chain().unwrap().is_ok());
}

/// Child process modes, selected by environment (see `spawn_child`).
#[test]
fn child_process_entry() {
    let Ok(mode) = std::env::var("EVOUCHER_LEDGER_CHILD") else {
        return;
    };
    let p = PathBuf::from(std::env::var("EVOUCHER_LEDGER_PATH").unwrap());
    let l = Ledger::open(&p).unwrap();
    let out = std::io::stdout();
    match mode.as_str() {
        "race" => {
            let v = single(60);
            let pv = partial(61, 1000);
            let mut wins = 0;
            let mut drawn = 0;
            for _ in 0..20 {
                wins += usize::from(l.redeem(&v, &SHOP, &RedeemRequest::Whole, NOW).is_ok());
                if let Ok(r) = l.redeem(&pv, &SHOP, &RedeemRequest::Amount(70), NOW) {
                    drawn += r.entry.amount.unwrap();
                }
            }
            writeln!(out.lock(), "wins {wins} drawn {drawn}").unwrap();
        }
        "stream" => {
            let start: u32 = std::env::var("EVOUCHER_LEDGER_START")
                .unwrap()
                .parse()
                .unwrap();
            for i in start.. {
                let v = partial(1000 + i % 25, 1000);
                match l.redeem(&v, &SHOP, &RedeemRequest::Amount(90), NOW) {
                    Ok(r) => writeln!(out.lock(), "done {} {}", r.entry.id, i % 25).unwrap(),
                    Err(RedeemError::Refused(_)) => writeln!(out.lock(), "refused {i}").unwrap(),
                    Err(e) => panic!("{e}"),
                }
                out.lock().flush().unwrap();
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn spawn_child(mode: &str, path: &Path, extra: &[(&str, String)]) -> std::process::Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "child_process_entry",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env("EVOUCHER_LEDGER_CHILD", mode)
    .env("EVOUCHER_LEDGER_PATH", path)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    for (k, v) in extra {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

#[test]
fn two_processes_redeem_exactly_once() {
    let d = tmp("procs");
    let p = d.join("l.db");
    drop(Ledger::open(&p).unwrap());
    let children: Vec<_> = (0..2).map(|_| spawn_child("race", &p, &[])).collect();
    let (mut wins, mut drawn) = (0, 0);
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success());
        let s = String::from_utf8(o.stdout).unwrap();
        let line = s.lines().find(|l| l.starts_with("wins")).unwrap();
        let f: Vec<&str> = line.split_whitespace().collect();
        wins += f[1].parse::<u32>().unwrap();
        drawn += f[3].parse::<u64>().unwrap();
    }
    assert_eq!(
        wins, 1,
        "exactly one process redeems the single-use voucher"
    );
    assert_eq!(drawn, 980, "14 draws of 70 fit in 1000, no more");
    let l = Ledger::open(&p).unwrap();
    assert_eq!(
        l.balance(&partial(61, 1000).voucher).unwrap().amount,
        Some(20)
    );
    assert!(l.verify_chain().unwrap().is_ok());
}

#[test]
fn sigkill_at_random_moments_loses_nothing_reported_done() {
    let d = tmp("crash");
    let p = d.join("l.db");
    drop(Ledger::open(&p).unwrap());
    let mut reported: Vec<String> = Vec::new();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut started = 0u32;
    for round in 0..25 {
        let mut child = spawn_child(
            "stream",
            &p,
            &[("EVOUCHER_LEDGER_START", started.to_string())],
        );
        let stdout = child.stdout.take().unwrap();
        let wait_ms = 15 + next() % 120;
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mut lines = 0;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            lines += 1;
            if let Some(rest) = line.strip_prefix("done ") {
                reported.push(rest.split_whitespace().next().unwrap().to_owned());
            }
        }
        started += lines;

        let l = Ledger::open(&p).unwrap();
        let c = rusqlite::Connection::open(&p).unwrap();
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok", "round {round}");
        for id in &reported {
            assert!(
                l.entry(id).unwrap().is_some(),
                "round {round}: reported redemption {id} lost"
            );
        }
        let report = l
            .verify_chain()
            .unwrap()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let mut sums: HashMap<VoucherId, u64> = HashMap::new();
        for e in l.entries(0, usize::MAX >> 1).unwrap() {
            *sums.entry(e.voucher_id).or_default() += e.amount.unwrap_or(0);
        }
        assert!(
            sums.values().all(|s| *s <= 1000),
            "round {round}: over-redeemed {sums:?}"
        );
        assert!(report.entries as usize >= reported.len());
    }
    assert!(
        reported.len() > 20,
        "the child made progress ({} redemptions)",
        reported.len()
    );
}

#[derive(Debug, Clone)]
enum Op {
    Redeem { voucher: usize, amount: Option<u64> },
    Void { nth: usize },
    Sync { n: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..4, proptest::option::of(1u64..400)).prop_map(|(voucher, amount)| Op::Redeem { voucher, amount }),
        1 => (0usize..50).prop_map(|nth| Op::Void { nth }),
        1 => (0usize..5).prop_map(|n| Op::Sync { n }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_sequences_match_a_model(ops in proptest::collection::vec(op(), 1..40)) {
        let d = tmp("prop");
        let l = Ledger::open_with(&d.join("l.db"), Options { durable: false, ..Options::default() }).unwrap();
        // Vouchers 0,1: partial 1000; 2: single 500; 3: partial 250.
        let vs = [partial(70, 1000), partial(71, 1000), verified(VoucherBuilder::new("https://p.example", "prog", "ben").value(500, "KES").id(id(72))), partial(73, 250)];
        let value = [1000u64, 1000, 500, 250];
        let mut model_used = [0u64; 4];
        let mut live: Vec<(String, usize, u64)> = Vec::new(); // redeem entries not voided
        let mut synced = 0usize;
        let mut all_ids: Vec<String> = Vec::new();
        for o in ops {
            match o {
                Op::Redeem { voucher, amount } => {
                    let single_use = voucher == 2;
                    let req = match amount { Some(a) if !single_use => RedeemRequest::Amount(a), _ => RedeemRequest::Whole };
                    let left = value[voucher] - model_used[voucher];
                    let expect: Option<u64> = if single_use {
                        (model_used[voucher] == 0).then_some(value[voucher])
                    } else {
                        match req { RedeemRequest::Amount(a) => (a <= left).then_some(a), _ => (left > 0).then_some(left) }
                    };
                    let r = l.redeem(&vs[voucher], &SHOP, &req, NOW);
                    match (expect, r) {
                        (Some(a), Ok(rc)) => {
                            prop_assert_eq!(rc.entry.amount, Some(a));
                            model_used[voucher] += a;
                            prop_assert_eq!(rc.remaining.amount, Some(value[voucher] - model_used[voucher]));
                            live.push((rc.entry.id.clone(), voucher, a));
                            all_ids.push(rc.entry.id);
                        }
                        (None, Err(RedeemError::Refused(_))) => {}
                        (e, r) => prop_assert!(false, "model {:?} ledger {:?}", e, r),
                    }
                }
                Op::Void { nth } => {
                    if !live.is_empty() {
                        let (eid, voucher, a) = live.remove(nth % live.len());
                        let v = l.void(&eid, &SHOP, NOW).unwrap();
                        model_used[voucher] -= a;
                        all_ids.push(v.id);
                    }
                }
                Op::Sync { n } => {
                    let out = l.outbox(n).unwrap();
                    let ids: Vec<String> = out.iter().map(|e| e.id.clone()).collect();
                    synced += l.mark_synced(&ids, NOW, None).unwrap();
                }
            }
        }
        for (i, v) in vs.iter().enumerate() {
            prop_assert_eq!(l.balance(&v.voucher).unwrap().amount, Some(value[i] - model_used[i]));
        }
        let s = l.stats().unwrap();
        prop_assert_eq!(s.entries as usize, all_ids.len());
        prop_assert_eq!(s.unsynced as usize, all_ids.len() - synced);
        prop_assert!(l.verify_chain().unwrap().is_ok());
    }
}
