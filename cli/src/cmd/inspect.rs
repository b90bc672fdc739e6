use evoucher_core::verify::inspect;

use crate::util::{self, CliError, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// The voucher text, or - to read it from standard input.
    text: String,
}

/// Exit 0 when every layer decodes (the signature is not checked), 1 otherwise.
pub fn run(a: Args) -> Result<Outcome, CliError> {
    let text = util::read_text(&a.text)?;
    let i = inspect(&text);
    if a.json {
        util::print_json(&serde_json::to_value(&i).unwrap_or_default());
    } else {
        println!("length      {} bytes", i.length);
        if let Some(p) = &i.prefix {
            println!("prefix      {p}");
        }
        if let Some(b) = &i.body_hex {
            println!("base45 body {} bytes: {b}", b.len() / 2);
        }
        if let Some(c) = i.compressed {
            println!(
                "zlib        {}",
                if c { "compressed" } else { "uncompressed" }
            );
        }
        if let Some(c) = &i.cose_hex {
            println!(
                "COSE_Sign1  {} bytes, {}: {c}",
                c.len() / 2,
                if i.tagged == Some(true) {
                    "tag 18"
                } else {
                    "untagged"
                }
            );
        }
        if let Some(h) = &i.protected {
            println!(
                "protected   alg={} kid={} (+{} other)",
                h.alg.as_deref().unwrap_or("-"),
                h.kid.as_deref().unwrap_or("-"),
                h.other_labels
            );
        }
        if let Some(h) = &i.unprotected {
            println!(
                "unprotected alg={} kid={} (+{} other)",
                h.alg.as_deref().unwrap_or("-"),
                h.kid.as_deref().unwrap_or("-"),
                h.other_labels
            );
        }
        if let Some(p) = &i.payload_hex {
            println!("payload     {} bytes: {p}", p.len() / 2);
        }
        if let Some(s) = &i.signature_hex {
            println!("signature   {s} (not checked: no trust store)");
        }
        if let Some(c) = &i.claims {
            println!(
                "claims      {}",
                serde_json::to_string_pretty(c).unwrap_or_default()
            );
        }
        if let Some(e) = &i.error {
            println!("FAILED at {}: {}", e.stage, e.message);
        }
    }
    Ok(if i.error.is_none() {
        Outcome::Ok
    } else {
        Outcome::Refused
    })
}
