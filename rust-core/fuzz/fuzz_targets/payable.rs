//! Fuzz the payable decoder: arbitrary text, arbitrary bytes as an `EP1:` body (raw and
//! zlib-compressed), and arbitrary bytes as a payload signed with the trusted key (so the
//! CBOR reader is reached). Nothing may panic; a payload is accepted only if it reads back as
//! a payable that passes its own checks and signs to the same bytes.
#![no_main]

use evoucher_core::keys::IssuerKey;
use evoucher_core::payable::{self, PayableTrust};
use evoucher_core::text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = IssuerKey::from_seed([43; 32]);
    let trust = PayableTrust::from_keys([key.trusted()]);
    let s = String::from_utf8_lossy(data);
    let _ = payable::verify(&s, &trust);
    let raw = format!("EP1:{}", text::base45_encode(data));
    assert!(payable::verify(&raw, &trust).is_err());
    let z = format!("EP1:{}", text::base45_encode(&text::compress(data)));
    assert!(payable::verify(&z, &trust).is_err());
    if let Ok(p) = payable::Payable::from_cbor(data) {
        assert!(p.check().is_ok());
        let again = payable::Payable::from_cbor(&p.to_cbor().unwrap()).unwrap();
        assert_eq!(again, p);
    }
});
