//! What the commands a provider's phone runs against the program server share: its device
//! token, its server, and how a refused token is said.

use std::path::{Path, PathBuf};

use evoucher_core::ledger::Ledger;
use evoucher_core::sync::SyncError;

use crate::util::{usage, CliError};

/// Where `enrol` keeps the device token: `<ledger>.token`.
pub fn token_path(ledger: &Path) -> PathBuf {
    let mut p = ledger.as_os_str().to_owned();
    p.push(".token");
    PathBuf::from(p)
}

/// The device token: given, or `<ledger>.token` from `evoucher enrol`.
pub fn device_token(ledger: &Path, given: Option<String>) -> Result<String, CliError> {
    match given {
        Some(t) => Ok(t),
        None => Ok(std::fs::read_to_string(token_path(ledger))
            .map_err(|_| usage("no --token and no token file: run `evoucher enrol` first"))?
            .trim()
            .to_owned()),
    }
}

/// The server: given, or the one the ledger was enrolled with.
pub fn server_of(
    ledger_path: &Path,
    ledger: &Ledger,
    given: Option<String>,
) -> Result<String, CliError> {
    match given {
        Some(s) => Ok(s),
        None => ledger
            .enrolment()
            .map_err(|e| usage(format!("ledger {}: {e}", ledger_path.display())))?
            .map(|e| e.server)
            .ok_or_else(|| usage("--server is needed: the ledger does not name its server")),
    }
}

/// A 401 from the server, said so a person can act on it.
pub fn refused_token(e: SyncError, what: &str) -> CliError {
    match e {
        SyncError::Status(401, _) => usage(
            "the server refused this device's token: the device was revoked or the token is \
             wrong. Nothing was lost; enrol again with a new code (docs/ledger.md)",
        ),
        e => usage(format!("{what} failed (nothing lost; run it again): {e}")),
    }
}
