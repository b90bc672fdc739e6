use std::path::{Path, PathBuf};

use evoucher_core::ledger::Ledger;
use evoucher_core::sync::SyncClient;

use super::device::{device_token, refused_token, server_of, token_path};
use crate::util::{self, io_err, usage, CliError, Outcome};

/// Where `sync` keeps the trust list of a ledger unless told otherwise.
pub fn default_trust(ledger: &Path) -> PathBuf {
    let mut p = ledger.as_os_str().to_owned();
    p.push(".trust.json");
    PathBuf::from(p)
}

#[derive(Debug, clap::Args)]
pub struct EnrolArgs {
    /// The program server, e.g. http://127.0.0.1:8080
    #[arg(long)]
    server: String,
    /// The one-time enrolment code from the program.
    #[arg(long)]
    code: String,
    /// The ledger (created with its device key if missing, and removed again if enrolment
    /// fails); the device token is saved beside it as `<ledger>.token` (mode 0600).
    #[arg(long)]
    ledger: PathBuf,
    /// Print one JSON object: device_id, provider_id, category, token_file.
    #[arg(long)]
    json: bool,
}

/// The files a new ledger makes beside itself.
fn ledger_files(ledger: &Path) -> Vec<PathBuf> {
    let mut out = vec![ledger.to_owned(), Ledger::device_key_path(ledger)];
    for suffix in ["-wal", "-shm"] {
        let mut p = ledger.as_os_str().to_owned();
        p.push(suffix);
        out.push(PathBuf::from(p));
    }
    out
}

pub fn enrol(a: EnrolArgs) -> Result<Outcome, CliError> {
    let fresh = !a.ledger.exists();
    let ledger = Ledger::open(&a.ledger)
        .map_err(|e| usage(format!("ledger {}: {e}", a.ledger.display())))?;
    let result = SyncClient::new(&a.server, None).and_then(|c| c.enrol_ledger(&ledger, &a.code));
    let e = match result {
        Ok(e) => e,
        Err(err) => {
            drop(ledger);
            if fresh {
                // A failed enrolment leaves nothing behind: the ledger and key were made for it.
                for f in ledger_files(&a.ledger) {
                    let _ = std::fs::remove_file(f);
                }
            }
            return Err(usage(format!("enrolment failed: {err}")));
        }
    };
    let path = token_path(&a.ledger);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    opts.open(&path)
        .and_then(|mut f| f.write_all(e.token.as_bytes()))
        .map_err(io_err(format!("writing {}", path.display())))?;
    if a.json {
        util::print_json(&serde_json::json!({
            "device_id": e.device_id, "provider_id": e.provider_id, "category": e.category,
            "token_file": path.display().to_string(),
        }));
    } else {
        println!(
            "enrolled device {} for provider {}{} (token in {}); next: evoucher sync --ledger {} --server {}",
            e.device_id,
            e.provider_id,
            e.category
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default(),
            path.display(),
            a.ledger.display(),
            a.server
        );
    }
    Ok(Outcome::Ok)
}

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// The device's ledger (enrolled with `evoucher enrol`).
    #[arg(long)]
    ledger: PathBuf,
    /// The program server (default: the one the ledger was enrolled with).
    #[arg(long)]
    server: Option<String>,
    /// Device token (default: `<ledger>.token` from `evoucher enrol`).
    #[arg(long, env = "EVOUCHER_DEVICE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Where to keep the trust list (default `<ledger>.trust.json`).
    #[arg(long)]
    trust_out: Option<PathBuf>,
    /// Print one JSON object: counts, every entry not accepted with its reason, what is left.
    #[arg(long)]
    json: bool,
}

/// Exit 0 synced, 1 the server did not accept every entry (conflict, invalid, suspect or
/// rejected: each is listed), 2 usage or network error.
pub fn sync(a: SyncArgs) -> Result<Outcome, CliError> {
    let token = device_token(&a.ledger, a.token)?;
    let ledger = Ledger::open(&a.ledger)
        .map_err(|e| usage(format!("ledger {}: {e}", a.ledger.display())))?;
    let server = server_of(&a.ledger, &ledger, a.server)?;
    let trust = a.trust_out.unwrap_or_else(|| default_trust(&a.ledger));
    let client = SyncClient::new(&server, Some(token)).map_err(|e| refused_token(e, "sync"))?;
    let r = client
        .sync(&ledger, &trust)
        .map_err(|e| refused_token(e, "sync"))?;
    // The provider's reimbursement claims, as the server has them now (a server without
    // claims, or a claim read that fails, leaves the sync as it was).
    let claims = client.claims().unwrap_or_default();
    if a.json {
        let mut v = serde_json::to_value(&r).unwrap_or_default();
        v["claims"] =
            serde_json::Value::Array(claims.iter().map(super::claim::summary_json).collect());
        util::print_json(&v);
    } else {
        println!(
            "synced: {} pushed ({} accepted, {} conflicts, {} invalid, {} suspect{}), {} left; {} new revocations; trust list {} ({})",
            r.pushed,
            r.accepted,
            r.conflicts,
            r.invalid,
            r.suspect,
            if r.resent > 0 {
                format!(", {} sent again because the server had lost them", r.resent)
            } else {
                String::new()
            },
            r.remaining,
            r.revocations_added,
            if r.trust_updated { "updated" } else { "unchanged" },
            trust.display()
        );
        for n in &r.not_accepted {
            println!(
                "  {:<8} entry {} (seq {}) voucher {}: {}{}",
                n.status.to_uppercase(),
                n.id,
                n.seq,
                n.voucher_id,
                n.reason.as_deref().unwrap_or(""),
                n.conflict_with
                    .as_deref()
                    .map(|c| format!(" (first redemption: {c})"))
                    .unwrap_or_default()
            );
        }
        if r.rejected.is_some() {
            println!(
                "the server could not place the entry above in this device's chain; entries after it wait (docs/ledger.md, \"What the server answered\")"
            );
        }
        for c in claims.iter().take(10) {
            println!("  {}", super::claim::summary_line(c));
        }
    }
    Ok(if r.not_accepted.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Refused
    })
}
