use std::path::{Path, PathBuf};

use clap::Subcommand;
use evoucher_core::ledger::{Entry, Ledger, Redeemer};

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

fn open(p: &Path) -> Result<Ledger, CliError> {
    if !p.exists() {
        return Err(usage(format!("ledger {} does not exist", p.display())));
    }
    Ledger::open(p).map_err(|e| usage(format!("ledger {}: {e}", p.display())))
}

fn db(e: evoucher_core::ledger::LedgerError) -> CliError {
    usage(format!("ledger: {e}"))
}

fn line(e: &Entry) -> String {
    format!(
        "{:>6}  {}  {:<6}  {}  {:<10} {:<14} {:>10} {:<3} {}{}",
        e.seq,
        util::fmt_time(e.at),
        e.kind.as_str(),
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
    )
}

/// Every entry in order, a page at a time.
fn each_entry(
    l: &Ledger,
    mut f: impl FnMut(&Entry) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut after = 0;
    loop {
        let page = l.entries(after, 1000).map_err(db)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = last.seq;
        for e in &page {
            f(e)?;
        }
    }
}

fn brief(e: &Entry) -> serde_json::Value {
    let mut j = serde_json::to_value(e).unwrap_or_default();
    if let Some(o) = j.as_object_mut() {
        o.remove("voucher_text");
    }
    j
}

pub fn run(a: Args) -> Result<Outcome, CliError> {
    match a.cmd {
        Cmd::List { c } => {
            let l = open(&c.ledger)?;
            each_entry(&l, |e| {
                if c.json {
                    util::print_json(&brief(e));
                } else {
                    println!("{}", line(e));
                }
                Ok(())
            })?;
            Ok(Outcome::Ok)
        }
        Cmd::Show { c, id } => {
            let l = open(&c.ledger)?;
            match l.entry(&id).map_err(db)? {
                Some(e) => {
                    if c.json {
                        util::print_json(&serde_json::to_value(&e).unwrap_or_default());
                    } else {
                        println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
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
            let l = open(&c.ledger)?;
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
            let l = open(&c.ledger)?;
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            let err = |e: csv::Error| usage(format!("writing CSV: {e}"));
            w.write_record([
                "seq",
                "id",
                "kind",
                "voucher_id",
                "issuer_kid",
                "provider",
                "device",
                "amount",
                "currency",
                "items",
                "voids",
                "at",
                "hash",
                "voucher_text",
            ])
            .map_err(err)?;
            each_entry(&l, |e| {
                w.write_record([
                    e.seq.to_string(),
                    e.id.clone(),
                    e.kind.as_str().into(),
                    e.voucher_id.to_hex(),
                    hex::encode(&e.issuer_kid),
                    e.provider.clone(),
                    e.device.clone(),
                    e.amount.map(|a| a.to_string()).unwrap_or_default(),
                    e.currency.clone().unwrap_or_default(),
                    e.items
                        .iter()
                        .map(|i| format!("{}:{}", i.code, i.quantity))
                        .collect::<Vec<_>>()
                        .join(";"),
                    e.voids.clone().unwrap_or_default(),
                    util::fmt_time(e.at),
                    hex::encode(&e.hash),
                    e.voucher_text.clone(),
                ])
                .map_err(err)
            })?;
            w.flush().map_err(|e| usage(format!("writing CSV: {e}")))?;
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
            let device = super::redeem::device_id(&l);
            let who = Redeemer {
                provider: &target.provider,
                category: None,
                device: &device,
            };
            match l.void(&id, &who, now) {
                Ok(e) => {
                    if c.json {
                        util::print_json(&brief(&e));
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
