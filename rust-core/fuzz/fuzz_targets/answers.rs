//! Fuzz what a phone reads from a server (or from whatever answers in its place: a captive
//! portal, a proxy, a hostile network): arbitrary bytes split into answers, with arbitrary
//! statuses and `Date` headers, fed to a sync run and a claim run on a real ledger. Never a
//! panic; a bad answer is a typed error; the ledger's chain stays intact.
#![no_main]

use std::sync::OnceLock;

use std::sync::atomic::{AtomicU32, Ordering};

use evoucher_core::claims::ClaimRun;
use evoucher_core::encode::encode;
use evoucher_core::keys::IssuerKey;
use evoucher_core::ledger::{Ledger, Options, RedeemRequest, Redeemer};
use evoucher_core::sync::{Answer, Exchange, SyncRun};
use evoucher_core::time::parse_http_date;
use evoucher_core::voucher::{VoucherBuilder, VoucherId};
use evoucher_core::{verify, TrustStore};
use libfuzzer_sys::fuzz_target;

fn ledger() -> &'static (Ledger, std::path::PathBuf) {
    static L: OnceLock<(Ledger, std::path::PathBuf)> = OnceLock::new();
    L.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("evoucher-fuzz-answers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let opts = Options {
            durable: false,
            ..Options::default()
        };
        let l = Ledger::open_with(&dir.join("phone.db"), opts).expect("ledger");
        (l, dir)
    })
}

fn drive(run: &mut impl Exchange, l: &Ledger, parts: &[&[u8]]) {
    for part in parts {
        match run.next(l) {
            Ok(Some(_)) => {}
            _ => return,
        }
        let (status, rest) = match part.split_first() {
            Some((s, rest)) => ([200u16, 304, 404, 409, 500, 201][usize::from(*s) % 6], rest),
            None => (200, &[][..]),
        };
        let text = String::from_utf8_lossy(rest);
        let date = parse_http_date(&text);
        let a = Answer {
            status,
            etag: Some("\"x\""),
            date,
            body: &text,
        };
        if run.answer(l, a).is_err() {
            return;
        }
    }
}

/// A redemption waiting in the outbox, so that the push's answers are read too.
fn redeem_one(l: &Ledger) {
    static N: AtomicU32 = AtomicU32::new(0);
    if !l.outbox(1).map(|o| o.is_empty()).unwrap_or(false) {
        return;
    }
    let n = N.fetch_add(1, Ordering::Relaxed);
    let key = IssuerKey::from_seed([9; 32]);
    let mut id = [0u8; 16];
    id[12..].copy_from_slice(&n.to_be_bytes());
    let Ok(v) = VoucherBuilder::new("https://p.example", "p", "b")
        .value(100, "KES")
        .validity(0, i64::MAX / 4)
        .id(VoucherId(id))
        .build()
    else {
        return;
    };
    let (Ok(e), Ok(trust)) = (encode(&v, &key), TrustStore::from_keys([key.trusted()])) else {
        return;
    };
    if let Ok(v) = verify(&e.text, &trust, 1_800_000_000) {
        let who = Redeemer {
            provider: "SP-1",
            category: None,
            device: "d",
        };
        let _ = l.redeem(&v, &who, &RedeemRequest::Whole, 1_800_000_000);
    }
}

fuzz_target!(|data: &[u8]| {
    let (l, dir) = ledger();
    redeem_one(l);
    let parts: Vec<&[u8]> = data.split(|b| *b == 0xFF).take(16).collect();
    drive(&mut SyncRun::new(l, &dir.join("trust.json")), l, &parts);
    drive(&mut ClaimRun::new(), l, &parts);
    assert!(l.verify_chain().expect("readable").is_ok());
});
