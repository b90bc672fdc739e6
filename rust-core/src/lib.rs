//! # evoucher-core
//!
//! The library every part of evoucher uses: the signed voucher format (`EV1:` text, COSE_Sign1
//! over CWT claims, Ed25519), issuer keys and JWKS trust stores, offline verification with a
//! typed result that names the stage that failed, and QR rendering.
//!
//! It knows nothing of JNI, HTTP servers or command lines.
//!
//! ```
//! use evoucher_core::{keys::IssuerKey, trust::TrustStore, voucher::*, verify::verify};
//!
//! let key = IssuerKey::from_seed([7; 32]);
//! let voucher = VoucherBuilder::new("https://program.example", "food-2026", "ben-1")
//!     .value(2_500, "KES")
//!     .validity(1_700_000_000, 1_700_000_000 + 86_400 * 30)
//!     .id(VoucherId([1; 16]))
//!     .build()
//!     .unwrap();
//! let encoded = evoucher_core::encode::encode(&voucher, &key).unwrap();
//! let trust = TrustStore::from_keys([key.trusted()]).unwrap();
//! let verified = verify(&encoded.text, &trust, 1_700_000_100).unwrap();
//! assert_eq!(verified.voucher, voucher);
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![forbid(unsafe_code)]

pub mod claims;
pub mod cose;
pub mod encode;
pub mod error;
#[cfg(feature = "http")]
pub mod fetch;
pub mod jwt;
pub mod keys;
pub mod ledger;
pub mod payable;
pub mod qr;
pub mod roster;
pub mod rules;
pub mod scan;
pub mod sync;
pub mod text;
pub mod time;
pub mod trust;
pub mod verify;
pub mod voucher;

pub use error::{ClaimsError, Stage, VerifyError};
pub use keys::{IssuerKey, Kid};
pub use trust::TrustStore;
pub use verify::{verify, Format, KeyId, Verified};
pub use voucher::{Voucher, VoucherBuilder, VoucherId};

/// Texts longer than this (in bytes) are refused before any decoding.
pub const MAX_TEXT_LEN: usize = 4096;

/// Seconds since the epoch, from the system clock.
pub fn ledger_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
