//! Fetching a program's JWKS over HTTP(S) and caching it for offline use.
//!
//! The cache is the JWKS itself with one extra top-level member, `evoucher_source`
//! (`{"url", "fetched_at", "etag"}`), which JWKS readers ignore. A fetch is validated as a trust
//! store before anything is written, and written atomically (temporary file, fsync, rename), so
//! a failed fetch leaves the previous cache as it was: a phone offline for days keeps its keys.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

pub use crate::keys::Source;
use crate::trust::TrustStore;

/// Responses larger than this are refused.
pub const MAX_JWKS_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("HTTP request to {url} failed: {reason}")]
    Http { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} sent more than {MAX_JWKS_BYTES} bytes")]
    TooLarge { url: String },
    #[error("{url} did not send a usable JWKS: {reason}")]
    NotJwks { url: String, reason: String },
    #[error("I/O error writing the cache: {0}")]
    Io(#[from] std::io::Error),
}

/// The JWKS URLs of an OpenG2P deployment, newest first: OpenG2P 17 serves it under
/// `security`, OpenG2P 15 under `payments`.
pub fn openg2p_jwks_urls(base: &str) -> [String; 2] {
    let b = base.trim_end_matches('/');
    [
        format!("{b}/api/v1/security/.well-known/jwks.json"),
        format!("{b}/api/v1/payments/.well-known/jwks.json"),
    ]
}

/// Fetch a JWKS and check that it is a usable trust store. Returns the document with
/// `evoucher_source` added, and the parsed store.
pub fn fetch_jwks(
    url: &str,
    now: i64,
    default_currency: Option<&str>,
) -> Result<(serde_json::Value, TrustStore), FetchError> {
    let http = |reason: String| FetchError::Http {
        url: url.to_owned(),
        reason,
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("evoucher/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| http(e.to_string()))?;
    let resp = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .map_err(|e| http(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(FetchError::Status {
            url: url.to_owned(),
            status: resp.status().as_u16(),
        });
    }
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    resp.take(MAX_JWKS_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| http(e.to_string()))?;
    if body.len() as u64 > MAX_JWKS_BYTES {
        return Err(FetchError::TooLarge {
            url: url.to_owned(),
        });
    }
    let not = |reason: String| FetchError::NotJwks {
        url: url.to_owned(),
        reason,
    };
    let mut doc: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| not(e.to_string()))?;
    let keys = doc
        .get_mut("keys")
        .and_then(|k| k.as_array_mut())
        .ok_or_else(|| not("no `keys` array".into()))?;
    if let Some(c) = default_currency {
        for k in keys.iter_mut() {
            let kty = k.get("kty").and_then(|v| v.as_str()).unwrap_or("");
            if (kty == "RSA" || kty == "EC") && k.get("currency").is_none() {
                k["currency"] = c.into();
            }
        }
    }
    doc["evoucher_source"] = serde_json::to_value(Source {
        url: url.to_owned(),
        fetched_at: now,
        etag,
    })
    .map_err(|e| not(e.to_string()))?;
    let store = TrustStore::from_jwks_json(&doc.to_string()).map_err(|e| not(e.to_string()))?;
    if store.is_empty() {
        return Err(not("no key evoucher can use".into()));
    }
    Ok((doc, store))
}

/// Write a fetched JWKS to `path` atomically.
pub fn write_cache(path: &Path, doc: &serde_json::Value) -> Result<(), FetchError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("jwks")
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(
            serde_json::to_string_pretty(doc)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}
