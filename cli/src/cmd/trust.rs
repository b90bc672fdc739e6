use std::path::PathBuf;

use clap::Subcommand;
use evoucher_core::fetch::{fetch_jwks, openg2p_jwks_urls, write_cache, FetchError};

use crate::util::{self, usage, CliError, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Fetch a program's JWKS and cache it for offline use (atomically: a failed fetch keeps
    /// the old cache).
    Fetch {
        /// The JWKS URL.
        #[arg(long, conflicts_with = "openg2p", required_unless_present = "openg2p")]
        url: Option<String>,
        /// An OpenG2P base URL: tries /api/v1/security/.well-known/jwks.json (OpenG2P 17), then
        /// /api/v1/payments/.well-known/jwks.json (OpenG2P 15).
        #[arg(long)]
        openg2p: Option<String>,
        /// Where to cache the JWKS.
        #[arg(long)]
        out: PathBuf,
        /// Currency of amounts in JWT vouchers, for keys that name none (OpenG2P vouchers carry
        /// a bare amount).
        #[arg(long)]
        currency: Option<String>,
        /// Print one JSON object: url, file, time, usable keys and skipped keys with reasons.
        #[arg(long)]
        json: bool,
    },
    /// List the keys of a trust store and when it was fetched.
    Show {
        /// The trust store (a JWKS file).
        #[arg(long)]
        trust: PathBuf,
        /// Print one JSON object: keys, skipped keys with reasons, where it was fetched from.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(a: Args) -> Result<Outcome, CliError> {
    match a.cmd {
        Cmd::Fetch {
            url,
            openg2p,
            out,
            currency,
            json,
        } => {
            if let Some(c) = &currency {
                if !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) {
                    return Err(usage(format!("--currency {c:?} is not an ISO 4217 code")));
                }
            }
            let urls: Vec<String> = match (url, openg2p) {
                (Some(u), _) => vec![u],
                (None, Some(b)) => openg2p_jwks_urls(&b).to_vec(),
                (None, None) => return Err(usage("give --url or --openg2p")),
            };
            let now = util::now();
            let mut last: Option<FetchError> = None;
            for u in &urls {
                match fetch_jwks(u, now, currency.as_deref()) {
                    Ok((doc, store)) => {
                        write_cache(&out, &doc).map_err(|e| usage(e.to_string()))?;
                        if json {
                            util::print_json(&serde_json::json!({
                                "url": u, "out": out.display().to_string(), "fetched_at": util::fmt_time(now),
                                "keys": store.len(), "skipped": store.skipped(),
                            }));
                        } else {
                            println!(
                                "fetched {} usable keys from {u} into {} at {}",
                                store.len(),
                                out.display(),
                                util::fmt_time(now),
                            );
                            print_skipped(&store);
                        }
                        return Ok(Outcome::Ok);
                    }
                    Err(e @ FetchError::Status { status: 404, .. }) if urls.len() > 1 => {
                        last = Some(e);
                    }
                    Err(e) => {
                        return Err(usage(format!(
                            "{e}; the cache {} was left as it was",
                            out.display()
                        )))
                    }
                }
            }
            Err(usage(format!(
                "{}; the cache {} was left as it was",
                last.map(|e| e.to_string()).unwrap_or_default(),
                out.display()
            )))
        }
        Cmd::Show { trust, json } => {
            let store = super::verify::load_trust(&trust)?;
            let mut keys: Vec<serde_json::Value> = store
                .keys()
                .map(|k| serde_json::json!({"kid": k.kid.to_b64(), "kty": "OKP", "alg": "EdDSA", "iss": k.iss, "nbf": k.nbf, "exp": k.exp}))
                .collect();
            for k in store.jwt_keys().values() {
                let (kty, alg) = match &k.kind {
                    evoucher_core::jwt::JwtKeyKind::Rsa(_) => ("RSA", "RS256/PS256"),
                    evoucher_core::jwt::JwtKeyKind::P256(_) => ("EC", "ES256"),
                };
                keys.push(serde_json::json!({"kid": k.kid, "kty": kty, "alg": alg, "iss": k.iss, "currency": k.currency}));
            }
            let src = store.source().map(|s| {
                serde_json::json!({"url": s.url, "fetched_at": util::fmt_time(s.fetched_at),
                    "age_hours": (util::now() - s.fetched_at) as f64 / 3600.0})
            });
            if json {
                util::print_json(
                    &serde_json::json!({"keys": keys, "skipped": store.skipped(), "source": src}),
                );
            } else {
                match store.source() {
                    Some(s) => println!(
                        "fetched from {} at {} ({:.1} hours ago)",
                        s.url,
                        util::fmt_time(s.fetched_at),
                        (util::now() - s.fetched_at) as f64 / 3600.0
                    ),
                    None => println!("local trust store (not fetched)"),
                }
                for k in &keys {
                    println!(
                        "  {:<4} {:<12} {}{}",
                        k["kty"].as_str().unwrap_or(""),
                        k["alg"].as_str().unwrap_or(""),
                        k["kid"].as_str().unwrap_or(""),
                        k["currency"]
                            .as_str()
                            .map(|c| format!("  currency {c}"))
                            .unwrap_or_default()
                    );
                }
                print_skipped(&store);
            }
            Ok(Outcome::Ok)
        }
    }
}

/// The keys a JWKS held that are not trusted, each with its reason (RFC 7517 §5).
fn print_skipped(store: &evoucher_core::TrustStore) {
    for k in store.skipped() {
        println!(
            "  skipped {} ({}): {}",
            k.kid.as_deref().unwrap_or("(no kid)"),
            k.kty,
            k.reason
        );
    }
}
