//! Beneficiary lists (rosters) in CSV, as a registry exports them: the one parser behind
//! `evoucher issue --csv` and the server's CSV import.
//!
//! UTF-8, with or without a byte-order mark; a header row naming `beneficiary_id` (or `id`),
//! and optionally `name`, `amount` (minor units) and `items` (`CODE:QTY[:UNIT]` separated by
//! `;`); other columns are ignored; cells are trimmed. Every row is checked before anything is
//! returned. Errors name the line and the column, never the value: a roster is beneficiary
//! data and must not leak into logs or error messages.

use crate::voucher::Item;

/// Longest beneficiary id and name (characters).
pub const MAX_ID: usize = 64;
pub const MAX_NAME: usize = 200;

/// One checked row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    /// The line in the file (the header is line 1).
    pub line: u64,
    pub id: String,
    pub name: Option<String>,
    /// Minor units, above zero.
    pub amount: Option<u64>,
    /// In-kind lines, when the roster has an `items` column and the cell is not empty.
    pub items: Option<Vec<Item>>,
}

/// Why a roster is refused: the line and column, never the content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    #[error("line 1: not a CSV header row (UTF-8, comma-separated)")]
    Header,
    #[error("line 1: a beneficiary_id column is required")]
    NoIdColumn,
    #[error("line {0}: not a well-formed CSV row (UTF-8, as many cells as the header)")]
    Row(u64),
    #[error("line {0}: beneficiary_id must be 1 to 64 characters, without control characters")]
    Id(u64),
    #[error("line {0}: beneficiary_id repeats an earlier row")]
    Duplicate(u64),
    #[error("line {0}: name must be at most 200 characters, without control characters")]
    Name(u64),
    #[error("line {0}: amount must be a positive whole number of minor units")]
    Amount(u64),
    #[error("line {0}: items must be CODE:QTY[:UNIT] separated by ';', quantities above 0")]
    Items(u64),
    #[error("the CSV has no rows")]
    Empty,
}

impl RosterError {
    /// The line the error is about (1 for the header; `None` for an empty roster).
    pub fn line(&self) -> Option<u64> {
        match self {
            RosterError::Header | RosterError::NoIdColumn => Some(1),
            RosterError::Row(l)
            | RosterError::Id(l)
            | RosterError::Duplicate(l)
            | RosterError::Name(l)
            | RosterError::Amount(l)
            | RosterError::Items(l) => Some(*l),
            RosterError::Empty => None,
        }
    }
}

/// `CODE:QTY[:UNIT]`.
pub fn parse_item(s: &str) -> Option<Item> {
    let mut parts = s.trim().splitn(3, ':');
    let code = parts.next()?.trim();
    let quantity = parts.next()?.trim().parse::<u64>().ok()?;
    if code.is_empty() || quantity == 0 {
        return None;
    }
    Some(Item {
        code: code.to_owned(),
        quantity,
        unit: parts
            .next()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty()),
        description: None,
    })
}

fn clean(s: &str, max: usize) -> Option<bool> {
    // Some(true): fine; Some(false): too long or has control characters; None: empty.
    if s.is_empty() {
        None
    } else {
        Some(s.chars().count() <= max && !s.chars().any(char::is_control))
    }
}

/// Parse and check a whole roster.
pub fn parse(bytes: &[u8]) -> Result<Vec<RosterRow>, RosterError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = r.headers().map_err(|_| RosterError::Header)?.clone();
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h));
    let id_col = col(&["beneficiary_id", "id"]).ok_or(RosterError::NoIdColumn)?;
    let (name_col, amount_col, items_col) = (col(&["name"]), col(&["amount"]), col(&["items"]));
    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut last_line = 1;
    for rec in r.records() {
        let rec = rec.map_err(|e| {
            RosterError::Row(e.position().map(|p| p.line()).unwrap_or(last_line + 1))
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(last_line + 1);
        last_line = line;
        let cell = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("");
        let id = cell(Some(id_col));
        if clean(id, MAX_ID) != Some(true) {
            return Err(RosterError::Id(line));
        }
        if !seen.insert(id.to_owned()) {
            return Err(RosterError::Duplicate(line));
        }
        let name = match clean(cell(name_col), MAX_NAME) {
            None => None,
            Some(true) => Some(cell(name_col).to_owned()),
            Some(false) => return Err(RosterError::Name(line)),
        };
        let amount = match cell(amount_col) {
            "" => None,
            a => match a.parse::<u64>() {
                Ok(v) if v > 0 && i64::try_from(v).is_ok() => Some(v),
                _ => return Err(RosterError::Amount(line)),
            },
        };
        let items = match cell(items_col) {
            "" => None,
            s => Some(
                s.split(';')
                    .map(parse_item)
                    .collect::<Option<Vec<_>>>()
                    .ok_or(RosterError::Items(line))?,
            ),
        };
        rows.push(RosterRow {
            line,
            id: id.to_owned(),
            name,
            amount,
            items,
        });
    }
    if rows.is_empty() {
        return Err(RosterError::Empty);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_roster_parses() {
        let rows = parse(
            "\u{feff}beneficiary_id, name ,amount,items,district\nB-1, Amina ,2500,,North\nB-2,,,RICE:10:kg;OIL:2,South\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (
                rows[0].line,
                rows[0].id.as_str(),
                rows[0].name.as_deref(),
                rows[0].amount
            ),
            (2, "B-1", Some("Amina"), Some(2500))
        );
        let items = rows[1].items.as_ref().unwrap();
        assert_eq!(
            (
                items[0].code.as_str(),
                items[0].quantity,
                items[0].unit.as_deref()
            ),
            ("RICE", 10, Some("kg"))
        );
        assert_eq!(
            (
                items[1].code.as_str(),
                items[1].quantity,
                items[1].unit.as_deref()
            ),
            ("OIL", 2, None)
        );
    }

    /// Inputs that must fail, with the error each must give, and never the content.
    #[test]
    fn refusals_name_the_line_only() {
        let cases: &[(&str, RosterError)] = &[
            ("", RosterError::NoIdColumn),
            ("name\nX\n", RosterError::NoIdColumn),
            ("id\n", RosterError::Empty),
            ("id,amount\nB-1,10\nB-2,ten\n", RosterError::Amount(3)),
            ("id,amount\nB-1,0\n", RosterError::Amount(2)),
            ("id,amount\nB-1,-5\n", RosterError::Amount(2)),
            (
                "id,amount\nB-1,9223372036854775808\n",
                RosterError::Amount(2),
            ),
            ("id\nB-1\nB-1\n", RosterError::Duplicate(3)),
            ("id,name\n,X\n", RosterError::Id(2)),
            ("id\nB\u{7}1\n", RosterError::Id(2)),
            ("id,items\nB-1,RICE\n", RosterError::Items(2)),
            ("id,items\nB-1,RICE:0\n", RosterError::Items(2)),
            ("id,items\nB-1,:3\n", RosterError::Items(2)),
            ("id,name\nB-1,x,y\n", RosterError::Row(2)),
            ("id\n\u{0}\u{0}\n", RosterError::Id(2)),
        ];
        for (input, want) in cases {
            let got = parse(input.as_bytes()).unwrap_err();
            assert_eq!(&got, want, "{input:?}");
            let msg = got.to_string();
            assert!(
                !msg.contains("ten") && !msg.contains("B-1") && !msg.contains("RICE"),
                "{msg}"
            );
        }
        assert_eq!(
            parse(b"id\nB-1\n\xff\xfe\n").unwrap_err(),
            RosterError::Row(3)
        );
        let long = format!("id,name\nB-1,{}\n", "n".repeat(201));
        assert_eq!(parse(long.as_bytes()).unwrap_err(), RosterError::Name(2));
    }
}

/// A CSV cell made safe to open in a spreadsheet (OWASP "CSV injection"): a cell starting
/// with `=`, `+`, `-`, `@`, a tab or a carriage return would be run as a formula, so it gets a
/// leading `'`, which spreadsheets show as text. Every CSV evoucher writes goes through this.
pub fn safe_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

#[cfg(test)]
mod safe_cell_tests {
    use super::safe_cell;

    #[test]
    fn formulas_are_neutralised_and_other_cells_kept() {
        for (i, o) in [
            ("=1+1", "'=1+1"),
            ("+254700000000", "'+254700000000"),
            ("-5", "'-5"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=x", "'\t=x"),
            ("\r=x", "'\r=x"),
            ("Amina K.", "Amina K."),
            ("", ""),
            ("1=1", "1=1"),
        ] {
            assert_eq!(safe_cell(i), o);
        }
    }
}
