//! Shared by the benchmarks (and the scan_stream example): vouchers made cheaply (signed once
//! each, not re-verified).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use evoucher_core::encode::encode;
use evoucher_core::keys::IssuerKey;
use evoucher_core::voucher::{VoucherBuilder, VoucherId};
use evoucher_core::Verified;

pub const NOW: i64 = 1_780_000_000;

pub fn key() -> IssuerKey {
    IssuerKey::from_seed([3; 32])
}

/// A typical single-use cash voucher, numbered `n`.
pub fn voucher(key: &IssuerKey, n: u64) -> Verified {
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&n.to_be_bytes());
    let v = VoucherBuilder::new(
        "https://food.example.org",
        "food-2026",
        &format!("BEN-{n:07}"),
    )
    .name("Amina Kamau")
    .value(250_000, "KES")
    .validity(NOW - 86_400, NOW + 90 * 86_400)
    .id(VoucherId(id))
    .build()
    .unwrap();
    let text = encode(&v, key).unwrap().text;
    Verified {
        voucher: v,
        kid: evoucher_core::KeyId::Ed25519(key.kid()),
        format: evoucher_core::Format::Ev1,
        text,
    }
}

/// The scanner benchmarks' voucher: cash and two items, a QR code of version 10 or more at
/// level M, signed with `key`.
pub fn scan_voucher_text(key: &IssuerKey) -> String {
    let v = VoucherBuilder::new("https://food.example.org", "food-2026", "BEN-0001234")
        .name("Amina Kamau")
        .value(250_000, "KES")
        .item("RICE", 10, Some("kg"))
        .item("OIL", 2, Some("l"))
        .validity(1_780_000_000, 1_790_000_000)
        .id(VoucherId([3; 16]))
        .build()
        .unwrap();
    encode(&v, key).unwrap().text
}
