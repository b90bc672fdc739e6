//! Fuzz the roster (beneficiary CSV) parser: arbitrary bytes give rows or a typed error, never a
//! panic; every row it returns satisfies the roster's rules; an error never carries a cell.
#![no_main]

use evoucher_core::roster::{parse, MAX_ID, MAX_NAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(rows) => {
            assert!(!rows.is_empty());
            let mut ids = std::collections::HashSet::new();
            for r in &rows {
                assert!(!r.id.is_empty() && r.id.chars().count() <= MAX_ID);
                assert!(ids.insert(r.id.clone()), "duplicate id returned");
                assert!(r
                    .name
                    .as_ref()
                    .is_none_or(|n| n.chars().count() <= MAX_NAME));
                assert!(r.amount.is_none_or(|a| a > 0 && a <= i64::MAX as u64));
                for it in r.items.iter().flatten() {
                    assert!(it.quantity > 0 && !it.code.is_empty());
                }
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.len() < 120, "{msg}");
        }
    }
});
