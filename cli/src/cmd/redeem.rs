use std::path::PathBuf;

use evoucher_core::ledger::{Enrolment, ItemQty, Ledger, RedeemError, RedeemRequest, Redeemer};
use evoucher_core::verify;
use evoucher_core::voucher::format_amount;

use crate::util::{self, parse_item, usage, CliError, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ledger file (created, with its device key, if it does not exist).
    #[arg(long)]
    ledger: PathBuf,
    /// Trust store: a JWKS file of issuer public keys (default on an enrolled ledger: the
    /// trust list `evoucher sync` keeps, `<ledger>.trust.json`).
    #[arg(long)]
    trust: Option<PathBuf>,
    /// This service provider's id (checked against the voucher's `aud`). Not needed on an
    /// enrolled ledger, which redeems for the provider it was enrolled for (another is refused).
    #[arg(long)]
    provider: Option<String>,
    /// This provider's category (checked against the voucher's categories). An enrolled ledger
    /// uses the category the server registered.
    #[arg(long)]
    category: Option<String>,
    /// Device id recorded in the entry (default: the enrolled device id, or the id the ledger's
    /// device key gives).
    #[arg(long)]
    device: Option<String>,
    /// Redeem as of this time (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<String>,
    /// Amount in minor units (partial vouchers).
    #[arg(long, conflicts_with = "items")]
    amount: Option<u64>,
    /// Item CODE:QTY to redeem (partial vouchers); repeat for several.
    #[arg(long = "item", value_name = "CODE:QTY")]
    items: Vec<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// The voucher text, or - to read it from standard input.
    text: String,
}

pub fn run(a: Args) -> Result<Outcome, CliError> {
    let now = match &a.at {
        Some(t) => util::parse_time(t)?,
        None => util::now(),
    };
    let req = if let Some(x) = a.amount {
        RedeemRequest::Amount(x)
    } else if !a.items.is_empty() {
        RedeemRequest::Items(
            a.items
                .iter()
                .map(|s| {
                    parse_item(s).map(|i| ItemQty {
                        code: i.code,
                        quantity: i.quantity,
                    })
                })
                .collect::<Result<_, _>>()?,
        )
    } else {
        RedeemRequest::Whole
    };
    let enrolled = enrolment_of(&a.ledger)?;
    let trust_path = match (&a.trust, &enrolled) {
        (Some(t), _) => t.clone(),
        (None, Some(_)) => {
            let t = super::sync::default_trust(&a.ledger);
            if !t.exists() {
                return Err(usage(format!(
                    "no trust list yet ({}): run `evoucher sync --ledger {}` first to get the trust list",
                    t.display(),
                    a.ledger.display()
                )));
            }
            t
        }
        (None, None) => {
            return Err(usage(
                "--trust is required on a ledger that is not enrolled (an enrolled ledger uses the trust list `evoucher sync` keeps)",
            ))
        }
    };
    if a.provider.is_none() && enrolled.is_none() {
        return Err(usage(
            "--provider is required on a ledger that is not enrolled",
        ));
    }
    let trust = super::verify::load_trust(&trust_path)?;
    let text = util::read_text(&a.text)?;
    let verified = match verify(&text, &trust, now) {
        Ok(v) => v,
        Err(e) => {
            if a.json {
                util::print_json(&serde_json::json!({
                    "redeemed": false, "stage": e.stage(), "error": e.to_string(),
                }));
            } else {
                println!("REFUSED ({}): {e}", e.stage());
            }
            return Ok(Outcome::Refused);
        }
    };
    let ledger = Ledger::open(&a.ledger)
        .map_err(|e| usage(format!("ledger {}: {e}", a.ledger.display())))?;
    let device = match (&a.device, &enrolled) {
        (Some(d), _) => d.clone(),
        // The enrolled device id (the ledger fills it in).
        (None, Some(_)) => String::new(),
        (None, None) => ledger
            .device_id()
            .map_err(|e| usage(format!("ledger {}: {e}", a.ledger.display())))?,
    };
    let who = Redeemer {
        provider: a.provider.as_deref().unwrap_or(""),
        category: a.category.as_deref(),
        device: &device,
    };
    match ledger.redeem(&verified, &who, &req, now) {
        Ok(r) => {
            if a.json {
                let mut entry = serde_json::to_value(&r.entry).unwrap_or_default();
                if let Some(o) = entry.as_object_mut() {
                    o.remove("voucher_text");
                }
                util::print_json(&serde_json::json!({
                    "redeemed": true, "entry": entry, "remaining": r.remaining,
                }));
            } else {
                let v = &verified.voucher;
                println!(
                    "REDEEMED voucher {} (entry {}, seq {})",
                    v.id, r.entry.id, r.entry.seq
                );
                if let (Some(amt), Some(cur)) = (r.entry.amount, &r.entry.currency) {
                    println!("  amount     {}", format_amount(amt, cur));
                }
                for it in &r.entry.items {
                    println!("  item       {} × {}", it.code, it.quantity);
                }
                if let (Some(left), Some(val)) = (r.remaining.amount, &v.value) {
                    println!("  remaining  {}", format_amount(left, &val.currency));
                }
                for it in r.remaining.items.iter().filter(|i| i.quantity > 0) {
                    println!("  remaining  {} × {}", it.code, it.quantity);
                }
            }
            Ok(Outcome::Ok)
        }
        Err(RedeemError::Refused(x)) => {
            if a.json {
                let mut j = serde_json::to_value(&x).unwrap_or_default();
                if let Some(o) = j.as_object_mut() {
                    o.insert("redeemed".into(), false.into());
                    o.insert("stage".into(), x.code().into());
                    o.insert("error".into(), x.to_string().into());
                }
                util::print_json(&j);
            } else {
                println!("REFUSED ({}): {x}", x.code());
            }
            Ok(Outcome::Refused)
        }
        Err(RedeemError::Ledger(e)) => Err(usage(format!("ledger {}: {e}", a.ledger.display()))),
    }
}

/// The enrolment recorded in an existing ledger (read without changing anything), if any.
fn enrolment_of(path: &std::path::Path) -> Result<Option<Enrolment>, CliError> {
    if !path.exists() {
        return Ok(None);
    }
    match Ledger::open_read_only(path) {
        Ok(l) => l
            .enrolment()
            .map_err(|e| usage(format!("ledger {}: {e}", path.display()))),
        // Left to the writable open below, which reports it with its reason.
        Err(_) => Ok(None),
    }
}
