//! The sync client: enrol a device, then push the ledger's outbox to the program server in
//! batches and pull the trust list and revocations, retrying with backoff. Every batch's
//! judgements are recorded in the ledger as they arrive, so a sync that fails part-way resumes
//! where it stopped.
//!
//! The outbox is pushed first: the server records which cancellations a device has received
//! and where its chain stood then, and an honest phone's chain is fully pushed at that moment.
//! When the server's chain for this device is behind the phone (its database was restored from
//! a backup), the client sends the missing entries again from where the server stands.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ledger::{Judged, Ledger, LedgerError};
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
    /// The provider's category as the server registered it.
    #[serde(default)]
    pub category: Option<String>,
    pub token: String,
}

/// An entry the server did not accept, and why.
#[derive(Debug, Clone, Serialize)]
pub struct NotAccepted {
    pub id: String,
    pub seq: i64,
    pub voucher_id: String,
    /// `conflict`, `invalid`, `suspect` or `rejected`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict_with: Option<String>,
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
    pub suspect: usize,
    /// Entries sent again because the server had lost them (its database was restored).
    pub resent: usize,
    /// Every entry of this sync that was not accepted, with the server's reason.
    pub not_accepted: Vec<NotAccepted>,
    /// The server refused an entry as a link of this device's chain (sequence, previous hash,
    /// hash, signature): sync stopped there. What to do is in docs/ledger.md.
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
    pub(crate) base: String,
    token: Option<String>,
    pub(crate) http: reqwest::blocking::Client,
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
    pub(crate) fn send(
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
    pub(crate) fn send_json<T: serde::de::DeserializeOwned>(
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

    /// Enrol a ledger's device and record the enrolment in the ledger (its provider, category
    /// and device id are then fixed). A ledger enrols once.
    pub fn enrol_ledger(&self, ledger: &Ledger, code: &str) -> Result<Enrolment, SyncError> {
        if ledger.enrolment()?.is_some() {
            return Err(LedgerError::Enrolled("this ledger is already enrolled".into()).into());
        }
        let e = self.enrol(code, &ledger.device_public())?;
        ledger.set_enrolment(&crate::ledger::Enrolment {
            server: self.base.clone(),
            device_id: e.device_id.clone(),
            provider: e.provider_id.clone(),
            category: e.category.clone(),
        })?;
        Ok(e)
    }

    /// Push the outbox in batches of [`BATCH`], then pull the trust list (into `trust_path`,
    /// atomically) and revocations.
    pub fn sync(&self, ledger: &Ledger, trust_path: &Path) -> Result<SyncReport, SyncError> {
        let state_path = state_path(ledger.path());
        let mut state: State = std::fs::read_to_string(&state_path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let mut report = SyncReport::default();

        self.push_outbox(ledger, &mut report)?;

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

        // Revocations after our cursor (with the device token: the server records the pull).
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
        report.remaining = ledger.stats()?.unsynced as usize;
        Ok(report)
    }

    /// Push the outbox in batches, recording each answer in the ledger.
    fn push_outbox(&self, ledger: &Ledger, report: &mut SyncReport) -> Result<(), SyncError> {
        // `Some(after)`: sending entries after `after` again, synced or not (the server lost
        // them); entered at most once per sync.
        let mut resend_after: Option<i64> = None;
        let mut resent_once = false;
        loop {
            let (batch, already) = match resend_after {
                Some(after) => {
                    let page = ledger.entries_judged(after, BATCH)?;
                    let already = page.iter().filter(|(_, j)| j.is_some()).count();
                    (page.into_iter().map(|(e, _)| e).collect(), already)
                }
                None => (ledger.outbox(BATCH)?, 0),
            };
            if batch.is_empty() {
                if resend_after.take().is_some() {
                    continue;
                }
                break;
            }
            let body = serde_json::json!({ "entries": batch });
            let v: serde_json::Value = self.send_json(|| {
                self.http
                    .post(format!("{}/api/v1/sync/redemptions", self.base))
                    .json(&body)
            })?;
            let mut judged = Vec::new();
            let mut restart: Option<i64> = None;
            for res in v["results"].as_array().cloned().unwrap_or_default() {
                let id = res["id"].as_str().unwrap_or_default().to_owned();
                let seq = res["seq"].as_i64().unwrap_or(0);
                let status = res["status"].as_str().unwrap_or("rejected").to_owned();
                let reason = res["reason"].as_str().map(str::to_owned);
                match status.as_str() {
                    "accepted" => report.accepted += 1,
                    "conflict" => report.conflicts += 1,
                    "invalid" => report.invalid += 1,
                    "suspect" => report.suspect += 1,
                    _ => {
                        let expected = res["expected_seq"].as_i64();
                        if let (Some(x), false) = (expected, resent_once) {
                            if x >= 1 && x < seq {
                                // The server's chain for this device stops before this entry:
                                // send again from where it stands.
                                restart = Some(x - 1);
                                break;
                            }
                        }
                        report.rejected = Some(format!(
                            "entry {id} (seq {seq}): {}",
                            reason.as_deref().unwrap_or("rejected")
                        ));
                    }
                }
                if status != "accepted" {
                    report.not_accepted.push(NotAccepted {
                        id: id.clone(),
                        seq,
                        voucher_id: batch
                            .iter()
                            .find(|e| e.id == id)
                            .map(|e| e.voucher_id.to_hex())
                            .unwrap_or_default(),
                        status: status.clone(),
                        reason: reason.clone(),
                        conflict_with: res["conflict_with"].as_str().map(str::to_owned),
                    });
                }
                if status != "rejected" {
                    judged.push(Judged { id, status, reason });
                }
            }
            report.pushed += judged.len();
            report.resent += already.min(judged.len());
            ledger.mark_judged(&judged, crate::ledger_now())?;
            if let Some(after) = restart {
                resent_once = true;
                resend_after = Some(after);
                continue;
            }
            if report.rejected.is_some() || judged.is_empty() {
                break;
            }
            if let Some(after) = &mut resend_after {
                *after = batch.last().map(|e| e.seq).unwrap_or(*after);
            }
        }
        Ok(())
    }
}

pub(crate) fn problem(r: reqwest::blocking::Response) -> String {
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
