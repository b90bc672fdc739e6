//! Fuzz what a phone sends the server: arbitrary bytes as a push (`{"entries": [...]}` of ledger
//! entries) give entries or a typed error, never a panic; every entry decoded is hashed and
//! judged by the rulebook against a partial voucher, in order, as the server does, and the
//! accepted total never exceeds the voucher, whatever the entries say.
#![no_main]

use evoucher_core::ledger::{Entry, EntryKind};
use evoucher_core::rules::{self, Context, Counted, Taking};
use evoucher_core::voucher::{VoucherBuilder, VoucherId};
use libfuzzer_sys::fuzz_target;

#[derive(serde::Deserialize)]
struct Push {
    entries: Vec<Entry>,
}

fuzz_target!(|data: &[u8]| {
    let Ok(push) = serde_json::from_slice::<Push>(data) else {
        return;
    };
    let Ok(v) = VoucherBuilder::new("https://p.example", "p", "b")
        .value(1000, "KES")
        .item("RICE", 10, None)
        .partial()
        .validity(0, i64::MAX / 2)
        .id(VoucherId([1; 16]))
        .build()
    else {
        return;
    };
    let mut accepted: Vec<Entry> = Vec::new();
    for e in &push.entries {
        let _ = e.computed_hash();
        if e.kind != EntryKind::Redeem {
            continue;
        }
        let counted: Vec<Counted<'_>> = accepted
            .iter()
            .map(|a| Counted {
                id: &a.id,
                at: a.at,
                provider: &a.provider,
                device: &a.device,
                amount: a.amount,
                items: &a.items,
            })
            .collect();
        let ctx = Context {
            provider: &e.provider,
            category: None,
            at: e.at,
            revoked_at: None,
        };
        let t = Taking {
            amount: e.amount,
            currency: e.currency.as_deref(),
            items: &e.items,
        };
        if rules::check(&v, &counted, &t, &ctx).is_ok() {
            accepted.push(e.clone());
        }
    }
    let total: u128 = accepted
        .iter()
        .filter_map(|e| e.amount)
        .map(u128::from)
        .sum();
    let rice: u128 = accepted
        .iter()
        .flat_map(|e| &e.items)
        .map(|i| u128::from(i.quantity))
        .sum();
    assert!(total <= 1000 && rice <= 10);
});
