//! Subcommands: one module each.

mod claim;
mod device;
mod inspect;
mod issue;
mod keygen;
mod ledger;
mod payable;
mod people;
mod qr;
mod redeem;
mod scan;
mod serve;
mod sync;
mod trust;
mod verify;

use clap::{Parser, Subcommand};

use crate::util::{CliError, Outcome};

#[derive(Debug, Parser)]
#[command(
    name = "evoucher",
    version,
    about = "Signed e-vouchers for G2P and humanitarian programs: issue, verify, redeem",
    long_about = "Signed e-vouchers for G2P and humanitarian programs.\n\nExit codes: 0 valid or done, 1 invalid or refused, 2 usage or I/O error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make an issuer key: write the private JWK (mode 0600), print the public JWKS.
    Keygen(keygen::Args),
    /// Issue a signed voucher (or a batch from a CSV of beneficiaries).
    Issue(Box<issue::Args>),
    /// Verify a voucher offline against a trust store (JWKS).
    Verify(verify::Args),
    /// Show every layer of a voucher decoded, without trust, for debugging.
    Inspect(inspect::Args),
    /// Verify a voucher and record its redemption in the local ledger (exactly once).
    Redeem(Box<redeem::Args>),
    /// Read, check, export or void entries of the local redemption ledger.
    Ledger(ledger::Args),
    /// Fetch a program's JWKS for offline use, or show a trust store.
    Trust(trust::Args),
    /// Render a voucher text as a QR code (PNG, SVG, or in the terminal).
    Qr(qr::Args),
    /// Read every QR code in image files (or a webcam with `--camera`).
    Scan(scan::Args),
    /// Run the program server (SQLite by default, PostgreSQL by URL).
    Serve(Box<serve::Args>),
    /// Enrol this device with the program server (one-time code).
    Enrol(sync::EnrolArgs),
    /// Push the ledger's outbox, pull the trust list and revocations.
    Sync(sync::SyncArgs),
    /// Accounts of the server's people (on its database): add, list, disable, reset.
    User(people::UserArgs),
    /// The server's audit log: check its hash chain.
    Audit(people::AuditArgs),
    /// Check an account-payable PDF before paying it (a payment switch's check).
    Payable(payable::Args),
    /// Claim reimbursement for this provider's redemptions, and follow its claims.
    Claim(claim::Args),
}

pub fn run(cli: Cli) -> Result<Outcome, CliError> {
    match cli.command {
        Command::Keygen(a) => keygen::run(a),
        Command::Issue(a) => issue::run(*a),
        Command::Verify(a) => verify::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Redeem(a) => redeem::run(*a),
        Command::Ledger(a) => ledger::run(a),
        Command::Trust(a) => trust::run(a),
        Command::Scan(a) => scan::run(a),
        Command::Qr(a) => qr::run(a),
        Command::Serve(a) => serve::run(*a),
        Command::Enrol(a) => sync::enrol(a),
        Command::Sync(a) => sync::sync(a),
        Command::User(a) => people::user(a),
        Command::Audit(a) => people::audit_cmd(a),
        Command::Payable(a) => payable::run(a),
        Command::Claim(a) => claim::run(a),
    }
}
