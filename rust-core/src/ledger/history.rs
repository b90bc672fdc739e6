//! The phone's history screen ("voucher code management"): redemptions newest first with
//! their state, filtered by time, state and a search, with the totals of what is shown.

use rusqlite::params;
use serde::Serialize;

use super::{row_entry, Entry, Ledger, LedgerError, COLUMNS};

/// What to show. Everything optional; `limit` at most [`MAX_PAGE`].
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct HistoryFilter {
    /// Entries at or after this time.
    pub from: Option<i64>,
    /// Entries before this time.
    pub until: Option<i64>,
    /// One state: `waiting`, `accepted`, `claimed`, `paid`, `conflict`, `suspect`, `invalid`,
    /// `voided`.
    pub state: Option<String>,
    /// A voucher id (hex, or its start) or a beneficiary id (exact, case-insensitive).
    pub search: Option<String>,
    /// Entries with a sequence number below this (the next page).
    pub before_seq: Option<i64>,
    pub limit: Option<usize>,
}

/// Rows per page at most.
pub const MAX_PAGE: usize = 500;

/// One redemption as the history shows it.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    pub entry: Entry,
    /// `waiting` (not yet sent), `accepted`, `conflict`, `suspect`, `invalid`, `synced` (an
    /// older acknowledgement without a judgement), `voided` (a void entry cancels it),
    /// `claimed` (accepted, and in a claim: one the server listed with this redemption among
    /// its lines, or one this phone made naming it and not refused), or `paid` (in a claim
    /// whose payment the program has made).
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The void entry that cancels it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voided_by: Option<String>,
    pub beneficiary_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beneficiary_name: Option<String>,
    pub program: Option<String>,
}

/// A page of rows and the totals of the redemptions matching the filter (all pages), voided
/// ones left out of the totals.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPage {
    pub rows: Vec<HistoryRow>,
    /// Amount per currency, in minor units.
    pub totals: Vec<(String, u64)>,
    /// Redemptions matching, all pages.
    pub count: usize,
}

/// The state of a redemption from its acknowledgement and void.
const STATE_SQL: &str = "CASE WHEN v.id IS NOT NULL THEN 'voided' \
    WHEN s.entry_id IS NULL THEN 'waiting' ELSE coalesce(s.status, 'synced') END";

impl Ledger {
    /// The redemptions matching `f`, newest first. Void entries are not rows of their own:
    /// the redemption they cancel shows as `voided`.
    pub fn history_page(&self, f: &HistoryFilter) -> Result<HistoryPage, LedgerError> {
        let limit = f.limit.unwrap_or(100).clamp(1, MAX_PAGE);
        let search = f
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);
        let claimed = self.claimed_ids()?;
        let in_claims = self.claim_states()?;
        let conn = self.lock();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {COLUMNS}, {STATE_SQL}, s.reason, v.id FROM entries e \
             LEFT JOIN synced s ON s.entry_id = e.id \
             LEFT JOIN entries v ON v.voids = e.id \
             WHERE e.kind = 'redeem' AND (?1 IS NULL OR e.at >= ?1) AND (?2 IS NULL OR e.at < ?2) \
             AND (?3 IS NULL OR {STATE_SQL} = ?3) ORDER BY e.seq DESC"
        ))?;
        // `claimed` and `paid` are `accepted` in the database, told apart below.
        let sql_state = match f.state.as_deref() {
            Some("claimed" | "paid") => Some("accepted"),
            s => s,
        };
        let rows = st.query_map(params![f.from, f.until, sql_state], |r| {
            Ok((
                row_entry(r)?,
                r.get::<_, String>(16)?,
                r.get::<_, Option<String>>(17)?,
                r.get::<_, Option<String>>(18)?,
            ))
        })?;
        let mut page = HistoryPage {
            rows: Vec::new(),
            totals: Vec::new(),
            count: 0,
        };
        for row in rows {
            let (entry, mut state, reason, voided_by) = row?;
            if state == "accepted" {
                match in_claims.get(&entry.id) {
                    Some((_, Some(p))) if p == "paid" => state = "paid".into(),
                    Some((c, _)) if c != "rejected" && c != "withdrawn" => state = "claimed".into(),
                    _ if claimed.contains(&entry.id) => state = "claimed".into(),
                    _ => {}
                }
            }
            if f.state.as_deref().is_some_and(|want| want != state) {
                continue;
            }
            let (beneficiary_id, beneficiary_name, program) = who(&entry.voucher_text);
            if let Some(q) = &search {
                let by_voucher = entry.voucher_id.to_hex().starts_with(q.as_str());
                let by_person = beneficiary_id.as_deref().map(str::to_lowercase) == Some(q.clone());
                if !by_voucher && !by_person {
                    continue;
                }
            }
            page.count += 1;
            if state != "voided" {
                if let (Some(a), Some(c)) = (entry.amount, &entry.currency) {
                    match page.totals.iter_mut().find(|(cur, _)| cur == c) {
                        Some((_, t)) => *t = t.saturating_add(a),
                        None => page.totals.push((c.clone(), a)),
                    }
                }
            }
            if page.rows.len() < limit && f.before_seq.is_none_or(|b| entry.seq < b) {
                page.rows.push(HistoryRow {
                    entry,
                    state,
                    reason,
                    voided_by,
                    beneficiary_id,
                    beneficiary_name,
                    program,
                });
            }
        }
        page.totals.sort();
        Ok(page)
    }

    /// Redemptions named by this phone's claims that the server did not refuse.
    fn claimed_ids(&self) -> Result<std::collections::HashSet<String>, LedgerError> {
        let mut out = std::collections::HashSet::new();
        for q in self.claim_outbox()? {
            if q.kind == "claim" && q.error.is_none() {
                for id in q.request["redemptions"].as_array().into_iter().flatten() {
                    if let Some(id) = id.as_str() {
                        out.insert(id.to_owned());
                    }
                }
            }
        }
        Ok(out)
    }

    /// The time of the newest entry, if any.
    pub fn last_entry_at(&self) -> Result<Option<i64>, LedgerError> {
        Ok(self
            .lock()
            .query_row("SELECT max(at) FROM entries", [], |r| r.get(0))?)
    }
}

/// Beneficiary id, name and program as the voucher text says (already verified when it was
/// redeemed; read here without a trust store).
fn who(text: &str) -> (Option<String>, Option<String>, Option<String>) {
    let i = crate::verify::inspect(text);
    if let Some(v) = i.claims {
        return (Some(v.beneficiary.id), v.beneficiary.name, Some(v.program));
    }
    let c = i.jws_claims.unwrap_or_default();
    let s = |k: &str| c[k].as_str().map(str::to_owned);
    (s("sub"), s("b_name"), s("iss"))
}
