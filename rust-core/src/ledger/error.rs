//! Ledger errors (the ledger could not do its job) and refusals (the voucher may not be
//! redeemed). Messages carry no key material and no beneficiary data.

use crate::error::KeyError;
use crate::rules::{Refusal, VoidRefusal};

/// The ledger could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger file is not a SQLite database or is corrupt; it was left untouched")]
    Corrupt,
    #[error("file is a SQLite database but not an evoucher ledger; it was left untouched")]
    NotALedger,
    #[error("ledger schema version {found} is newer than this build reads ({supported}); it was left untouched")]
    NewerSchema { found: i64, supported: i64 },
    #[error("device key {0}; the ledger was left untouched")]
    DeviceKey(&'static str),
    #[error("ledger is busy: another writer held it too long")]
    Busy,
    #[error(
        "the ledger is missing or empty but its device key remains beside it: the ledger was \
         lost, and a new one must not start a second chain with the same key. Restore the \
         ledger file from a backup; or retire this device (move its .device.jwk, .token and \
         .sync.json aside) and enrol again with a new code (docs/ledger.md, \"A lost ledger\")"
    )]
    Lost,
    #[error("no ledger file here")]
    NotFound,
    #[error("the ledger file cannot be opened")]
    CannotOpen,
    #[error("ledger schema version {found} needs upgrading to {current}; open it once where it can be written")]
    NeedsUpgrade { found: i64, current: i64 },
    #[error("the ledger was opened read-only")]
    ReadOnly,
    #[error("{0}")]
    Enrolled(String),
    #[error("no such ledger entry")]
    NoSuchEntry,
    #[error("entry cannot be voided: {0}")]
    CannotVoid(VoidRefusal),
    #[error("database error: {0}")]
    Db(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("key error: {0}")]
    Key(#[from] KeyError),
}

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => LedgerError::Busy,
            Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
                LedgerError::Corrupt
            }
            Some(ErrorCode::CannotOpen) => LedgerError::CannotOpen,
            _ => LedgerError::Db(e.to_string()),
        }
    }
}

/// The outcome of a failed `redeem`.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl From<rusqlite::Error> for RedeemError {
    fn from(e: rusqlite::Error) -> Self {
        RedeemError::Ledger(e.into())
    }
}
