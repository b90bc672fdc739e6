use std::path::PathBuf;

use evoucher_core::trust::TrustStore;
use evoucher_core::verify::{stage_flags, stages_for, verify, Verified};
use evoucher_core::voucher::{format_amount, RedemptionRule};
use evoucher_core::VerifyError;

use crate::util::{self, io_err, CliError, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Trust store: a JWKS file of issuer public keys.
    #[arg(long)]
    trust: PathBuf,
    /// Verify as of this time (RFC 3339) instead of now.
    #[arg(long)]
    at: Option<String>,
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
    let trust = load_trust(&a.trust)?;
    let text = util::read_text(&a.text)?;
    let result = verify(&text, &trust, now);
    if a.json {
        util::print_json(&json_result(&result, stages_for(&text), now));
    } else {
        match &result {
            Ok(v) => print_human(v),
            Err(e) => println!("INVALID ({}): {e}", e.stage()),
        }
    }
    Ok(if result.is_ok() {
        Outcome::Ok
    } else {
        Outcome::Refused
    })
}

pub fn load_trust(path: &std::path::Path) -> Result<TrustStore, CliError> {
    let json = std::fs::read_to_string(path)
        .map_err(io_err(format!("reading trust store {}", path.display())))?;
    let trust = TrustStore::from_jwks_json(&json)
        .map_err(|e| util::usage(format!("trust store {}: {e}", path.display())))?;
    if trust.is_empty() {
        return Err(util::usage(format!(
            "trust store {} holds no usable key",
            path.display()
        )));
    }
    Ok(trust)
}

pub fn json_result(
    result: &Result<Verified, VerifyError>,
    stages: &[evoucher_core::Stage],
    now: i64,
) -> serde_json::Value {
    let stages: serde_json::Map<String, serde_json::Value> = stage_flags(result, stages)
        .into_iter()
        .map(|(s, f)| (s.as_str().to_owned(), serde_json::json!(f)))
        .collect();
    match result {
        Ok(v) => serde_json::json!({
            "valid": true,
            "format": v.format,
            "kid": v.kid.to_string(),
            "checked_at": util::fmt_time(now),
            "voucher": v.voucher,
            "stages": stages,
        }),
        Err(e) => serde_json::json!({
            "valid": false,
            "stage": e.stage(),
            "error": e.to_string(),
            "checked_at": util::fmt_time(now),
            "stages": stages,
        }),
    }
}

fn print_human(v: &Verified) {
    let x = &v.voucher;
    println!("VALID voucher {} (key {})", x.id, v.kid);
    println!("  issuer       {}", x.iss);
    println!(
        "  program      {}{}",
        x.program,
        x.cycle
            .as_deref()
            .map(|c| format!(" / cycle {c}"))
            .unwrap_or_default()
    );
    println!(
        "  beneficiary  {}{}",
        x.beneficiary.id,
        x.beneficiary
            .name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
    if let Some(val) = &x.value {
        println!(
            "  value        {}",
            format_amount(val.amount, &val.currency)
        );
    }
    for it in &x.items {
        println!(
            "  item         {} × {}{}",
            it.code,
            it.quantity,
            it.unit
                .as_deref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default()
        );
    }
    println!(
        "  use          {}",
        match x.rule {
            RedemptionRule::Single => "single (once, whole)",
            RedemptionRule::Partial => "partial (drawn down over visits)",
        }
    );
    if let Some(aud) = &x.aud {
        println!("  provider     only {aud}");
    }
    if !x.categories.is_empty() {
        println!("  categories   {}", x.categories.join(", "));
    }
    println!(
        "  valid        {} to {}",
        util::fmt_time(x.valid_from()),
        util::fmt_time(x.exp)
    );
}
