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
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClaimRequest {
    /// The phone's own key for this claim (1 to 64 characters): the same key finds the same
    /// claim.
    pub key: String,
    pub program: String,
    /// These redemptions (entry ids); none: every unclaimed one up to `up_to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redemptions: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up_to: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
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
                    .header("x-file-name", ascii_name(&d.name))
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

#[cfg(feature = "http")]
/// A file name fit for a header: printable ASCII, others as `_`.
fn ascii_name(name: &str) -> String {
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
