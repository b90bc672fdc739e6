//! Sync between a device's ledger and the program server, split in two:
//!
//! - the **protocol** (this module, no I/O): a [`SyncRun`] says which HTTP request comes next
//!   and applies each answer to the ledger and the state kept beside it: push the outbox in
//!   batches, recording every batch's judgements as they arrive (so a sync that fails part-way
//!   resumes where it stopped), then the trust list, then the revocations;
//! - the **transport**: whoever sends the requests. The CLI uses [`SyncClient`] (reqwest,
//!   feature `http`); the Android app uses the phone's own HTTP stack, so that user-installed
//!   certificate authorities, proxies and captive portals behave as the phone's owner expects
//!   (docs/android.md). Both drive the same [`SyncRun`].
//!
//! The outbox is pushed first: the server records which cancellations a device has received
//! and where its chain stood then, and an honest phone's chain is fully pushed at that moment.
//! When the server's chain for this device is behind the phone (its database was restored from
//! a backup), the run sends the missing entries again from where the server stands.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ledger::{Entry, Judged, Ledger, LedgerError};
use crate::voucher::VoucherId;

#[cfg(feature = "http")]
mod client;
mod status;

#[cfg(feature = "http")]
pub use client::SyncClient;
pub use status::{status, ClockWarning, SyncStatus};

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

/// What enrolment returns. Keep the token secret (it is the device's credential).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Enrolment {
    pub device_id: String,
    pub provider_id: String,
    /// The provider's category as the server registered it.
    #[serde(default)]
    pub category: Option<String>,
    pub token: String,
}

/// The body of `POST /api/v1/devices/enrol` for this ledger's device key.
pub fn enrol_body(ledger: &Ledger, code: &str) -> String {
    serde_json::json!({"code": code, "public_key": ledger.device_public()}).to_string()
}

/// Apply the server's answer to an enrolment (`status`, `body`): record the enrolment in the
/// ledger (its provider, category and device id are then fixed; a ledger enrols once) and
/// return it with the device token.
pub fn apply_enrolment(
    ledger: &Ledger,
    server: &str,
    status: u16,
    body: &str,
) -> Result<Enrolment, SyncError> {
    if !(200..300).contains(&status) {
        return Err(SyncError::Status(status, problem_detail(body)));
    }
    let e: Enrolment =
        serde_json::from_str(body).map_err(|e| SyncError::Protocol(e.to_string()))?;
    ledger.set_enrolment(&crate::ledger::Enrolment {
        server: server.trim_end_matches('/').to_owned(),
        device_id: e.device_id.clone(),
        provider: e.provider_id.clone(),
        category: e.category.clone(),
    })?;
    Ok(e)
}

/// Refuse to enrol a ledger twice (before any request is made).
pub fn check_not_enrolled(ledger: &Ledger) -> Result<(), SyncError> {
    if ledger.enrolment()?.is_some() {
        return Err(LedgerError::Enrolled("this ledger is already enrolled".into()).into());
    }
    Ok(())
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

/// State kept beside the ledger (`<ledger>.sync.json`): the cursors, and when things were
/// last heard from the server (for the stale and clock warnings of [`status`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub revocations_cursor: i64,
    #[serde(default)]
    pub trust_etag: Option<String>,
    /// When the trust list was last fetched or confirmed current (phone's clock).
    #[serde(default)]
    pub trust_checked_at: Option<i64>,
    /// When the revocation list was last read to its end (phone's clock).
    #[serde(default)]
    pub revocations_checked_at: Option<i64>,
    /// When the last sync ended without an error (phone's clock).
    #[serde(default)]
    pub last_sync_at: Option<i64>,
    /// The server's clock minus the phone's, from the `Date` of the last answer.
    #[serde(default)]
    pub server_offset: Option<i64>,
}

impl State {
    /// The state beside `ledger` (default when there is none or it cannot be read: the
    /// cursors then start again, which costs a longer pull and nothing else).
    pub fn load(ledger: &Path) -> State {
        std::fs::read_to_string(state_path(ledger))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    }

    fn save(&self, ledger: &Path) -> Result<(), SyncError> {
        let json = serde_json::to_string(self).map_err(|e| SyncError::Protocol(e.to_string()))?;
        Ok(write_atomic(&state_path(ledger), json.as_bytes())?)
    }
}

/// One HTTP request a [`SyncRun`] needs. The transport adds the device token as a bearer
/// token, sends it (retrying connection failures and 5xx answers as it sees fit) and hands the
/// final answer to [`SyncRun::answer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path and query under the server's address, starting with `/`.
    pub path: String,
    /// A JSON body (for `POST`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// An `If-None-Match` header to send.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_none_match: Option<String>,
    /// Instead of `body`: this file's bytes, as `application/octet-stream` (a claim's
    /// document), with `file_name` as the `X-File-Name` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

impl Request {
    pub(crate) fn new(method: &'static str, path: String, body: Option<String>) -> Request {
        Request {
            method,
            path,
            body,
            if_none_match: None,
            body_file: None,
            file_name: None,
        }
    }
}

/// A conversation with the server without I/O of its own ([`SyncRun`], and
/// `claims::ClaimRun`, which implements it where it is defined): a transport asks for the next request, sends it, and hands
/// back the answer, until there is none.
pub trait Exchange {
    /// The next request, or `None` at the end.
    fn next(&mut self, ledger: &Ledger) -> Result<Option<Request>, SyncError>;
    /// Apply the answer to the request `next` gave last.
    fn answer(&mut self, ledger: &Ledger, a: Answer<'_>) -> Result<(), SyncError>;
}

impl Exchange for SyncRun {
    fn next(&mut self, ledger: &Ledger) -> Result<Option<Request>, SyncError> {
        SyncRun::next(self, ledger)
    }
    fn answer(&mut self, ledger: &Ledger, a: Answer<'_>) -> Result<(), SyncError> {
        SyncRun::answer(self, ledger, a)
    }
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    /// The `ETag` header.
    pub etag: Option<&'a str>,
    /// The `Date` header as seconds since the epoch.
    pub date: Option<i64>,
    pub body: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Push,
    Trust,
    Revocations,
    Done,
}

/// One sync, as a sequence of requests and answers (no I/O of its own but the ledger and the
/// files beside it). Drive it with `while let Some(req) = run.next(&ledger)? { … run.answer(…)? }`.
#[derive(Debug)]
pub struct SyncRun {
    trust_path: PathBuf,
    state: State,
    report: SyncReport,
    phase: Phase,
    /// The batch in flight and how many of it had been judged before (a resend).
    batch: Vec<Entry>,
    already: usize,
    /// `Some(after)`: sending entries after `after` again, synced or not (the server lost
    /// them); entered at most once per sync.
    resend_after: Option<i64>,
    resent_once: bool,
    now: fn() -> i64,
}

impl SyncRun {
    /// A sync of `ledger` that keeps the trust list (JWKS) at `trust_path`.
    pub fn new(ledger: &Ledger, trust_path: &Path) -> SyncRun {
        SyncRun::with_clock(ledger, trust_path, crate::ledger_now)
    }

    /// [`new`](Self::new) with another clock (tests).
    pub fn with_clock(ledger: &Ledger, trust_path: &Path, now: fn() -> i64) -> SyncRun {
        SyncRun {
            trust_path: trust_path.to_owned(),
            state: State::load(ledger.path()),
            report: SyncReport::default(),
            phase: Phase::Push,
            batch: Vec::new(),
            already: 0,
            resend_after: None,
            resent_once: false,
            now,
        }
    }

    /// The next request, or `None` when the sync is complete (the state is then saved with
    /// the time of this sync).
    pub fn next(&mut self, ledger: &Ledger) -> Result<Option<Request>, SyncError> {
        loop {
            match self.phase {
                Phase::Push => {
                    let (batch, already) = match self.resend_after {
                        Some(after) => {
                            let page = ledger.entries_judged(after, BATCH)?;
                            let already = page.iter().filter(|(_, j)| j.is_some()).count();
                            (page.into_iter().map(|(e, _)| e).collect(), already)
                        }
                        None => (ledger.outbox(BATCH)?, 0),
                    };
                    if batch.is_empty() {
                        if self.resend_after.take().is_none() {
                            self.phase = Phase::Trust;
                        }
                        continue;
                    }
                    let body = serde_json::json!({ "entries": batch }).to_string();
                    self.batch = batch;
                    self.already = already;
                    return Ok(Some(Request::new(
                        "POST",
                        "/api/v1/sync/redemptions".into(),
                        Some(body),
                    )));
                }
                Phase::Trust => {
                    let etag = self
                        .state
                        .trust_etag
                        .clone()
                        .filter(|_| self.trust_path.exists());
                    return Ok(Some(Request {
                        if_none_match: etag,
                        ..Request::new("GET", "/api/v1/trust".into(), None)
                    }));
                }
                Phase::Revocations => {
                    // With the device token: the server records the pull.
                    return Ok(Some(Request::new(
                        "GET",
                        format!(
                            "/api/v1/revocations?since={}",
                            self.state.revocations_cursor
                        ),
                        None,
                    )));
                }
                Phase::Done => return Ok(None),
            }
        }
    }

    /// Apply the answer to the request [`next`](Self::next) gave last. An answer that is not
    /// a success is an error (the run can be dropped; what was applied so far stays).
    pub fn answer(&mut self, ledger: &Ledger, a: Answer<'_>) -> Result<(), SyncError> {
        let now = (self.now)();
        if let Some(date) = a.date {
            self.state.server_offset = Some(date - now);
        }
        let ok = (200..300).contains(&a.status) || (self.phase == Phase::Trust && a.status == 304);
        if !ok {
            return Err(SyncError::Status(a.status, problem_detail(a.body)));
        }
        match self.phase {
            Phase::Push => self.apply_push(ledger, a.body, now)?,
            Phase::Trust => {
                if a.status == 200 {
                    let store = crate::TrustStore::from_jwks_json(a.body)
                        .map_err(|e| SyncError::Protocol(e.to_string()))?;
                    self.report.trust_keys = store.len();
                    write_atomic(&self.trust_path, a.body.as_bytes())?;
                    self.state.trust_etag = a.etag.map(str::to_owned);
                    self.report.trust_updated = true;
                }
                self.state.trust_checked_at = Some(now);
                self.phase = Phase::Revocations;
            }
            Phase::Revocations => {
                let v: serde_json::Value =
                    serde_json::from_str(a.body).map_err(|e| SyncError::Protocol(e.to_string()))?;
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
                self.report.revocations_added += ledger.add_revocations(&ids)?;
                let next = v["next"].as_i64().unwrap_or(self.state.revocations_cursor);
                let done = list.is_empty() || next <= self.state.revocations_cursor;
                self.state.revocations_cursor = next;
                if done {
                    self.state.revocations_checked_at = Some(now);
                    self.state.last_sync_at = Some(now);
                    self.report.remaining = ledger.stats()?.unsynced as usize;
                    self.phase = Phase::Done;
                }
            }
            Phase::Done => {
                return Err(SyncError::Protocol(
                    "an answer after the sync was complete".into(),
                ))
            }
        }
        self.state.save(ledger.path())
    }

    /// What the run has done so far.
    pub fn report(&self) -> &SyncReport {
        &self.report
    }

    /// The report, at the end.
    pub fn into_report(self) -> SyncReport {
        self.report
    }

    /// Record one push's judgements in the ledger.
    fn apply_push(&mut self, ledger: &Ledger, body: &str, now: i64) -> Result<(), SyncError> {
        let v: serde_json::Value =
            serde_json::from_str(body).map_err(|e| SyncError::Protocol(e.to_string()))?;
        let report = &mut self.report;
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
                    if let (Some(x), false) = (expected, self.resent_once) {
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
                    voucher_id: self
                        .batch
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
        report.resent += self.already.min(judged.len());
        ledger.mark_judged(&judged, now)?;
        if let Some(after) = restart {
            self.resent_once = true;
            self.resend_after = Some(after);
        } else if report.rejected.is_some() || judged.is_empty() {
            self.resend_after = None;
            self.phase = Phase::Trust;
        } else if let Some(after) = &mut self.resend_after {
            *after = self.batch.last().map(|e| e.seq).unwrap_or(*after);
        }
        Ok(())
    }
}

/// A problem+json answer's `detail`, or the start of the body.
pub fn problem_detail(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect())
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
