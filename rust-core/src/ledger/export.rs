//! The ledger as CSV, for a spreadsheet: every entry in order with its sync status. Cells a
//! spreadsheet would run as a formula are neutralised.

use std::io::Write;

use super::{Judged, Ledger, LedgerError};
use crate::roster::safe_cell;

/// The header row.
pub const CSV_HEADER: [&str; 15] = [
    "seq",
    "id",
    "kind",
    "voucher_id",
    "issuer_kid",
    "provider",
    "device",
    "amount",
    "currency",
    "items",
    "voids",
    "at",
    "hash",
    "sync",
    "voucher_text",
];

/// Where an entry stands with the server: `waiting` or the server's judgement.
pub fn sync_status(j: &Option<Judged>) -> &str {
    j.as_ref().map_or("waiting", |j| j.status.as_str())
}

impl Ledger {
    /// Write every entry as CSV to `w` (times in RFC 3339, UTC). Returns the number of entries.
    pub fn export_csv<W: Write>(&self, w: W) -> Result<usize, LedgerError> {
        let err = |e: csv::Error| LedgerError::Db(format!("writing CSV: {e}"));
        let mut w = csv::Writer::from_writer(w);
        w.write_record(CSV_HEADER).map_err(err)?;
        let (mut after, mut n) = (0, 0);
        loop {
            let page = self.entries_judged(after, 1000)?;
            let Some((last, _)) = page.last() else { break };
            after = last.seq;
            for (e, j) in &page {
                let cells = [
                    e.seq.to_string(),
                    e.id.clone(),
                    e.kind.as_str().into(),
                    e.voucher_id.to_hex(),
                    crate::keys::kid_text(&e.issuer_kid),
                    e.provider.clone(),
                    e.device.clone(),
                    e.amount.map(|a| a.to_string()).unwrap_or_default(),
                    e.currency.clone().unwrap_or_default(),
                    e.items
                        .iter()
                        .map(|i| format!("{}:{}", i.code, i.quantity))
                        .collect::<Vec<_>>()
                        .join(";"),
                    e.voids.clone().unwrap_or_default(),
                    crate::time::rfc3339(e.at),
                    hex::encode(&e.hash),
                    sync_status(j).to_owned(),
                    e.voucher_text.clone(),
                ];
                w.write_record(cells.iter().map(|c| safe_cell(c).into_owned()))
                    .map_err(err)?;
                n += 1;
            }
        }
        w.flush()
            .map_err(|e| LedgerError::Db(format!("writing CSV: {e}")))?;
        Ok(n)
    }
}
