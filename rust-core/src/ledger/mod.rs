//! The redemption ledger: exactly-once redemption, offline, crash-safe and tamper-evident, on
//! SQLite.
//!
//! - One writer connection per [`Ledger`] (behind a mutex), WAL, `synchronous=FULL`,
//!   `foreign_keys=ON`; every redemption is one `BEGIN IMMEDIATE` transaction that commits only
//!   when every check passed, so concurrent threads and processes serialise on SQLite's lock.
//! - Entries are append-only (triggers refuse UPDATE and DELETE); a mistake is undone by a void
//!   entry. Each entry is hash-chained to the previous one and signed by the device key, kept
//!   beside the ledger file with mode 0600 (`<ledger>.device.jwk`).
//! - A ledger that cannot be opened is never deleted, recreated or written: a typed error.

mod chain;
mod error;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::Serialize;

pub use chain::{EntryKind, ItemQty, GENESIS};
pub use error::{LedgerError, RedeemError, Refusal};

use crate::keys::{ed25519_verify_strict, IssuerKey};
use crate::verify::Verified;
use crate::voucher::{RedemptionRule, Voucher, VoucherId};

/// What a provider asks to redeem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedeemRequest {
    /// The whole voucher (for a partial voucher: everything that remains).
    Whole,
    /// An amount in minor units of the voucher's currency (partial vouchers).
    Amount(u64),
    /// Items with quantities (partial vouchers).
    Items(Vec<ItemQty>),
}

/// Who is redeeming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemer<'a> {
    /// Service provider id (checked against `aud`).
    pub provider: &'a str,
    /// Provider category (checked against the voucher's categories).
    pub category: Option<&'a str>,
    /// Device id recorded in the entry.
    pub device: &'a str,
}

/// A ledger entry as stored (and as synced: the JSON form carries every field the hash and the
/// signature cover, so a server can check both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Entry {
    pub seq: i64,
    pub id: String,
    pub kind: EntryKind,
    pub voucher_id: VoucherId,
    #[serde(serialize_with = "hex_ser", deserialize_with = "hex_de")]
    pub issuer_kid: Vec<u8>,
    pub provider: String,
    pub device: String,
    pub amount: Option<u64>,
    pub currency: Option<String>,
    pub items: Vec<ItemQty>,
    pub voids: Option<String>,
    pub at: i64,
    pub voucher_text: String,
    #[serde(serialize_with = "hex_ser", deserialize_with = "hex_de")]
    pub prev_hash: Vec<u8>,
    #[serde(serialize_with = "hex_ser", deserialize_with = "hex_de")]
    pub hash: Vec<u8>,
    #[serde(serialize_with = "hex_ser", deserialize_with = "hex_de")]
    pub signature: Vec<u8>,
}

fn hex_ser<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(b))
}

fn hex_de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    hex::decode(s).map_err(serde::de::Error::custom)
}

impl Entry {
    /// The hash this entry's fields give (compare with `hash`).
    pub fn computed_hash(&self) -> [u8; 32] {
        hash_of(self)
    }

    /// Whether `signature` is a valid Ed25519 signature of `hash` by `device_public` (the
    /// 32-byte key), as the server checks on sync.
    pub fn signed_by(&self, device_public: &[u8; 32]) -> bool {
        ed25519_dalek::VerifyingKey::from_bytes(device_public)
            .is_ok_and(|k| ed25519_verify_strict(&k, &self.hash, &self.signature))
    }
}

/// What remains on a voucher.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Balance {
    /// Remaining cash value (minor units), when the voucher has one.
    pub amount: Option<u64>,
    pub items: Vec<ItemQty>,
    /// Active (not voided) redemptions.
    pub redemptions: usize,
}

/// The receipt of a successful redemption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub entry: Entry,
    /// What remains after this redemption.
    pub remaining: Balance,
}

/// Where `verify_chain` found a problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("ledger chain broken at seq {seq}: {problem}")]
pub struct ChainError {
    pub seq: i64,
    pub problem: &'static str,
}

/// A verified chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub entries: i64,
    #[serde(serialize_with = "hex_ser")]
    pub head_hash: Vec<u8>,
}

/// Counts for status displays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub entries: i64,
    pub redemptions: i64,
    pub voids: i64,
    pub unsynced: i64,
    pub revocations: i64,
}

/// Open options.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `synchronous=FULL` (durable when `redeem` returns). Only benchmarks prefilling a
    /// ledger turn this off.
    pub durable: bool,
    /// How long to wait for another writer.
    pub busy_timeout_ms: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durable: true,
            busy_timeout_ms: 10_000,
        }
    }
}

/// The redemption ledger. `Send + Sync`: share it behind an `Arc`.
pub struct Ledger {
    conn: Mutex<Connection>,
    path: PathBuf,
    key: IssuerKey,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ledger({})", self.path.display())
    }
}

const COLUMNS: &str = "seq, id, kind, voucher_id, issuer_kid, provider, device, amount, currency, items, voids, at, voucher_text, prev_hash, hash, signature";

impl Ledger {
    /// Where the device key of a ledger lives.
    pub fn device_key_path(ledger: &Path) -> PathBuf {
        let mut p = ledger.as_os_str().to_owned();
        p.push(".device.jwk");
        PathBuf::from(p)
    }

    /// Open a ledger, creating it (and its device key) if the file does not exist.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        Self::open_with(path, Options::default())
    }

    pub fn open_with(path: &Path, opts: Options) -> Result<Self, LedgerError> {
        let key_path = Self::device_key_path(path);
        let exists = path.exists();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | if exists {
                OpenFlags::empty()
            } else {
                OpenFlags::SQLITE_OPEN_CREATE
            };
        let mut conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(std::time::Duration::from_millis(opts.busy_timeout_ms))?;
        // Reads only, until the file is known to be ours.
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let objects: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if version > schema::VERSION {
            return Err(LedgerError::NewerSchema {
                found: version,
                supported: schema::VERSION,
            });
        }
        if version == 0 && objects > 0 {
            return Err(LedgerError::NotALedger);
        }
        let stored_public: Option<String> = if version >= 1 {
            conn.query_row(
                "SELECT value FROM meta WHERE key = 'device_public'",
                [],
                |r| r.get(0),
            )
            .optional()?
        } else {
            None
        };
        let key = match (&stored_public, key_path.exists()) {
            (Some(_), false) => return Err(LedgerError::DeviceKey("is missing")),
            (Some(p), true) => {
                let k = IssuerKey::read(&key_path)
                    .map_err(|_| LedgerError::DeviceKey("cannot be read"))?;
                if k.public_jwk().x.as_deref() != Some(p.as_str()) {
                    return Err(LedgerError::DeviceKey("does not match this ledger"));
                }
                k
            }
            (None, true) => {
                IssuerKey::read(&key_path).map_err(|_| LedgerError::DeviceKey("cannot be read"))?
            }
            (None, false) => {
                let k = IssuerKey::generate()?;
                k.write_new(&key_path)?;
                k
            }
        };
        // Now it is ours: configure and migrate.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(LedgerError::Db(format!("journal_mode is {mode}, not WAL")));
        }
        conn.pragma_update(
            None,
            "synchronous",
            if opts.durable { "FULL" } else { "OFF" },
        )?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&mut conn, version)?;
        if stored_public.is_none() {
            let x = key.public_jwk().x.unwrap_or_default();
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('device_public', ?1)",
                params![x],
            )?;
        }
        Ok(Ledger {
            conn: Mutex::new(conn),
            path: path.to_owned(),
            key,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written transaction (it rolls
        // back on drop), so a poisoned lock is safe to take over.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The device's public key (base64url), which signs every entry.
    pub fn device_public(&self) -> String {
        self.key.public_jwk().x.unwrap_or_default()
    }

    /// Redeem a verified voucher. Checks, in order: revoked, not yet valid, expired, provider
    /// (`aud`), category, then the voucher's history (already redeemed, balance, items). On
    /// success one entry is appended and committed durably before this returns.
    pub fn redeem(
        &self,
        v: &Verified,
        who: &Redeemer<'_>,
        req: &RedeemRequest,
        now: i64,
    ) -> Result<Receipt, RedeemError> {
        let voucher = &v.voucher;
        if now < voucher.valid_from() {
            return Err(Refusal::NotYetValid {
                nbf: voucher.valid_from(),
            }
            .into());
        }
        if now >= voucher.exp {
            return Err(Refusal::Expired { exp: voucher.exp }.into());
        }
        if voucher.aud.as_deref().is_some_and(|a| a != who.provider) {
            return Err(Refusal::WrongProvider.into());
        }
        if !voucher.categories.is_empty()
            && !who
                .category
                .is_some_and(|c| voucher.categories.iter().any(|x| x == c))
        {
            return Err(Refusal::CategoryNotAllowed.into());
        }
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(at) = revoked_at(&tx, &voucher.id)? {
            return Err(Refusal::Revoked { revoked_at: at }.into());
        }
        let history = load_history(&tx, &voucher.id)?;
        let bal = balance_of(voucher, &history);
        let (amount, items) = plan(voucher, &history, &bal, req)?;
        let entry = append(
            &tx,
            &self.key,
            NewEntry {
                kind: EntryKind::Redeem,
                voucher_id: voucher.id,
                issuer_kid: &v.kid.as_bytes(),
                provider: who.provider,
                device: who.device,
                amount,
                currency: amount.and(voucher.value.as_ref().map(|x| x.currency.as_str())),
                items: &items,
                voids: None,
                at: now,
                voucher_text: &v.text,
            },
        )?;
        tx.commit()?;
        let mut after = history;
        after.push(entry.clone());
        Ok(Receipt {
            remaining: balance_of(voucher, &after),
            entry,
        })
    }

    /// Undo a redemption by appending a void entry. The original entry stays.
    pub fn void(&self, entry_id: &str, who: &Redeemer<'_>, now: i64) -> Result<Entry, LedgerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let target = get_entry(&tx, entry_id)?.ok_or(LedgerError::NoSuchEntry)?;
        if target.kind != EntryKind::Redeem {
            return Err(LedgerError::CannotVoid("only a redemption can be voided"));
        }
        let already: bool = tx
            .query_row(
                "SELECT 1 FROM entries WHERE voids = ?1",
                params![entry_id],
                |_| Ok(true),
            )
            .optional()?
            .unwrap_or(false);
        if already {
            return Err(LedgerError::CannotVoid("already voided"));
        }
        let e = append(
            &tx,
            &self.key,
            NewEntry {
                kind: EntryKind::Void,
                voucher_id: target.voucher_id,
                issuer_kid: &target.issuer_kid,
                provider: who.provider,
                device: who.device,
                amount: target.amount,
                currency: target.currency.as_deref(),
                items: &target.items,
                voids: Some(entry_id),
                at: now,
                voucher_text: &target.voucher_text,
            },
        )?;
        tx.commit()?;
        Ok(e)
    }

    /// What remains on a voucher.
    pub fn balance(&self, voucher: &Voucher) -> Result<Balance, LedgerError> {
        let conn = self.lock();
        Ok(balance_of(voucher, &load_history(&conn, &voucher.id)?))
    }

    /// Every entry for one voucher, in order.
    pub fn history(&self, id: &VoucherId) -> Result<Vec<Entry>, LedgerError> {
        load_history(&self.lock(), id)
    }

    /// One entry by id.
    pub fn entry(&self, id: &str) -> Result<Option<Entry>, LedgerError> {
        get_entry(&self.lock(), id)
    }

    /// Entries with `seq > after`, in order, at most `limit`.
    pub fn entries(&self, after: i64, limit: usize) -> Result<Vec<Entry>, LedgerError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM entries WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = st.query_map(params![after, limit as i64], row_entry)?;
        collect(rows)
    }

    /// Entries not yet acknowledged by the server, in order, at most `limit`.
    pub fn outbox(&self, limit: usize) -> Result<Vec<Entry>, LedgerError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM entries e WHERE NOT EXISTS \
             (SELECT 1 FROM synced s WHERE s.entry_id = e.id) ORDER BY seq LIMIT ?1"
        ))?;
        let rows = st.query_map(params![limit as i64], row_entry)?;
        collect(rows)
    }

    /// Record the server's acknowledgement of these entries. All or nothing: an unknown id
    /// fails the call and records none. Acknowledging twice is harmless. Returns how many were
    /// newly acknowledged.
    pub fn mark_synced(
        &self,
        ids: &[String],
        now: i64,
        server_ref: Option<&str>,
    ) -> Result<usize, LedgerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n = 0;
        {
            let mut exists = tx.prepare_cached("SELECT 1 FROM entries WHERE id = ?1")?;
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO synced (entry_id, acked_at, server_ref) VALUES (?1, ?2, ?3)",
            )?;
            for id in ids {
                if !exists.exists(params![id])? {
                    return Err(LedgerError::NoSuchEntry);
                }
                n += ins.execute(params![id, now, server_ref])?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Add voucher ids the program has cancelled. Returns how many were new.
    pub fn add_revocations(&self, ids: &[(VoucherId, i64)]) -> Result<usize, LedgerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n = 0;
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR IGNORE INTO revocations (voucher_id, revoked_at) VALUES (?1, ?2)",
            )?;
            for (id, at) in ids {
                n += ins.execute(params![id.0.as_slice(), at])?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// When a voucher was revoked, if it was.
    pub fn revoked_at(&self, id: &VoucherId) -> Result<Option<i64>, LedgerError> {
        revoked_at(&self.lock(), id)
    }

    pub fn stats(&self) -> Result<Stats, LedgerError> {
        let conn = self.lock();
        let q = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
        Ok(Stats {
            entries: q("SELECT count(*) FROM entries")?,
            redemptions: q("SELECT count(*) FROM entries WHERE kind = 'redeem'")?,
            voids: q("SELECT count(*) FROM entries WHERE kind = 'void'")?,
            unsynced: q("SELECT count(*) FROM entries e WHERE NOT EXISTS (SELECT 1 FROM synced s WHERE s.entry_id = e.id)")?,
            revocations: q("SELECT count(*) FROM revocations")?,
        })
    }

    /// Check the whole chain: sequence numbers contiguous from 1, each `prev_hash` equal to
    /// the previous entry's hash, each hash equal to the hash of the entry's fields, each
    /// signature valid under this ledger's device key, and the recorded head equal to the last
    /// entry. Finds any entry edited, deleted, inserted or reordered.
    pub fn verify_chain(&self) -> Result<Result<ChainReport, ChainError>, LedgerError> {
        let conn = self.lock();
        let vk = self.key.verifying_key();
        let mut st = conn.prepare(&format!("SELECT {COLUMNS} FROM entries ORDER BY seq"))?;
        let mut rows = st.query([])?;
        let mut expected_seq = 1i64;
        let mut prev = GENESIS.to_vec();
        while let Some(row) = rows.next()? {
            let e = match row_entry(row) {
                Ok(e) => e,
                Err(_) => {
                    let seq: i64 = row.get(0).unwrap_or(expected_seq);
                    return Ok(Err(ChainError {
                        seq,
                        problem: "entry is malformed",
                    }));
                }
            };
            let fail = |problem| {
                Ok(Err(ChainError {
                    seq: e.seq,
                    problem,
                }))
            };
            if e.seq != expected_seq {
                return fail("sequence gap: an entry was deleted, inserted or renumbered");
            }
            if e.prev_hash != prev {
                return fail(
                    "link to the previous entry is broken: entries reordered, inserted or deleted",
                );
            }
            if hash_of(&e) != e.hash.as_slice() {
                return fail("hash does not match the entry: the entry was edited");
            }
            if !ed25519_verify_strict(&vk, &e.hash, &e.signature) {
                return fail("device signature is invalid");
            }
            prev = e.hash.clone();
            expected_seq += 1;
        }
        Ok(Ok(ChainReport {
            entries: expected_seq - 1,
            head_hash: prev,
        }))
    }
}

fn collect(rows: impl Iterator<Item = rusqlite::Result<Entry>>) -> Result<Vec<Entry>, LedgerError> {
    let mut out = Vec::new();
    for r in rows {
        out.push(r?);
    }
    Ok(out)
}

fn revoked_at(conn: &Connection, id: &VoucherId) -> Result<Option<i64>, LedgerError> {
    Ok(conn
        .prepare_cached("SELECT revoked_at FROM revocations WHERE voucher_id = ?1")?
        .query_row(params![id.0.as_slice()], |r| r.get(0))
        .optional()?)
}

fn load_history(conn: &Connection, id: &VoucherId) -> Result<Vec<Entry>, LedgerError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM entries WHERE voucher_id = ?1 ORDER BY seq"
    ))?;
    let rows = st.query_map(params![id.0.as_slice()], row_entry)?;
    collect(rows)
}

fn get_entry(conn: &Connection, id: &str) -> Result<Option<Entry>, LedgerError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM entries WHERE id = ?1"))?
        .query_row(params![id], row_entry)
        .optional()?)
}

fn row_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            what.to_owned().into(),
        )
    };
    let kind: String = r.get(2)?;
    let vid: Vec<u8> = r.get(3)?;
    let items: String = r.get(9)?;
    let amount: Option<i64> = r.get(7)?;
    Ok(Entry {
        seq: r.get(0)?,
        id: r.get(1)?,
        kind: EntryKind::parse(&kind).ok_or_else(|| bad(2, "kind"))?,
        voucher_id: VoucherId(vid.try_into().map_err(|_| bad(3, "voucher_id"))?),
        issuer_kid: r.get(4)?,
        provider: r.get(5)?,
        device: r.get(6)?,
        amount: amount
            .map(u64::try_from)
            .transpose()
            .map_err(|_| bad(7, "amount"))?,
        currency: r.get(8)?,
        items: serde_json::from_str(&items).map_err(|_| bad(9, "items"))?,
        voids: r.get(10)?,
        at: r.get(11)?,
        voucher_text: r.get(12)?,
        prev_hash: r.get(13)?,
        hash: r.get(14)?,
        signature: r.get(15)?,
    })
}

fn hash_of(e: &Entry) -> [u8; 32] {
    chain::HashInput {
        seq: e.seq,
        id: &e.id,
        kind: e.kind,
        voucher_id: &e.voucher_id.0,
        issuer_kid: &e.issuer_kid,
        provider: &e.provider,
        device: &e.device,
        amount: e.amount,
        currency: e.currency.as_deref(),
        items: &e.items,
        voids: e.voids.as_deref(),
        at: e.at,
        voucher_text: &e.voucher_text,
        prev_hash: &e.prev_hash,
    }
    .hash()
}

struct NewEntry<'a> {
    kind: EntryKind,
    voucher_id: VoucherId,
    issuer_kid: &'a [u8],
    provider: &'a str,
    device: &'a str,
    amount: Option<u64>,
    currency: Option<&'a str>,
    items: &'a [ItemQty],
    voids: Option<&'a str>,
    at: i64,
    voucher_text: &'a str,
}

/// Append one entry inside the caller's transaction.
fn append(conn: &Connection, key: &IssuerKey, n: NewEntry<'_>) -> Result<Entry, LedgerError> {
    let (last_seq, prev): (i64, Vec<u8>) = conn
        .prepare_cached("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, GENESIS.to_vec()));
    let mut e = Entry {
        seq: last_seq + 1,
        id: uuid::Uuid::now_v7().to_string(),
        kind: n.kind,
        voucher_id: n.voucher_id,
        issuer_kid: n.issuer_kid.to_vec(),
        provider: n.provider.to_owned(),
        device: n.device.to_owned(),
        amount: n.amount,
        currency: n.currency.map(str::to_owned),
        items: n.items.to_vec(),
        voids: n.voids.map(str::to_owned),
        at: n.at,
        voucher_text: n.voucher_text.to_owned(),
        prev_hash: prev,
        hash: Vec::new(),
        signature: Vec::new(),
    };
    e.hash = hash_of(&e).to_vec();
    e.signature = key.sign(&e.hash).to_vec();
    let amount = e
        .amount
        .map(i64::try_from)
        .transpose()
        .map_err(|_| LedgerError::Db("amount out of range".into()))?;
    let items = serde_json::to_string(&e.items).map_err(|e| LedgerError::Db(e.to_string()))?;
    conn.prepare_cached(&format!(
        "INSERT INTO entries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))?
    .execute(params![
        e.seq,
        e.id,
        e.kind.as_str(),
        e.voucher_id.0.as_slice(),
        e.issuer_kid,
        e.provider,
        e.device,
        amount,
        e.currency,
        items,
        e.voids,
        e.at,
        e.voucher_text,
        e.prev_hash,
        e.hash,
        e.signature
    ])?;
    Ok(e)
}

/// The active (not voided) redemptions of a history (voided ids collected once: linear).
fn active(history: &[Entry]) -> impl Iterator<Item = &Entry> {
    let voided: std::collections::HashSet<&str> = history
        .iter()
        .filter(|v| v.kind == EntryKind::Void)
        .filter_map(|v| v.voids.as_deref())
        .collect();
    history
        .iter()
        .filter(move |e| e.kind == EntryKind::Redeem && !voided.contains(e.id.as_str()))
}

fn balance_of(voucher: &Voucher, history: &[Entry]) -> Balance {
    let used_amount: u64 = active(history).filter_map(|e| e.amount).sum();
    let items = voucher
        .items
        .iter()
        .map(|it| {
            let used: u64 = active(history)
                .flat_map(|e| e.items.iter())
                .filter(|x| x.code == it.code)
                .map(|x| x.quantity)
                .sum();
            ItemQty {
                code: it.code.clone(),
                quantity: it.quantity.saturating_sub(used),
            }
        })
        .collect();
    let redemptions = active(history).count();
    let amount = voucher
        .value
        .as_ref()
        .map(|v| v.amount.saturating_sub(used_amount));
    match voucher.rule {
        // A single-use voucher redeemed once has nothing left.
        RedemptionRule::Single if redemptions > 0 => Balance {
            amount: amount.map(|_| 0),
            items: voucher
                .items
                .iter()
                .map(|i| ItemQty {
                    code: i.code.clone(),
                    quantity: 0,
                })
                .collect(),
            redemptions,
        },
        _ => Balance {
            amount,
            items,
            redemptions,
        },
    }
}

/// Decide what this request redeems, or refuse.
fn plan(
    voucher: &Voucher,
    history: &[Entry],
    bal: &Balance,
    req: &RedeemRequest,
) -> Result<(Option<u64>, Vec<ItemQty>), Refusal> {
    if voucher.rule == RedemptionRule::Single {
        if let Some(e) = active(history).next() {
            return Err(Refusal::AlreadyRedeemed {
                at: e.at,
                provider: e.provider.clone(),
                device: e.device.clone(),
                entry_id: e.id.clone(),
            });
        }
        if *req != RedeemRequest::Whole {
            return Err(Refusal::WholeOnly);
        }
        let items = voucher
            .items
            .iter()
            .map(|i| ItemQty {
                code: i.code.clone(),
                quantity: i.quantity,
            })
            .collect();
        return Ok((voucher.value.as_ref().map(|v| v.amount), items));
    }
    let exhausted = bal.amount.unwrap_or(0) == 0 && bal.items.iter().all(|i| i.quantity == 0);
    if exhausted {
        return Err(Refusal::Exhausted);
    }
    match req {
        RedeemRequest::Whole => Ok((
            bal.amount.filter(|a| *a > 0),
            bal.items
                .iter()
                .filter(|i| i.quantity > 0)
                .cloned()
                .collect(),
        )),
        RedeemRequest::Amount(x) => {
            let remaining = bal.amount.ok_or(Refusal::NoValue)?;
            if *x == 0 {
                return Err(Refusal::InvalidRequest("amount must be positive"));
            }
            if *x > remaining {
                return Err(if remaining == 0 {
                    Refusal::Exhausted
                } else {
                    Refusal::InsufficientBalance {
                        remaining,
                        requested: *x,
                    }
                });
            }
            Ok((Some(*x), Vec::new()))
        }
        RedeemRequest::Items(req_items) => {
            if req_items.is_empty() {
                return Err(Refusal::InvalidRequest("no items requested"));
            }
            for (i, it) in req_items.iter().enumerate() {
                if it.quantity == 0 {
                    return Err(Refusal::InvalidRequest("item quantity must be positive"));
                }
                if req_items[..i].iter().any(|x| x.code == it.code) {
                    return Err(Refusal::InvalidRequest("item listed twice"));
                }
                let left = bal
                    .items
                    .iter()
                    .find(|b| b.code == it.code)
                    .ok_or_else(|| Refusal::UnknownItem {
                        code: it.code.clone(),
                    })?;
                if it.quantity > left.quantity {
                    return Err(Refusal::InsufficientItems {
                        code: it.code.clone(),
                        remaining: left.quantity,
                        requested: it.quantity,
                    });
                }
            }
            Ok((None, req_items.clone()))
        }
    }
}
