//! The claim outbox: a provider makes a claim (or answers a returned one) offline, with photos
//! of receipts; the next sync sends it ([`crate::claims::ClaimRun`]). Each item is kept until
//! the server has it whole, and after (done), so the phone can show what it sent.

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{Ledger, LedgerError};

/// A photo or PDF to send with a claim: a file the app keeps until the claim is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedDocument {
    pub name: String,
    pub path: String,
    pub sha256: String,
    #[serde(default)]
    pub sent: bool,
}

/// One item of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueuedClaim {
    /// The phone's key: the server finds the same claim by it, however often it is sent.
    pub key: String,
    /// `claim` (a new claim) or `answer` (more documents and a note for a returned claim).
    pub kind: String,
    pub program: Option<String>,
    /// The body of the claim's creation (`{key, program, redemptions | up_to, note}`), or of
    /// the answer's submission (`{note}`).
    pub request: serde_json::Value,
    /// The server's id once it has the claim.
    pub claim_id: Option<String>,
    pub documents: Vec<QueuedDocument>,
    pub created_at: i64,
    pub done_at: Option<i64>,
    /// Why the last attempt was refused (the item stays queued).
    pub error: Option<String>,
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<QueuedClaim> {
    let bad = |i: usize| {
        move |e: serde_json::Error| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        }
    };
    Ok(QueuedClaim {
        key: r.get(0)?,
        kind: r.get(1)?,
        program: r.get(2)?,
        request: serde_json::from_str(&r.get::<_, String>(3)?).map_err(bad(3))?,
        claim_id: r.get(4)?,
        documents: serde_json::from_str(&r.get::<_, String>(5)?).map_err(bad(5))?,
        created_at: r.get(6)?,
        done_at: r.get(7)?,
        error: r.get(8)?,
    })
}

const COLUMNS: &str =
    "key, kind, program, request, claim_id, documents, created_at, done_at, error";

impl Ledger {
    /// Queue an item. The same key twice is refused (keys are the phone's, made once).
    pub fn queue_claim(&self, q: &QueuedClaim) -> Result<(), LedgerError> {
        let docs =
            serde_json::to_string(&q.documents).map_err(|e| LedgerError::Db(e.to_string()))?;
        let n = self.lock().execute(
            "INSERT OR IGNORE INTO claim_outbox (key, kind, program, request, claim_id, documents, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![q.key, q.kind, q.program, q.request.to_string(), q.claim_id, docs, q.created_at],
        )?;
        if n == 0 {
            return Err(LedgerError::Db(format!(
                "claim {} is already queued",
                q.key
            )));
        }
        Ok(())
    }

    /// Every item, newest first.
    pub fn claim_outbox(&self) -> Result<Vec<QueuedClaim>, LedgerError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM claim_outbox ORDER BY created_at DESC, key"
        ))?;
        let rows = st.query_map([], row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }

    /// The oldest item not yet done.
    pub fn next_queued_claim(&self) -> Result<Option<QueuedClaim>, LedgerError> {
        Ok(self
            .lock()
            .query_row(
                &format!("SELECT {COLUMNS} FROM claim_outbox WHERE done_at IS NULL ORDER BY created_at, key LIMIT 1"),
                [],
                row,
            )
            .optional()?)
    }

    /// Record progress on an item: the server's claim id, documents sent, done, or an error.
    pub fn update_queued_claim(&self, q: &QueuedClaim) -> Result<(), LedgerError> {
        let docs =
            serde_json::to_string(&q.documents).map_err(|e| LedgerError::Db(e.to_string()))?;
        let n = self.lock().execute(
            "UPDATE claim_outbox SET claim_id = ?2, documents = ?3, done_at = ?4, error = ?5 WHERE key = ?1",
            params![q.key, q.claim_id, docs, q.done_at, q.error],
        )?;
        if n == 0 {
            return Err(LedgerError::Db(format!("no queued claim {}", q.key)));
        }
        Ok(())
    }

    /// Keep the server's list of this provider's claims (replacing the last one).
    pub fn set_claims_seen(
        &self,
        claims: &[serde_json::Value],
        now: i64,
    ) -> Result<(), LedgerError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM claims_seen", [])?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO claims_seen (id, claim, seen_at) VALUES (?1, ?2, ?3)",
            )?;
            for c in claims {
                if let Some(id) = c["id"].as_str() {
                    ins.execute(params![id, c.to_string(), now])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Keep one claim as the server has it now (its entry replaced).
    pub fn put_claim_seen(&self, claim: &serde_json::Value, now: i64) -> Result<(), LedgerError> {
        let Some(id) = claim["id"].as_str() else {
            return Err(LedgerError::Db("a claim without an id".into()));
        };
        self.lock().execute(
            "INSERT OR REPLACE INTO claims_seen (id, claim, seen_at) VALUES (?1, ?2, ?3)",
            params![id, claim.to_string(), now],
        )?;
        Ok(())
    }

    /// Record which redemptions a claim holds (replacing what was known of that claim).
    pub fn set_claim_lines(
        &self,
        claim_id: &str,
        redemptions: &[String],
    ) -> Result<(), LedgerError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM claim_lines WHERE claim_id = ?1",
            params![claim_id],
        )?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO claim_lines (redemption_id, claim_id) VALUES (?1, ?2)",
            )?;
            for r in redemptions {
                ins.execute(params![r, claim_id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// For each redemption a claim holds: the claim's state and its payment's, as last seen.
    pub(crate) fn claim_states(
        &self,
    ) -> Result<std::collections::HashMap<String, (String, Option<String>)>, LedgerError> {
        let claims: std::collections::HashMap<String, (String, Option<String>)> = self
            .claims_seen()?
            .into_iter()
            .filter_map(|c| {
                Some((
                    c["id"].as_str()?.to_owned(),
                    (
                        c["state"].as_str()?.to_owned(),
                        c["payable"]["state"].as_str().map(str::to_owned),
                    ),
                ))
            })
            .collect();
        let conn = self.lock();
        let mut st = conn.prepare_cached("SELECT redemption_id, claim_id FROM claim_lines")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = std::collections::HashMap::new();
        for row in rows {
            let (redemption, claim) = row?;
            if let Some(s) = claims.get(&claim) {
                out.insert(redemption, s.clone());
            }
        }
        Ok(out)
    }

    /// The claims as the server last listed them, newest first.
    pub fn claims_seen(&self) -> Result<Vec<serde_json::Value>, LedgerError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached("SELECT claim FROM claims_seen")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(
                serde_json::from_str::<serde_json::Value>(&r?)
                    .map_err(|e| LedgerError::Db(e.to_string()))?,
            );
        }
        out.sort_by(|a, b| b["created_at"].as_i64().cmp(&a["created_at"].as_i64()));
        Ok(out)
    }
}
