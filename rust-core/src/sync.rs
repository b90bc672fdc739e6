//! The sync client: enrol a device, then pull the trust list and revocations and push the
//! ledger's outbox to the program server, in batches, retrying with backoff. Every batch's
//! acknowledgements are recorded in the ledger as they arrive, so a sync that fails part-way
//! resumes where it stopped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ledger::{Ledger, LedgerError};
use crate::voucher::VoucherId;

/// Entries per push.
pub const BATCH: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot reach the server: {0}")]
    Http(String),
    #[error("server answered HTTP {0}: {1}")]
    Status(u16, String),
    #[error("server sent something unexpected: {0}")]
    Protocol(String),
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// What `enrol` returns. Keep the token secret (it is the device's credential).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Enrolment {
    pub device_id: String,
    pub provider_id: String,
    pub token: String,
}

/// What a sync did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub trust_updated: bool,
    pub trust_keys: usize,
    pub revocations_added: usize,
    pub pushed: usize,
    pub accepted: usize,
    pub conflicts: usize,
    pub invalid: usize,
    /// The server refused an entry (its chain, hash or signature): sync stopped there.
    pub rejected: Option<String>,
    pub remaining: usize,
}

/// Cursor state kept beside the ledger (`<ledger>.sync.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    revocations_cursor: i64,
    trust_etag: Option<String>,
}

pub struct SyncClient {
    base: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
    attempts: u32,
}

impl std::fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SyncClient({})", self.base)
    }
}

impl SyncClient {
    pub fn new(base: &str, token: Option<String>) -> Result<Self, SyncError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("evoucher/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SyncError::Http(e.to_string()))?;
        Ok(SyncClient {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
            attempts: 4,
        })
    }

    /// Send a request, retrying connection failures and 5xx answers with backoff
    /// (0.25 s, 0.5 s, 1 s). 4xx answers are final.
    fn send(
        &self,
        build: impl Fn() -> reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response, SyncError> {
        let mut wait = Duration::from_millis(250);
        let mut last = SyncError::Http("no attempt".into());
        for attempt in 0..self.attempts {
            if attempt > 0 {
                std::thread::sleep(wait);
                wait *= 2;
            }
            let mut req = build();
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            match req.send() {
                Ok(r) if r.status().is_server_error() => {
                    last = SyncError::Status(r.status().as_u16(), problem(r));
                }
                Ok(r) => return Ok(r),
                Err(e) => last = SyncError::Http(e.to_string()),
            }
        }
        Err(last)
    }

    /// [`send`](Self::send), then a 2xx answer's JSON body; any other answer is
    /// [`SyncError::Status`] with its problem detail.
    fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        build: impl Fn() -> reqwest::blocking::RequestBuilder,
    ) -> Result<T, SyncError> {
        let r = self.send(build)?;
        if !r.status().is_success() {
            return Err(SyncError::Status(r.status().as_u16(), problem(r)));
        }
        r.json().map_err(|e| SyncError::Protocol(e.to_string()))
    }

    /// Enrol this device with a one-time code; the device key is the ledger's.
    pub fn enrol(&self, code: &str, device_public: &str) -> Result<Enrolment, SyncError> {
        let body = serde_json::json!({"code": code, "public_key": device_public});
        self.send_json(|| {
            self.http
                .post(format!("{}/api/v1/devices/enrol", self.base))
                .json(&body)
        })
    }

    /// Pull the trust list (into `trust_path`, atomically) and revocations, then push the
    /// outbox in batches of [`BATCH`].
    pub fn sync(&self, ledger: &Ledger, trust_path: &Path) -> Result<SyncReport, SyncError> {
        let state_path = state_path(ledger.path());
        let mut state: State = std::fs::read_to_string(&state_path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let mut report = SyncReport::default();

        // Trust list, with the ETag.
        let etag = state.trust_etag.clone();
        let r = self.send(|| {
            let mut b = self.http.get(format!("{}/api/v1/trust", self.base));
            if let (Some(e), true) = (&etag, trust_path.exists()) {
                b = b.header("if-none-match", e);
            }
            b
        })?;
        match r.status().as_u16() {
            304 => {}
            200 => {
                let tag = r
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = r.text().map_err(|e| SyncError::Http(e.to_string()))?;
                let store = crate::TrustStore::from_jwks_json(&body)
                    .map_err(|e| SyncError::Protocol(e.to_string()))?;
                report.trust_keys = store.len();
                write_atomic(trust_path, body.as_bytes())?;
                state.trust_etag = tag;
                report.trust_updated = true;
            }
            s => return Err(SyncError::Status(s, problem(r))),
        }

        // Revocations after our cursor.
        loop {
            let url = format!(
                "{}/api/v1/revocations?since={}",
                self.base, state.revocations_cursor
            );
            let v: serde_json::Value = self.send_json(|| self.http.get(&url))?;
            let list = v["revocations"].as_array().cloned().unwrap_or_default();
            let ids: Vec<(VoucherId, i64)> = list
                .iter()
                .filter_map(|x| {
                    Some((
                        VoucherId::from_hex(x["voucher_id"].as_str()?)?,
                        x["revoked_at"].as_i64()?,
                    ))
                })
                .collect();
            report.revocations_added += ledger.add_revocations(&ids)?;
            let next = v["next"].as_i64().unwrap_or(state.revocations_cursor);
            let done = list.is_empty() || next <= state.revocations_cursor;
            state.revocations_cursor = next;
            write_atomic(
                &state_path,
                serde_json::to_string(&state).unwrap_or_default().as_bytes(),
            )?;
            if done {
                break;
            }
        }

        // Push the outbox.
        loop {
            let batch = ledger.outbox(BATCH)?;
            if batch.is_empty() {
                break;
            }
            let body = serde_json::json!({ "entries": batch });
            let v: serde_json::Value = self.send_json(|| {
                self.http
                    .post(format!("{}/api/v1/sync/redemptions", self.base))
                    .json(&body)
            })?;
            let mut acked = Vec::new();
            for res in v["results"].as_array().cloned().unwrap_or_default() {
                let id = res["id"].as_str().unwrap_or_default().to_owned();
                match res["status"].as_str() {
                    Some("accepted") => report.accepted += 1,
                    Some("conflict") => report.conflicts += 1,
                    Some("invalid") => report.invalid += 1,
                    _ => {
                        report.rejected = Some(format!(
                            "entry {id}: {}",
                            res["reason"].as_str().unwrap_or("rejected")
                        ));
                        continue;
                    }
                }
                acked.push(id);
            }
            report.pushed += acked.len();
            ledger.mark_synced(&acked, crate::ledger_now(), None)?;
            if report.rejected.is_some() || acked.is_empty() {
                break;
            }
        }
        report.remaining = ledger.stats()?.unsynced as usize;
        Ok(report)
    }
}

fn problem(r: reqwest::blocking::Response) -> String {
    let text = r.text().unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(200).collect())
}

/// `<ledger>.sync.json`.
pub fn state_path(ledger: &Path) -> PathBuf {
    let mut p = ledger.as_os_str().to_owned();
    p.push(".sync.json");
    PathBuf::from(p)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = {
        let mut p = path.as_os_str().to_owned();
        p.push(".tmp");
        PathBuf::from(p)
    };
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
