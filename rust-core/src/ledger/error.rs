//! Ledger errors (the ledger could not do its job) and refusals (the voucher may not be
//! redeemed). Messages carry no key material and no beneficiary data.

use serde::Serialize;

use crate::error::KeyError;

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
    #[error("no such ledger entry")]
    NoSuchEntry,
    #[error("entry cannot be voided: {0}")]
    CannotVoid(&'static str),
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
            _ => LedgerError::Db(e.to_string()),
        }
    }
}

/// Why a redemption was refused. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    #[error("already redeemed at {at} by provider {provider} on device {device}")]
    AlreadyRedeemed {
        at: i64,
        provider: String,
        device: String,
        entry_id: String,
    },
    #[error("voucher is fully used")]
    Exhausted,
    #[error("balance insufficient: {remaining} left, {requested} requested")]
    InsufficientBalance { remaining: u64, requested: u64 },
    #[error("item {code}: {remaining} left, {requested} requested")]
    InsufficientItems {
        code: String,
        remaining: u64,
        requested: u64,
    },
    #[error("item {code} is not on this voucher")]
    UnknownItem { code: String },
    #[error("voucher has no cash value")]
    NoValue,
    #[error("single-use voucher: it can only be redeemed whole")]
    WholeOnly,
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    #[error("voucher is for another service provider")]
    WrongProvider,
    #[error("provider category is not allowed for this voucher")]
    CategoryNotAllowed,
    #[error("voucher is not valid before {nbf}")]
    NotYetValid { nbf: i64 },
    #[error("voucher expired at {exp}")]
    Expired { exp: i64 },
    #[error("voucher was cancelled by the program (revoked at {revoked_at})")]
    Revoked { revoked_at: i64 },
}

impl Refusal {
    /// Stable snake_case code (the `reason` in JSON).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::AlreadyRedeemed { .. } => "already_redeemed",
            Refusal::Exhausted => "exhausted",
            Refusal::InsufficientBalance { .. } => "insufficient_balance",
            Refusal::InsufficientItems { .. } => "insufficient_items",
            Refusal::UnknownItem { .. } => "unknown_item",
            Refusal::NoValue => "no_value",
            Refusal::WholeOnly => "whole_only",
            Refusal::InvalidRequest(_) => "invalid_request",
            Refusal::WrongProvider => "wrong_provider",
            Refusal::CategoryNotAllowed => "category_not_allowed",
            Refusal::NotYetValid { .. } => "not_yet_valid",
            Refusal::Expired { .. } => "expired",
            Refusal::Revoked { .. } => "revoked",
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
