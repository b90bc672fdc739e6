//! The hash chain: each entry's hash covers its fields and the previous entry's hash; the
//! device signs each hash with Ed25519.

use serde::{Deserialize, Serialize};

use crate::rules::ItemQty;
use sha2::{Digest, Sha256};

/// Domain separation for entry hashes.
const DOMAIN: &[u8] = b"evoucher-ledger-entry-v1\0";
/// The `prev_hash` of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// What kind of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Redeem,
    Void,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Redeem => "redeem",
            EntryKind::Void => "void",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "redeem" => Some(EntryKind::Redeem),
            "void" => Some(EntryKind::Void),
            _ => None,
        }
    }
}

/// The fields an entry's hash covers, in order.
pub struct HashInput<'a> {
    pub seq: i64,
    pub id: &'a str,
    pub kind: EntryKind,
    pub voucher_id: &'a [u8],
    pub issuer_kid: &'a [u8],
    pub provider: &'a str,
    pub device: &'a str,
    pub amount: Option<u64>,
    pub currency: Option<&'a str>,
    pub items: &'a [ItemQty],
    pub voids: Option<&'a str>,
    pub at: i64,
    pub voucher_text: &'a str,
    pub prev_hash: &'a [u8],
}

fn lp(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_be_bytes());
    h.update(b);
}

impl HashInput<'_> {
    /// SHA-256 over a length-prefixed encoding of every field (no ambiguity between fields).
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(self.seq.to_be_bytes());
        lp(&mut h, self.id.as_bytes());
        lp(&mut h, self.kind.as_str().as_bytes());
        lp(&mut h, self.voucher_id);
        lp(&mut h, self.issuer_kid);
        lp(&mut h, self.provider.as_bytes());
        lp(&mut h, self.device.as_bytes());
        match self.amount {
            Some(a) => {
                h.update([1]);
                h.update(a.to_be_bytes());
            }
            None => h.update([0]),
        }
        lp(&mut h, self.currency.unwrap_or("").as_bytes());
        h.update((self.items.len() as u64).to_be_bytes());
        for it in self.items {
            lp(&mut h, it.code.as_bytes());
            h.update(it.quantity.to_be_bytes());
        }
        lp(&mut h, self.voids.unwrap_or("").as_bytes());
        h.update(self.at.to_be_bytes());
        lp(&mut h, self.voucher_text.as_bytes());
        lp(&mut h, self.prev_hash);
        h.finalize().into()
    }
}
