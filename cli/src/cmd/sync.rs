use std::path::{Path, PathBuf};

use evoucher_core::ledger::Ledger;
use evoucher_core::sync::SyncClient;

use crate::util::{self, io_err, usage, CliError, Outcome};

fn token_path(ledger: &Path) -> PathBuf {
    let mut p = ledger.as_os_str().to_owned();
    p.push(".token");
    PathBuf::from(p)
}

fn default_trust(ledger: &Path) -> PathBuf {
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
    /// The ledger (created with its device key if missing); the device token is saved beside
    /// it as `<ledger>.token` (mode 0600).
    #[arg(long)]
    ledger: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn enrol(a: EnrolArgs) -> Result<Outcome, CliError> {
    let ledger = Ledger::open(&a.ledger)
        .map_err(|e| usage(format!("ledger {}: {e}", a.ledger.display())))?;
    let e = SyncClient::new(&a.server, None)
        .and_then(|c| c.enrol(&a.code, &ledger.device_public()))
        .map_err(|e| usage(format!("enrolment failed: {e}")))?;
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
        util::print_json(
            &serde_json::json!({"device_id": e.device_id, "provider_id": e.provider_id, "token_file": path.display().to_string()}),
        );
    } else {
        println!(
            "enrolled device {} for provider {} (token in {})",
            e.device_id,
            e.provider_id,
            path.display()
        );
    }
    Ok(Outcome::Ok)
}

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    #[arg(long)]
    ledger: PathBuf,
    #[arg(long)]
    server: String,
    /// Device token (default: `<ledger>.token` from `evoucher enrol`).
    #[arg(long, env = "EVOUCHER_DEVICE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Where to keep the trust list (default `<ledger>.trust.json`).
    #[arg(long)]
    trust_out: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// Exit 0 synced, 1 the server rejected an entry, 2 usage or network error.
pub fn sync(a: SyncArgs) -> Result<Outcome, CliError> {
    let token = match a.token {
        Some(t) => t,
        None => std::fs::read_to_string(token_path(&a.ledger))
            .map_err(|_| usage("no --token and no token file: run `evoucher enrol` first"))?
            .trim()
            .to_owned(),
    };
    let ledger = Ledger::open(&a.ledger)
        .map_err(|e| usage(format!("ledger {}: {e}", a.ledger.display())))?;
    let trust = a.trust_out.unwrap_or_else(|| default_trust(&a.ledger));
    let r = SyncClient::new(&a.server, Some(token))
        .and_then(|c| c.sync(&ledger, &trust))
        .map_err(|e| usage(format!("sync failed (nothing lost; run it again): {e}")))?;
    if a.json {
        util::print_json(&serde_json::to_value(&r).unwrap_or_default());
    } else {
        println!(
            "synced: {} pushed ({} accepted, {} conflicts, {} invalid), {} left; {} new revocations; trust list {} ({})",
            r.pushed,
            r.accepted,
            r.conflicts,
            r.invalid,
            r.remaining,
            r.revocations_added,
            if r.trust_updated { "updated" } else { "unchanged" },
            trust.display()
        );
        if let Some(why) = &r.rejected {
            println!("REJECTED by the server: {why}");
        }
    }
    Ok(if r.rejected.is_some() {
        Outcome::Refused
    } else {
        Outcome::Ok
    })
}
