use std::path::PathBuf;

use evoucher_core::keys::{IssuerKey, Jwks};

use crate::util::{CliError, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the private key (JWK, mode 0600). Never overwritten.
    #[arg(long)]
    out: PathBuf,
    /// Restrict the key to vouchers with this issuer (`iss`), recorded in the JWK.
    #[arg(long)]
    iss: Option<String>,
    /// Print {"kid", "private_key_file", "jwks"} instead of the bare JWKS.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<Outcome, CliError> {
    let mut key = IssuerKey::generate()?;
    key.iss = a.iss;
    key.write_new(&a.out)?;
    let jwks = Jwks {
        keys: vec![key.public_jwk()],
        evoucher_source: None,
    };
    if a.json {
        crate::util::print_json(&serde_json::json!({
            "kid": key.kid().to_b64(),
            "private_key_file": a.out.display().to_string(),
            "jwks": jwks,
        }));
    } else {
        eprintln!(
            "wrote private key {} (kid {}); the public JWKS follows",
            a.out.display(),
            key.kid().to_b64()
        );
        println!(
            "{}",
            serde_json::to_string_pretty(&jwks).unwrap_or_default()
        );
    }
    Ok(Outcome::Ok)
}
