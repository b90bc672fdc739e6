//! What a phone shows about its sync: when it last synced, what waits to be sent, how old its
//! trust list and revocation list are, and whether its clock can be believed.
//!
//! A phone's clock decides whether a voucher has expired, and it stamps every redemption. It
//! is suspect when it reads earlier than something the phone saw happen (the last trust-list
//! check, the last ledger entry) or far from the server's clock at the last sync.

use serde::Serialize;

use super::State;
use crate::ledger::{Ledger, LedgerError};

/// The server's clock and the phone's may differ by this much before the phone warns.
pub const MAX_CLOCK_OFFSET: i64 = 10 * 60;

/// Why the phone's clock looks wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ClockWarning {
    /// Now is earlier than when the trust list was last checked.
    BeforeTrustCheck { at: i64 },
    /// Now is earlier than the newest ledger entry.
    BeforeLastEntry { at: i64 },
    /// At the last sync the server's clock differed from the phone's by `offset` seconds
    /// (server minus phone).
    FarFromServer { offset: i64 },
}

/// The sync panel.
#[derive(Debug, Clone, Serialize)]
pub struct SyncStatus {
    pub now: i64,
    pub last_sync_at: Option<i64>,
    /// Entries waiting to be sent.
    pub waiting: i64,
    pub trust_checked_at: Option<i64>,
    pub revocations_checked_at: Option<i64>,
    /// The trust list was never fetched or is older than the limit.
    pub trust_stale: bool,
    /// The revocation list was never read or is older than the limit.
    pub revocations_stale: bool,
    pub clock: Vec<ClockWarning>,
}

impl SyncStatus {
    /// The clock is suspect (a redemption made now says so).
    pub fn clock_suspect(&self) -> bool {
        !self.clock.is_empty()
    }
}

/// The status of `ledger` at `now`, a list being stale when older than `stale_after` seconds.
pub fn status(ledger: &Ledger, stale_after: i64, now: i64) -> Result<SyncStatus, LedgerError> {
    let st = State::load(ledger.path());
    let waiting = ledger.stats()?.unsynced;
    let last_entry = ledger.last_entry_at()?;
    let mut clock = Vec::new();
    if let Some(at) = st.trust_checked_at.filter(|at| now < *at) {
        clock.push(ClockWarning::BeforeTrustCheck { at });
    }
    if let Some(at) = last_entry.filter(|at| now < *at) {
        clock.push(ClockWarning::BeforeLastEntry { at });
    }
    if let Some(offset) = st.server_offset.filter(|o| o.abs() > MAX_CLOCK_OFFSET) {
        clock.push(ClockWarning::FarFromServer { offset });
    }
    let stale = |at: Option<i64>| at.is_none_or(|at| now.saturating_sub(at) > stale_after);
    Ok(SyncStatus {
        now,
        last_sync_at: st.last_sync_at,
        waiting,
        trust_checked_at: st.trust_checked_at,
        revocations_checked_at: st.revocations_checked_at,
        trust_stale: stale(st.trust_checked_at),
        revocations_stale: stale(st.revocations_checked_at),
        clock,
    })
}
