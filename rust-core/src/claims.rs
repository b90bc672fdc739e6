//! A phone's side of reimbursement: make a claim on the program server for this provider's
//! accepted redemptions (chosen ones, or every unclaimed one up to a time), attach photos of
//! receipts or delivery notes, submit; and read the claims' states back.
//!
//! Every step can be sent again without harm, so a phone on a bad link simply repeats the
//! whole thing: the claim is found by the phone's own key, a document by its SHA-256, and
//! submitting a submitted claim changes nothing.

use sha2::{Digest, Sha256};

#[cfg(feature = "http")]
use crate::sync::{SyncClient, SyncError};

/// What to claim.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClaimRequest {
    /// The phone's own key for this claim (1 to 64 characters): the same key finds the same
    /// claim.
    pub key: String,
    pub program: String,
    /// These redemptions (entry ids); none: every unclaimed one up to `up_to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redemptions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A supporting document: a JPEG or PNG photo, or a PDF.
#[derive(Debug, Clone)]
pub struct Document {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl Document {
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }
}

/// What a document is, by its first bytes: JPEG, PNG or PDF, nothing else.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    }
}

/// Largest document the server takes.
pub const MAX_DOCUMENT: usize = 10 * 1024 * 1024;

#[cfg(feature = "http")]
impl SyncClient {
    /// Make (or find again) the claim, upload its documents, submit it. Returns the claim as
    /// the server has it.
    pub fn submit_claim(
        &self,
        req: &ClaimRequest,
        docs: &[Document],
    ) -> Result<serde_json::Value, SyncError> {
        let claim: serde_json::Value = self.send_json(|| {
            self.http
                .post(format!("{}/api/v1/sync/claims", self.base))
                .json(req)
        })?;
        let id = claim["id"]
            .as_str()
            .ok_or_else(|| SyncError::Protocol("a claim without an id".into()))?
            .to_owned();
        let state = claim["state"].as_str().unwrap_or("");
        if state == "draft" || state == "returned" {
            // The note went with a new claim; on a returned one it is the answer.
            let answer = if state == "returned" {
                req.note.as_deref()
            } else {
                None
            };
            self.upload_and_submit(&id, docs, answer)
        } else {
            // Already submitted (an earlier run's answer was lost): ask for it as it is now.
            self.send_json(|| {
                self.http
                    .post(format!("{}/api/v1/sync/claims/{id}/submit", self.base))
            })
        }
    }

    /// Answer a claim a reviewer returned with a question: add documents and submit it again,
    /// with the answer as its note (it goes back to stage 1).
    pub fn answer_claim(
        &self,
        id: &str,
        note: Option<&str>,
        docs: &[Document],
    ) -> Result<serde_json::Value, SyncError> {
        self.upload_and_submit(id, docs, note)
    }

    fn upload_and_submit(
        &self,
        id: &str,
        docs: &[Document],
        note: Option<&str>,
    ) -> Result<serde_json::Value, SyncError> {
        for d in docs {
            let sha = d.sha256();
            let _: serde_json::Value = self.send_json(|| {
                self.http
                    .put(format!(
                        "{}/api/v1/sync/claims/{id}/documents/{sha}",
                        self.base
                    ))
                    .header("content-type", "application/octet-stream")
                    .header("x-file-name", header_name(&d.name))
                    .body(d.bytes.clone())
            })?;
        }
        // `note` only when there is one (the API's schema has no null).
        let body = match note {
            Some(n) => serde_json::json!({ "note": n }),
            None => serde_json::json!({}),
        };
        self.send_json(|| {
            self.http
                .post(format!("{}/api/v1/sync/claims/{id}/submit", self.base))
                .json(&body)
        })
    }

    /// This provider's claims, newest first.
    pub fn claims(&self) -> Result<Vec<serde_json::Value>, SyncError> {
        let v: serde_json::Value = self.send_json(|| {
            self.http
                .get(format!("{}/api/v1/sync/claims?limit=1000", self.base))
        })?;
        Ok(v["claims"].as_array().cloned().unwrap_or_default())
    }

    /// Withdraw a draft or returned claim.
    pub fn withdraw_claim(&self, id: &str) -> Result<serde_json::Value, SyncError> {
        self.send_json(|| {
            self.http
                .post(format!("{}/api/v1/sync/claims/{id}/withdraw", self.base))
        })
    }
}

/// Sending the claim outbox ([`crate::ledger::QueuedClaim`]) without I/O of its own, like
/// [`crate::sync::SyncRun`]: each queued item in turn (create the claim, upload each document,
/// submit), then the list of this provider's claims, kept in the ledger. Every step can be
/// repeated without harm, so a run cut off anywhere is simply run again. A refusal (4xx) ends
/// that item with the server's reason; a server or network failure ends the run, the item
/// staying queued.
#[derive(Debug)]
pub struct ClaimRun {
    step: ClaimStep,
    current: Option<crate::ledger::QueuedClaim>,
    /// Items sent whole in this run.
    pub sent: usize,
    /// Items the server refused in this run.
    pub refused: usize,
    /// Claims whose lines are to be read (new or changed since last seen).
    detail: Vec<String>,
    now: fn() -> i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClaimStep {
    Pick,
    Create,
    Upload,
    Submit,
    List,
    Detail,
    Done,
}

impl Default for ClaimRun {
    fn default() -> Self {
        ClaimRun {
            step: ClaimStep::Pick,
            current: None,
            sent: 0,
            refused: 0,
            detail: Vec::new(),
            now: crate::ledger_now,
        }
    }
}

impl ClaimRun {
    pub fn new() -> ClaimRun {
        ClaimRun::default()
    }

    /// The next request, or `None` when the outbox is sent and the list read.
    pub fn next(
        &mut self,
        ledger: &crate::ledger::Ledger,
    ) -> Result<Option<crate::sync::Request>, crate::sync::SyncError> {
        use crate::sync::Request;
        loop {
            let id = self.current.as_ref().and_then(|q| q.claim_id.clone());
            match self.step {
                ClaimStep::Pick => match ledger.next_queued_claim()? {
                    Some(q) => {
                        self.step = if q.claim_id.is_none() {
                            ClaimStep::Create
                        } else {
                            ClaimStep::Upload
                        };
                        self.current = Some(q);
                    }
                    None => self.step = ClaimStep::List,
                },
                ClaimStep::Create => {
                    let body = self.current.as_ref().map(|q| q.request.to_string());
                    return Ok(Some(Request::new(
                        "POST",
                        "/api/v1/sync/claims".into(),
                        body,
                    )));
                }
                ClaimStep::Upload => {
                    let doc = self
                        .current
                        .as_ref()
                        .and_then(|q| q.documents.iter().find(|d| !d.sent).cloned());
                    let (Some(d), Some(id)) = (doc, id) else {
                        self.step = ClaimStep::Submit;
                        continue;
                    };
                    return Ok(Some(Request {
                        body_file: Some(d.path.clone()),
                        file_name: Some(header_name(&d.name)),
                        ..Request::new(
                            "PUT",
                            format!("/api/v1/sync/claims/{id}/documents/{}", d.sha256),
                            None,
                        )
                    }));
                }
                ClaimStep::Submit => {
                    let q = self.current.as_ref();
                    // An answer's note goes with the submission; a new claim's went with it.
                    let body = match q.filter(|q| q.kind == "answer") {
                        Some(q) => q.request.to_string(),
                        None => "{}".into(),
                    };
                    let Some(id) = id else {
                        self.step = ClaimStep::Pick;
                        continue;
                    };
                    return Ok(Some(Request::new(
                        "POST",
                        format!("/api/v1/sync/claims/{id}/submit"),
                        Some(body),
                    )));
                }
                ClaimStep::List => {
                    return Ok(Some(Request::new(
                        "GET",
                        "/api/v1/sync/claims?limit=1000".into(),
                        None,
                    )))
                }
                ClaimStep::Detail => match self.detail.last() {
                    Some(id) => {
                        return Ok(Some(Request::new(
                            "GET",
                            format!("/api/v1/sync/claims/{id}"),
                            None,
                        )))
                    }
                    None => self.step = ClaimStep::Done,
                },
                ClaimStep::Done => return Ok(None),
            }
        }
    }

    /// Apply the answer to the request [`next`](Self::next) gave last.
    pub fn answer(
        &mut self,
        ledger: &crate::ledger::Ledger,
        a: crate::sync::Answer<'_>,
    ) -> Result<(), crate::sync::SyncError> {
        use crate::sync::{problem_detail, SyncError};
        let now = (self.now)();
        let protocol = |e: serde_json::Error| SyncError::Protocol(e.to_string());
        if a.status >= 500 || a.status < 200 || (300..400).contains(&a.status) {
            return Err(SyncError::Status(a.status, problem_detail(a.body)));
        }
        if self.step == ClaimStep::List {
            if a.status >= 400 {
                return Err(SyncError::Status(a.status, problem_detail(a.body)));
            }
            let v: serde_json::Value = serde_json::from_str(a.body).map_err(protocol)?;
            let list = v["claims"].as_array().cloned().unwrap_or_default();
            // The lines of claims new or changed since the last list.
            let before: std::collections::HashMap<String, Option<i64>> = ledger
                .claims_seen()?
                .into_iter()
                .filter_map(|c| Some((c["id"].as_str()?.to_owned(), c["updated_at"].as_i64())))
                .collect();
            self.detail = list
                .iter()
                .filter(|c| {
                    c["id"].as_str().is_some_and(|id| {
                        before.get(id).copied().flatten() != c["updated_at"].as_i64()
                    })
                })
                .filter_map(|c| c["id"].as_str().map(str::to_owned))
                .collect();
            // Kept without their time until their lines are read, so that a run cut off
            // before then reads them next time.
            let kept: Vec<serde_json::Value> = list
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    if c["id"]
                        .as_str()
                        .is_some_and(|id| self.detail.iter().any(|d| d == id))
                    {
                        c["updated_at"] = serde_json::Value::Null;
                    }
                    c
                })
                .collect();
            ledger.set_claims_seen(&kept, now)?;
            self.step = ClaimStep::Detail;
            return Ok(());
        }
        if self.step == ClaimStep::Detail {
            let Some(id) = self.detail.pop() else {
                return Err(SyncError::Protocol("an answer out of turn".into()));
            };
            if a.status >= 400 {
                // Gone since it was listed: its lines are read at the next sync.
                return Ok(());
            }
            let c: serde_json::Value = serde_json::from_str(a.body).map_err(protocol)?;
            let lines: Vec<String> = c["lines"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["redemption"].as_str().map(str::to_owned))
                .collect();
            ledger.set_claim_lines(&id, &lines)?;
            let mut seen = c;
            if let Some(o) = seen.as_object_mut() {
                o.remove("lines");
            }
            ledger.put_claim_seen(&seen, now)?;
            return Ok(());
        }
        let Some(q) = self.current.as_mut() else {
            return Err(SyncError::Protocol("an answer with no request".into()));
        };
        if a.status >= 400 {
            // Refused for good (nothing left to claim, a document too large, a claim no
            // longer open): the item ends with the server's reason.
            q.error = Some(problem_detail(a.body));
            q.done_at = Some(now);
            ledger.update_queued_claim(q)?;
            self.refused += 1;
            self.step = ClaimStep::Pick;
            return Ok(());
        }
        match self.step {
            ClaimStep::Create => {
                let c: serde_json::Value = serde_json::from_str(a.body).map_err(protocol)?;
                let id = c["id"]
                    .as_str()
                    .ok_or_else(|| SyncError::Protocol("a claim without an id".into()))?;
                q.claim_id = Some(id.to_owned());
                let open = matches!(c["state"].as_str(), Some("draft" | "returned"));
                if open {
                    self.step = ClaimStep::Upload;
                } else {
                    // Submitted by an earlier run whose answer was lost.
                    q.done_at = Some(now);
                    self.sent += 1;
                    self.step = ClaimStep::Pick;
                }
                q.error = None;
                ledger.update_queued_claim(q)?;
            }
            ClaimStep::Upload => {
                if let Some(d) = q.documents.iter_mut().find(|d| !d.sent) {
                    d.sent = true;
                }
                ledger.update_queued_claim(q)?;
            }
            ClaimStep::Submit => {
                q.done_at = Some(now);
                q.error = None;
                ledger.update_queued_claim(q)?;
                self.sent += 1;
                self.step = ClaimStep::Pick;
            }
            _ => return Err(SyncError::Protocol("an answer out of turn".into())),
        }
        Ok(())
    }
}

impl crate::sync::Exchange for ClaimRun {
    fn next(
        &mut self,
        ledger: &crate::ledger::Ledger,
    ) -> Result<Option<crate::sync::Request>, crate::sync::SyncError> {
        ClaimRun::next(self, ledger)
    }
    fn answer(
        &mut self,
        ledger: &crate::ledger::Ledger,
        a: crate::sync::Answer<'_>,
    ) -> Result<(), crate::sync::SyncError> {
        ClaimRun::answer(self, ledger, a)
    }
}

/// A file name fit for a header: printable ASCII, others as `_`, at most 100 characters.
pub fn header_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect()
}

/// Documents per claim at most (the server's limit).
pub const MAX_DOCUMENTS: usize = 20;

/// Check files to attach (JPEG, PNG or PDF; at most [`MAX_DOCUMENT`] bytes each and
/// [`MAX_DOCUMENTS`] in all) and note their SHA-256.
fn queued_documents(
    docs: &[(String, String)],
) -> Result<Vec<crate::ledger::QueuedDocument>, crate::ledger::LedgerError> {
    use crate::ledger::LedgerError;
    if docs.len() > MAX_DOCUMENTS {
        return Err(LedgerError::Db(format!(
            "at most {MAX_DOCUMENTS} documents per claim"
        )));
    }
    docs.iter()
        .map(|(name, path)| {
            let bytes = std::fs::read(path)?;
            if bytes.len() > MAX_DOCUMENT {
                return Err(LedgerError::Db(format!(
                    "{name}: larger than {} MiB",
                    MAX_DOCUMENT >> 20
                )));
            }
            if sniff(&bytes).is_none() {
                return Err(LedgerError::Db(format!("{name}: not a JPEG, PNG or PDF")));
            }
            Ok(crate::ledger::QueuedDocument {
                name: name.clone(),
                path: path.clone(),
                sha256: hex::encode(Sha256::digest(&bytes)),
                sent: false,
            })
        })
        .collect()
}

/// Put an item in the outbox: its documents checked and hashed.
fn enqueue(
    ledger: &crate::ledger::Ledger,
    item: crate::ledger::QueuedClaim,
    docs: &[(String, String)],
) -> Result<crate::ledger::QueuedClaim, crate::ledger::LedgerError> {
    let q = crate::ledger::QueuedClaim {
        documents: queued_documents(docs)?,
        ..item
    };
    ledger.queue_claim(&q)?;
    Ok(q)
}

/// Queue a new claim: these redemptions (entry ids), or every unclaimed accepted one up to
/// `up_to`; with documents `(name, path)`. Sent by the next [`ClaimRun`].
pub fn queue_claim(
    ledger: &crate::ledger::Ledger,
    req: &ClaimRequest,
    docs: &[(String, String)],
    now: i64,
) -> Result<crate::ledger::QueuedClaim, crate::ledger::LedgerError> {
    let request =
        serde_json::to_value(req).map_err(|e| crate::ledger::LedgerError::Db(e.to_string()))?;
    enqueue(
        ledger,
        crate::ledger::QueuedClaim {
            key: req.key.clone(),
            kind: "claim".into(),
            program: Some(req.program.clone()),
            request,
            claim_id: None,
            documents: Vec::new(),
            created_at: now,
            done_at: None,
            error: None,
        },
        docs,
    )
}

/// Queue the answer to a returned claim: more documents and a note; it is submitted again.
pub fn queue_answer(
    ledger: &crate::ledger::Ledger,
    key: &str,
    claim_id: &str,
    note: Option<&str>,
    docs: &[(String, String)],
    now: i64,
) -> Result<crate::ledger::QueuedClaim, crate::ledger::LedgerError> {
    let request = match note {
        Some(n) => serde_json::json!({ "note": n }),
        None => serde_json::json!({}),
    };
    enqueue(
        ledger,
        crate::ledger::QueuedClaim {
            key: key.to_owned(),
            kind: "answer".into(),
            program: None,
            request,
            claim_id: Some(claim_id.to_owned()),
            documents: Vec::new(),
            created_at: now,
            done_at: None,
            error: None,
        },
        docs,
    )
}
