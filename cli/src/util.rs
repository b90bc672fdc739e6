//! Shared helpers: exit outcomes, input, time parsing, amount formatting.

use std::io::Read;

use evoucher_core::voucher::Item;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What a command ends with; the value is the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Valid / done.
    Ok = 0,
    /// Invalid / refused.
    Refused = 1,
    /// Usage or I/O error (also used by clap for bad arguments).
    Error = 2,
}

/// A usage or I/O error: exit code 2. Messages never carry key material.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Key(#[from] evoucher_core::error::KeyError),
    #[error("{0}")]
    Encode(#[from] evoucher_core::error::EncodeError),
}

pub fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

pub fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
    let context = context.into();
    move |source| CliError::Io { context, source }
}

/// Read a voucher text argument: the text itself, or `-` for standard input. One trailing
/// line ending is removed (Base45 may end in a space, so nothing else is trimmed).
pub fn read_text(arg: &str) -> Result<String, CliError> {
    let mut s = if arg == "-" {
        let mut buf = Vec::new();
        // Read a little over the limit so an oversized input is still refused as too large.
        std::io::stdin()
            .take((evoucher_core::MAX_TEXT_LEN * 4) as u64)
            .read_to_end(&mut buf)
            .map_err(io_err("reading standard input"))?;
        String::from_utf8(buf).map_err(|_| usage("standard input is not UTF-8 text"))?
    } else {
        arg.to_owned()
    };
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    Ok(s)
}

/// Parse an RFC 3339 time into seconds since the epoch.
pub fn parse_time(s: &str) -> Result<i64, CliError> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            usage(format!(
                "not an RFC 3339 time: {s:?} (example: 2026-11-25T12:00:00Z)"
            ))
        })
}

/// Format seconds since the epoch as RFC 3339 (UTC).
pub fn fmt_time(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.to_string())
}

/// The current time, seconds since the epoch.
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Print a JSON value on one line.
pub fn print_json(v: &serde_json::Value) {
    println!("{v}");
}

/// `CODE:QTY[:UNIT]`.
pub fn parse_item(s: &str) -> Result<Item, CliError> {
    evoucher_core::roster::parse_item(s).ok_or_else(|| {
        usage(format!(
            "item {s:?}: expected CODE:QTY[:UNIT] with a whole quantity above 0"
        ))
    })
}
