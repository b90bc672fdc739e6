//! Fuzz the whole decoder: arbitrary text, and arbitrary bytes wrapped as an `EV1:` body (both
//! raw and zlib-compressed), through `verify` and `inspect`. Nothing may panic, and nothing but
//! a real signature may verify.
#![no_main]

use evoucher_core::keys::IssuerKey;
use evoucher_core::{text, verify, TrustStore};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = IssuerKey::from_seed([42; 32]);
    let Ok(trust) = TrustStore::from_keys([key.trusted()]) else {
        return;
    };
    let s = String::from_utf8_lossy(data);
    let _ = verify(&s, &trust, 1_780_000_000);
    let _ = evoucher_core::verify::inspect(&s);
    let raw = format!("EV1:{}", text::base45_encode(data));
    assert!(verify(&raw, &trust, 1_780_000_000).is_err());
    let _ = evoucher_core::verify::inspect(&raw);
    let z = format!("EV1:{}", text::base45_encode(&text::compress(data)));
    assert!(verify(&z, &trust, 1_780_000_000).is_err());
});
