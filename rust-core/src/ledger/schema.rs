//! Schema and migrations, by `PRAGMA user_version`. Each migration runs in the transaction
//! that also bumps the version. Migrations only add; nothing is ever dropped.

use rusqlite::Connection;

use super::error::LedgerError;

/// The schema version this build writes.
pub const VERSION: i64 = 4;

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: [&str; 4] = [
    // v1: the append-only, hash-chained, signed entries.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) STRICT;
    CREATE TABLE entries (
        seq          INTEGER PRIMARY KEY,
        id           TEXT NOT NULL UNIQUE,
        kind         TEXT NOT NULL CHECK (kind IN ('redeem', 'void')),
        voucher_id   BLOB NOT NULL CHECK (length(voucher_id) = 16),
        issuer_kid   BLOB NOT NULL,
        provider     TEXT NOT NULL,
        device       TEXT NOT NULL,
        amount       INTEGER CHECK (amount IS NULL OR amount > 0),
        currency     TEXT,
        items        TEXT NOT NULL,
        voids        TEXT REFERENCES entries(id),
        at           INTEGER NOT NULL,
        voucher_text TEXT NOT NULL,
        prev_hash    BLOB NOT NULL CHECK (length(prev_hash) = 32),
        hash         BLOB NOT NULL CHECK (length(hash) = 32),
        signature    BLOB NOT NULL CHECK (length(signature) = 64)
    ) STRICT;
    CREATE INDEX entries_by_voucher ON entries(voucher_id);
    CREATE UNIQUE INDEX entries_one_void ON entries(voids) WHERE voids IS NOT NULL;
    CREATE TRIGGER entries_append_only_update BEFORE UPDATE ON entries
        BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
    CREATE TRIGGER entries_append_only_delete BEFORE DELETE ON entries
        BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
    "#,
    // v2: the outbox acknowledgements and the revocation store.
    r#"
    CREATE TABLE synced (
        entry_id   TEXT PRIMARY KEY NOT NULL REFERENCES entries(id),
        acked_at   INTEGER NOT NULL,
        server_ref TEXT
    ) STRICT;
    CREATE TABLE revocations (
        voucher_id BLOB PRIMARY KEY NOT NULL CHECK (length(voucher_id) = 16),
        revoked_at INTEGER NOT NULL
    ) STRICT;
    "#,
    // v3: the server's judgement of each synced entry (accepted, conflict, invalid, suspect).
    r#"
    ALTER TABLE synced ADD COLUMN status TEXT;
    ALTER TABLE synced ADD COLUMN reason TEXT;
    "#,
    // v4: the claim outbox (claims and answers to returned claims made offline, sent by the
    // next sync), the claims as the server last listed them, and which claim holds each
    // redemption.
    r#"
    CREATE TABLE claim_outbox (
        key        TEXT PRIMARY KEY NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('claim', 'answer')),
        program    TEXT,
        request    TEXT NOT NULL,
        claim_id   TEXT,
        documents  TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        done_at    INTEGER,
        error      TEXT
    ) STRICT;
    CREATE TABLE claims_seen (
        id         TEXT PRIMARY KEY NOT NULL,
        claim      TEXT NOT NULL,
        seen_at    INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE claim_lines (
        redemption_id TEXT PRIMARY KEY NOT NULL,
        claim_id      TEXT NOT NULL
    ) STRICT;
    CREATE INDEX claim_lines_by_claim ON claim_lines(claim_id);
    "#,
];

/// Bring a database at `from` up to [`VERSION`], one transaction per step.
pub fn migrate(conn: &mut Connection, from: i64) -> Result<(), LedgerError> {
    migrate_to(conn, from, VERSION)
}

/// Bring a database at `from` up to [`VERSION`] inside the caller's transaction (which holds
/// the write lock and read `from` under it, so two processes never migrate at once).
pub fn migrate_in(conn: &Connection, from: i64) -> Result<(), LedgerError> {
    for v in from..VERSION {
        let sql = MIGRATIONS
            .get(usize::try_from(v).map_err(|_| LedgerError::NotALedger)?)
            .ok_or(LedgerError::NotALedger)?;
        conn.execute_batch(sql)?;
    }
    if from < VERSION {
        conn.pragma_update(None, "user_version", VERSION)?;
    }
    Ok(())
}

/// Bring a database at `from` up to `to` (tests build old versions with this).
pub fn migrate_to(conn: &mut Connection, from: i64, to: i64) -> Result<(), LedgerError> {
    for v in from..to {
        let sql = MIGRATIONS
            .get(usize::try_from(v).map_err(|_| LedgerError::NotALedger)?)
            .ok_or(LedgerError::NotALedger)?;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", v + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// The schema as SQL text, normalised, for comparing an upgraded database with a fresh one.
pub fn dump(conn: &Connection) -> Result<Vec<String>, LedgerError> {
    let mut st = conn.prepare(
        "SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_master \
         WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
    )?;
    let rows = st.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r?.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    Ok(out)
}
