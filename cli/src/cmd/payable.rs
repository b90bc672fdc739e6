//! `evoucher payable verify`: what a payment switch runs before it pays. Takes an
//! account-payable PDF (the QR code on its page is read, its signed payable verified, and every
//! field printed on the page compared with what was signed) or the signed payable text itself.

use std::path::PathBuf;

use evoucher_core::payable::{self, PayableTrust};

use crate::util::{self, io_err, usage, CliError, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Check an account-payable PDF (or a file holding the EP1: text): exit 0 when the
    /// signature holds and the page says what was signed, 1 when not (the edited field is
    /// named), 2 for usage or input errors.
    Verify {
        /// The PDF, or a text file with the signed payable.
        file: PathBuf,
        /// The payables keys to trust (JWKS from the program server's
        /// /api/v1/payables/trust).
        #[arg(long, value_name = "JWKS")]
        trust: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(a: Args) -> Result<Outcome, CliError> {
    match a.cmd {
        Cmd::Verify { file, trust, json } => verify(&file, &trust, json),
    }
}

fn verify(
    file: &std::path::Path,
    trust: &std::path::Path,
    json: bool,
) -> Result<Outcome, CliError> {
    let jwks =
        std::fs::read_to_string(trust).map_err(io_err(format!("reading {}", trust.display())))?;
    let trust = PayableTrust::from_jwks_json(&jwks)
        .map_err(|e| usage(format!("{}: {e}", trust.display())))?;
    let bytes = std::fs::read(file).map_err(io_err(format!("reading {}", file.display())))?;
    let verdict = if bytes.starts_with(b"%PDF-") {
        evoucher_server::payable_pdf::verify(&bytes, &trust)
            .map_err(|e| usage(format!("{}: {e}", file.display())))?
    } else {
        let text = String::from_utf8(bytes).map_err(|_| {
            usage(format!(
                "{}: neither a PDF nor a payable text",
                file.display()
            ))
        })?;
        let text = text.trim();
        match payable::verify(text, &trust) {
            Ok((p, kid)) => evoucher_server::payable_pdf::Verdict {
                payable: Some(p),
                kid: Some(kid.to_b64()),
                refused: None,
                mismatches: Vec::new(),
            },
            Err(e) => evoucher_server::payable_pdf::Verdict {
                payable: None,
                kid: None,
                refused: Some(format!("refused at stage {}: {e}", e.stage())),
                mismatches: Vec::new(),
            },
        }
    };
    let ok = verdict.agrees();
    if json {
        util::print_json(&serde_json::json!({
            "valid": ok,
            "payable": verdict.payable,
            "kid": verdict.kid,
            "refused": verdict.refused,
            "mismatches": verdict.mismatches,
        }));
    } else if ok {
        let p = verdict.payable.as_ref().map(|p| {
            format!(
                "{} for claim {}: pay {} to {} ({})",
                p.id,
                p.claim,
                evoucher_core::voucher::format_amount(p.amount, &p.currency),
                p.payee_name,
                match &p.account {
                    payable::Account::Bank { number, bank, .. } =>
                        format!("account {number}, {bank}"),
                    payable::Account::Mobile {
                        msisdn, operator, ..
                    } => format!("{operator} {msisdn}"),
                }
            )
        });
        println!("VALID: {}", p.unwrap_or_default());
    } else {
        if let Some(r) = &verdict.refused {
            println!("REFUSED: {r}");
        }
        for m in &verdict.mismatches {
            match &m.printed {
                Some(x) => println!(
                    "EDITED: {} reads {x:?} on the page; it was signed as {:?}",
                    m.field, m.signed
                ),
                None => println!(
                    "EDITED: {} is not printed on the page (signed as {:?})",
                    m.field, m.signed
                ),
            }
        }
    }
    Ok(if ok { Outcome::Ok } else { Outcome::Refused })
}
