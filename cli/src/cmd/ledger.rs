use std::path::{Path, PathBuf};

use clap::Subcommand;
use evoucher_core::keys::kid_text;
use evoucher_core::ledger::{sync_status, Entry, Judged, Ledger, LedgerError, Redeemer};

use crate::util::{self, usage, CliError, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Clone, clap::Args)]
struct Common {
    /// The ledger file (must exist).
    #[arg(long)]
    ledger: PathBuf,
    /// Print JSON (one object per line).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// List entries in order.
    List {
        #[command(flatten)]
        c: Common,
    },
    /// Show one entry, with the voucher text.
    Show {
        #[command(flatten)]
        c: Common,
        id: String,
    },
    /// Check the hash chain and device signatures: exit 0 intact, 1 broken.
    Verify {
        #[command(flatten)]
        c: Common,
    },
    /// Export every entry as CSV on standard output.
    Export {
        #[command(flatten)]
        c: Common,
        /// CSV (the only format).
        #[arg(long, required = true)]
        csv: bool,
    },
    /// Undo a redemption by appending a void entry.
    Void {
        #[command(flatten)]
        c: Common,
        id: String,
        /// Time of the void (RFC 3339); default now.
        #[arg(long)]
        at: Option<String>,
    },
}

/// Open a ledger to change it (void).
fn open(p: &Path) -> Result<Ledger, CliError> {
    if !p.exists() {
        return Err(usage(format!(
            "ledger {}: {}",
            p.display(),
            if Ledger::device_key_path(p).exists() {
                LedgerError::Lost.to_string()
            } else {
                "does not exist".into()
            }
        )));
    }
    Ledger::open(p).map_err(|e| usage(format!("ledger {}: {e}", p.display())))
}

/// Open a ledger only to read it: works where nothing may be written (a read-only directory,
/// a copy without its device key).
fn open_to_read(p: &Path) -> Result<Ledger, CliError> {
    Ledger::open_read_only(p).map_err(|e| match e {
        LedgerError::NotFound => usage(format!("ledger {} does not exist", p.display())),
        e => usage(format!("ledger {}: {e}", p.display())),
    })
}

fn db(e: evoucher_core::ledger::LedgerError) -> CliError {
    usage(format!("ledger: {e}"))
}

/// The sync status of an entry: `waiting` until the server answered, then its judgement.
fn line(e: &Entry, j: &Option<Judged>) -> String {
    format!(
        "{:>6}  {}  {:<6}  {:<8}  {}  {:<10} {:<20} {:>10} {:<3} {}{}{}",
        e.seq,
        util::fmt_time(e.at),
        e.kind.as_str(),
        sync_status(j),
        e.voucher_id,
        e.provider,
        e.device,
        e.amount.map(|a| a.to_string()).unwrap_or_default(),
        e.currency.as_deref().unwrap_or(""),
        e.items
            .iter()
            .map(|i| format!("{}×{}", i.code, i.quantity))
            .collect::<Vec<_>>()
            .join(","),
        e.voids
            .as_deref()
            .map(|v| format!(" voids {v}"))
            .unwrap_or_default(),
        j.as_ref()
            .and_then(|j| j.reason.as_deref())
            .map(|r| format!("  ({r})"))
            .unwrap_or_default(),
    )
}

/// Every entry in order with the server's judgement, a page at a time.
fn each_entry(
    l: &Ledger,
    mut f: impl FnMut(&Entry, &Option<Judged>) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut after = 0;
    loop {
        let page = l.entries_judged(after, 1000).map_err(db)?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        after = last.seq;
        for (e, j) in &page {
            f(e, j)?;
        }
    }
}

/// An entry as JSON for people and scripts: key ids in their one form (as in the JWKS), the
/// sync status, without the voucher text.
fn brief(e: &Entry, j: &Option<Judged>) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("voucher_text");
        o.insert("issuer_kid".into(), kid_text(&e.issuer_kid).into());
        o.insert("sync".into(), sync_status(j).into());
        if let Some(r) = j.as_ref().and_then(|j| j.reason.as_deref()) {
            o.insert("sync_reason".into(), r.into());
        }
    }
    v
}

pub fn run(a: Args) -> Result<Outcome, CliError> {
    match a.cmd {
        Cmd::List { c } => {
            let l = open_to_read(&c.ledger)?;
            each_entry(&l, |e, j| {
                if c.json {
                    util::print_json(&brief(e, j));
                } else {
                    println!("{}", line(e, j));
                }
                Ok(())
            })?;
            Ok(Outcome::Ok)
        }
        Cmd::Show { c, id } => {
            let l = open_to_read(&c.ledger)?;
            match l.entry(&id).map_err(db)? {
                Some(e) => {
                    let mut v = serde_json::to_value(&e).unwrap_or_default();
                    v["issuer_kid"] = kid_text(&e.issuer_kid).into();
                    if c.json {
                        util::print_json(&v);
                    } else {
                        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                    }
                    Ok(Outcome::Ok)
                }
                None => {
                    eprintln!("evoucher: no entry {id}");
                    Ok(Outcome::Refused)
                }
            }
        }
        Cmd::Verify { c } => {
            let l = open_to_read(&c.ledger)?;
            let r = l.verify_chain().map_err(db)?;
            let stats = l.stats().map_err(db)?;
            match &r {
                Ok(rep) if c.json => util::print_json(&serde_json::json!({
                    "intact": true, "entries": rep.entries, "head_hash": hex::encode(&rep.head_hash), "stats": stats,
                })),
                Ok(rep) => println!(
                    "INTACT: {} entries, head {} ({} redemptions, {} voids, {} not yet synced)",
                    rep.entries,
                    hex::encode(&rep.head_hash),
                    stats.redemptions,
                    stats.voids,
                    stats.unsynced
                ),
                Err(e) if c.json => util::print_json(&serde_json::json!({
                    "intact": false, "seq": e.seq, "problem": e.problem,
                })),
                Err(e) => println!("BROKEN: {e}"),
            }
            Ok(if r.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Refused
            })
        }
        Cmd::Export { c, csv: _ } => {
            let l = open_to_read(&c.ledger)?;
            l.export_csv(std::io::stdout().lock()).map_err(db)?;
            Ok(Outcome::Ok)
        }
        Cmd::Void { c, id, at } => {
            let l = open(&c.ledger)?;
            let now = match &at {
                Some(t) => util::parse_time(t)?,
                None => util::now(),
            };
            let target = l
                .entry(&id)
                .map_err(db)?
                .ok_or_else(|| usage(format!("no entry {id}")))?;
            let device = l.device_id().map_err(db)?;
            let who = Redeemer {
                provider: &target.provider,
                category: None,
                device: &device,
            };
            match l.void(&id, &who, now) {
                Ok(e) => {
                    if c.json {
                        util::print_json(&brief(&e, &None));
                    } else {
                        println!("VOIDED entry {id} by entry {} (seq {})", e.id, e.seq);
                    }
                    Ok(Outcome::Ok)
                }
                Err(evoucher_core::ledger::LedgerError::CannotVoid(why)) => {
                    println!("REFUSED: cannot void {id}: {why}");
                    Ok(Outcome::Refused)
                }
                Err(e) => Err(db(e)),
            }
        }
    }
}
