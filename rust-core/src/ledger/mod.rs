//! The redemption ledger: exactly-once redemption, offline, crash-safe and tamper-evident, on
//! SQLite.
//!
//! - One writer connection per [`Ledger`] (behind a mutex), WAL, `synchronous=FULL`,
//!   `foreign_keys=ON`; every redemption is one `BEGIN IMMEDIATE` transaction that commits only
//!   when every check passed, so concurrent threads and processes serialise on SQLite's lock.
//! - Entries are append-only (triggers refuse UPDATE and DELETE); a mistake is undone by a void
//!   entry. Each entry is hash-chained to the previous one and signed by the device key, kept
//!   beside the ledger file with mode 0600 (`<ledger>.device.jwk`).
//! - A ledger that cannot be opened is never deleted, recreated or written: a typed error. A
//!   ledger that is gone or empty while its device key remains was lost: refused
//!   ([`LedgerError::Lost`]), never silently started again with the same key.
//! - What a redemption may take is decided by [`crate::rules`], the rulebook the server uses too.
//! - Two processes creating the same ledger at once: one creates it under SQLite's write lock,
//!   the other waits and opens what the first made. The device key is written beside the ledger
//!   as `<key>.new` first and renamed into place once the ledger records it, so a crash at any
//!   point leaves either nothing or a ledger and its key.
//! - [`Ledger::open_read_only`] reads a ledger where nothing may be written (a read-only
//!   directory, a copy sent for audit without its device key).

mod chain;
mod error;
mod export;
mod history;
mod outbox;
pub mod schema;

pub use export::{sync_status, CSV_HEADER};
pub use history::{HistoryFilter, HistoryPage, HistoryRow, MAX_PAGE};
pub use outbox::{QueuedClaim, QueuedDocument};

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use ed25519_dalek::VerifyingKey;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use serde::Serialize;

pub use crate::rules::{Balance, ItemQty, RedeemRequest, Refusal};
pub use chain::{EntryKind, GENESIS};
pub use error::{LedgerError, RedeemError};

use crate::keys::{ed25519_verify_strict, IssuerKey};
use crate::rules::{self, Context, Counted, Taking, VoidTarget};
use crate::verify::Verified;
use crate::voucher::{Voucher, VoucherId};

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

/// The device id of a device key (base64url of its 32-byte public key): `dev-` and the first
/// 16 hex digits of its SHA-256. The server gives an enrolled device the same id, so a device
/// has one id everywhere.
pub fn device_id_of(public_b64: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(public_b64)
        .unwrap_or_else(|_| public_b64.as_bytes().to_vec());
    format!("dev-{}", &hex::encode(sha2::Sha256::digest(&raw))[..16])
}

/// What enrolment with a program server fixed for this ledger: entries are recorded for this
/// provider and device only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Enrolment {
    pub server: String,
    pub device_id: String,
    pub provider: String,
    /// The provider's category as the server registered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
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

/// The server's judgement of a synced entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Judged {
    pub id: String,
    /// `accepted`, `conflict`, `invalid` or `suspect` (`synced` when acknowledged without one).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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
    /// The device key that signs new entries (`None`: opened read-only).
    key: Option<IssuerKey>,
    /// The device's public key, as recorded in the ledger.
    public: VerifyingKey,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ledger({})", self.path.display())
    }
}

const COLUMNS: &str = "e.seq, e.id, e.kind, e.voucher_id, e.issuer_kid, e.provider, e.device, e.amount, e.currency, e.items, e.voids, e.at, e.voucher_text, e.prev_hash, e.hash, e.signature";
const PLAIN_COLUMNS: &str = "seq, id, kind, voucher_id, issuer_kid, provider, device, amount, currency, items, voids, at, voucher_text, prev_hash, hash, signature";

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn read_key(path: &Path) -> Result<IssuerKey, LedgerError> {
    IssuerKey::read(path).map_err(|_| LedgerError::DeviceKey("cannot be read"))
}

/// The device key recorded in a ledger (`meta.device_public`), if any.
fn stored_public(conn: &Connection) -> Result<Option<String>, LedgerError> {
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'device_public'",
            [],
            |r| r.get(0),
        )
        .optional()?)
}

fn verifying_key(public_b64: &str) -> Result<VerifyingKey, LedgerError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(public_b64)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or(LedgerError::Db(
            "the recorded device key is malformed".into(),
        ))
}

impl Ledger {
    /// Where the device key of a ledger lives.
    pub fn device_key_path(ledger: &Path) -> PathBuf {
        with_suffix(ledger, ".device.jwk")
    }

    /// Open a ledger, creating it (and its device key) if the file does not exist.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        Self::open_with(path, Options::default())
    }

    pub fn open_with(path: &Path, opts: Options) -> Result<Self, LedgerError> {
        // SQLite answers "busy" without waiting in a few moments of another process creating
        // or converting the same file (its busy handler is not called where waiting could
        // deadlock). Opening writes nothing that is not inside a transaction, so it is tried
        // again until the busy timeout.
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_millis(opts.busy_timeout_ms);
        loop {
            match Self::try_open(path, opts) {
                Err(LedgerError::Busy) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                r => return r,
            }
        }
    }

    fn try_open(path: &Path, opts: Options) -> Result<Self, LedgerError> {
        let key_path = Self::device_key_path(path);
        // Looked at before the ledger: a new ledger's key is put in place only after the
        // ledger recording it has committed, so a key seen now with an empty ledger read
        // afterwards means the ledger was lost (not that another process is creating it).
        let key_present = key_path.exists();
        let exists = path.exists();
        if !exists && key_present {
            return Err(LedgerError::Lost);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | if exists {
                OpenFlags::empty()
            } else {
                OpenFlags::SQLITE_OPEN_CREATE
            };
        let mut conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(std::time::Duration::from_millis(opts.busy_timeout_ms))?;
        // Reads only, until the file is known to be ours (or empty: ours to create).
        let version = check_version(&conn)?;
        let stored = if version >= 1 {
            stored_public(&conn)?
        } else {
            None
        };
        if let Some(p) = &stored {
            // Checked before anything is written: a ledger with the wrong key is left as is.
            Self::existing_key(&key_path, p)?;
        }
        if version == 0 && key_present {
            // An empty ledger beside its key: lost. Refused before anything, even SQLite's
            // header, is written.
            return Err(LedgerError::Lost);
        }
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
        // Create or upgrade under the write lock; another process may have done it meanwhile.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version = check_version(&tx)?;
        let pending = if version == 0 {
            if key_path.exists() {
                return Err(LedgerError::Lost);
            }
            // A new ledger: its key is written aside first and put in place after the commit.
            let k = IssuerKey::generate()?;
            let new = with_suffix(&key_path, ".new");
            let _ = std::fs::remove_file(&new);
            k.write_new(&new)?;
            schema::migrate_in(&tx, 0)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('device_public', ?1)",
                params![k.public_jwk().x.unwrap_or_default()],
            )?;
            Some(new)
        } else {
            schema::migrate_in(&tx, version)?;
            None
        };
        tx.commit()?;
        if let Some(new) = pending {
            put_in_place(&new, &key_path)?;
        }
        let public = stored_public(&conn)?.ok_or(LedgerError::NotALedger)?;
        let key = Self::existing_key(&key_path, &public)?;
        Ok(Ledger {
            conn: Mutex::new(conn),
            path: path.to_owned(),
            public: key.verifying_key(),
            key: Some(key),
        })
    }

    /// The device key of an existing ledger. A key still waiting beside it as `<key>.new`
    /// (a crash between the ledger's commit and the rename) is put in place first.
    fn existing_key(key_path: &Path, public: &str) -> Result<IssuerKey, LedgerError> {
        if !key_path.exists() {
            let new = with_suffix(key_path, ".new");
            match IssuerKey::read(&new) {
                Ok(k) if k.public_jwk().x.as_deref() == Some(public) => {
                    put_in_place(&new, key_path)?
                }
                _ => return Err(LedgerError::DeviceKey("is missing")),
            }
        }
        let k = read_key(key_path)?;
        if k.public_jwk().x.as_deref() != Some(public) {
            return Err(LedgerError::DeviceKey("does not match this ledger"));
        }
        Ok(k)
    }

    /// Open an existing ledger for reading only: nothing is written, not even SQLite's
    /// journal files when they cannot be (a read-only directory or medium), and the device key
    /// is not needed (entries are checked against the key the ledger records). Redeeming or
    /// voiding through it is [`LedgerError::ReadOnly`].
    pub fn open_read_only(path: &Path) -> Result<Self, LedgerError> {
        if !path.exists() {
            return Err(if Self::device_key_path(path).exists() {
                LedgerError::Lost
            } else {
                LedgerError::NotFound
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open = |conn: Connection| -> Result<(Connection, i64), LedgerError> {
            let v = check_version(&conn)?;
            Ok((conn, v))
        };
        let (conn, version) = match Connection::open_with_flags(path, flags)
            .map_err(LedgerError::from)
            .and_then(open)
        {
            Ok(x) => x,
            // A WAL database in a place where its `-shm` file cannot be made: read it as an
            // immutable file (nothing else may be writing it there anyway).
            Err(LedgerError::Db(_)) | Err(LedgerError::CannotOpen) => {
                let uri = format!("file:{}?immutable=1", uri_path(path));
                open(Connection::open_with_flags(
                    uri,
                    flags | OpenFlags::SQLITE_OPEN_URI,
                )?)?
            }
            Err(e) => return Err(e),
        };
        if version == 0 {
            return Err(if Self::device_key_path(path).exists() {
                LedgerError::Lost
            } else {
                LedgerError::NotALedger
            });
        }
        if version != schema::VERSION {
            return Err(LedgerError::NeedsUpgrade {
                found: version,
                current: schema::VERSION,
            });
        }
        let public = stored_public(&conn)?.ok_or(LedgerError::NotALedger)?;
        Ok(Ledger {
            public: verifying_key(&public)?,
            conn: Mutex::new(conn),
            path: path.to_owned(),
            key: None,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written transaction (it rolls
        // back on drop), so a poisoned lock is safe to take over.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn signer(&self) -> Result<&IssuerKey, LedgerError> {
        self.key.as_ref().ok_or(LedgerError::ReadOnly)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The device's public key (base64url), which signs every entry.
    pub fn device_public(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.public.as_bytes())
    }

    /// This device's id: the enrolled one, else the one its key gives ([`device_id_of`], the
    /// same the server will give it).
    pub fn device_id(&self) -> Result<String, LedgerError> {
        Ok(match self.enrolment()? {
            Some(e) => e.device_id,
            None => device_id_of(&self.device_public()),
        })
    }

    /// The enrolment recorded by [`set_enrolment`](Self::set_enrolment), if any.
    pub fn enrolment(&self) -> Result<Option<Enrolment>, LedgerError> {
        let conn = self.lock();
        let v: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'enrolment'", [], |r| {
                r.get(0)
            })
            .optional()?;
        v.map(|s| serde_json::from_str(&s).map_err(|_| LedgerError::Db("enrolment record".into())))
            .transpose()
    }

    /// Record the enrolment the server gave this device. From then on entries are recorded for
    /// its provider and device id only. A ledger enrols once.
    pub fn set_enrolment(&self, e: &Enrolment) -> Result<(), LedgerError> {
        self.signer()?;
        let json = serde_json::to_string(e).map_err(|e| LedgerError::Db(e.to_string()))?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('enrolment', ?1)",
            params![json],
        )?;
        if n == 0 {
            return Err(LedgerError::Enrolled(
                "this ledger is already enrolled".into(),
            ));
        }
        tx.commit()?;
        Ok(())
    }

    /// Who really redeems: on an enrolled ledger its provider, category and device id, and a
    /// different provider, category or device asked for is refused before anything is done.
    fn identity<'a>(
        &self,
        who: &Redeemer<'a>,
    ) -> Result<(String, Option<String>, String), LedgerError> {
        let Some(e) = self.enrolment()? else {
            return Ok((
                who.provider.to_owned(),
                who.category.map(str::to_owned),
                who.device.to_owned(),
            ));
        };
        if !who.provider.is_empty() && who.provider != e.provider {
            return Err(LedgerError::Enrolled(format!(
                "this ledger is enrolled for provider {}, not {}",
                e.provider, who.provider
            )));
        }
        if let Some(c) = who.category {
            if e.category.as_deref() != Some(c) {
                return Err(LedgerError::Enrolled(format!(
                    "this ledger's provider has category {}, not {c}",
                    e.category.as_deref().unwrap_or("(none)")
                )));
            }
        }
        if !who.device.is_empty() && who.device != e.device_id {
            return Err(LedgerError::Enrolled(format!(
                "this ledger is enrolled as device {}, not {}",
                e.device_id, who.device
            )));
        }
        Ok((e.provider, e.category, e.device_id))
    }

    /// Redeem a verified voucher. The rulebook ([`crate::rules`]) decides: validity, provider
    /// (`aud`), category, cancellation, then what the request may take given the voucher's
    /// history. On success one entry is appended and committed durably before this returns.
    ///
    /// On an enrolled ledger the enrolled provider, category and device are used (empty
    /// `provider`/`device` and `None` category take them); asking for others is an error.
    pub fn redeem(
        &self,
        v: &Verified,
        who: &Redeemer<'_>,
        req: &RedeemRequest,
        now: i64,
    ) -> Result<Receipt, RedeemError> {
        let key = self.signer()?;
        let (provider, category, device) = self.identity(who)?;
        let voucher = &v.voucher;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (amount, items, remaining) =
            judge(&tx, voucher, &provider, category.as_deref(), req, now)?;
        let currency = amount.and(voucher.value.as_ref().map(|x| x.currency.as_str()));
        let entry = append(
            &tx,
            key,
            NewEntry {
                kind: EntryKind::Redeem,
                voucher_id: voucher.id,
                issuer_kid: &v.kid.as_bytes(),
                provider: &provider,
                device: &device,
                amount,
                currency,
                items: &items,
                voids: None,
                at: now,
                voucher_text: &v.text,
            },
        )?;
        tx.commit()?;
        Ok(Receipt { remaining, entry })
    }

    /// What [`redeem`](Self::redeem) would decide, without writing anything: what would remain
    /// after `req`, or the refusal (already redeemed, expired, wrong provider, ...). The phone
    /// shows this verdict before the person confirms.
    pub fn check(
        &self,
        v: &Verified,
        who: &Redeemer<'_>,
        req: &RedeemRequest,
        now: i64,
    ) -> Result<Balance, RedeemError> {
        let (provider, category, _) = self.identity(who)?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let (_, _, remaining) = judge(&tx, &v.voucher, &provider, category.as_deref(), req, now)?;
        Ok(remaining)
    }

    /// Undo a redemption by appending a void entry. The original entry stays. The rulebook
    /// decides ([`rules::check_void`]): a redemption of this ledger, not voided yet.
    pub fn void(&self, entry_id: &str, who: &Redeemer<'_>, now: i64) -> Result<Entry, LedgerError> {
        let key = self.signer()?;
        let enrolled = self.enrolment()?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let target = get_entry(&tx, entry_id)?;
        let voided = tx
            .prepare_cached("SELECT 1 FROM entries WHERE voids = ?1")?
            .exists(params![entry_id])?;
        let t = target.as_ref().map(|t| VoidTarget {
            is_redemption: t.kind == EntryKind::Redeem,
            // Every entry of this ledger is this device's.
            device: "",
            voucher_id: &t.voucher_id,
            accepted: true,
            voided,
        });
        let target = match (&target, t) {
            (Some(target), Some(t)) => {
                rules::check_void(Some(&t), "", &target.voucher_id)
                    .map_err(LedgerError::CannotVoid)?;
                target
            }
            _ => return Err(LedgerError::NoSuchEntry),
        };
        let e = append(
            &tx,
            key,
            NewEntry {
                kind: EntryKind::Void,
                voucher_id: target.voucher_id,
                issuer_kid: &target.issuer_kid,
                provider: match &enrolled {
                    Some(e) => &e.provider,
                    None if who.provider.is_empty() => &target.provider,
                    None => who.provider,
                },
                device: match &enrolled {
                    Some(e) => &e.device_id,
                    None => who.device,
                },
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
        let history = load_history(&self.lock(), &voucher.id)?;
        rules::balance(voucher, &counted(&history))
            .map_err(|e| LedgerError::Db(format!("the voucher's history: {e}")))
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
            "SELECT {COLUMNS} FROM entries e WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2"
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

    /// Record the server's judgement of these entries (acknowledging them, as
    /// [`mark_synced`](Self::mark_synced) does). All or nothing. Returns how many were newly
    /// acknowledged.
    pub fn mark_judged(&self, judged: &[Judged], now: i64) -> Result<usize, LedgerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n = 0;
        {
            let mut exists = tx.prepare_cached("SELECT 1 FROM entries WHERE id = ?1")?;
            let mut ins = tx.prepare_cached(
                "INSERT INTO synced (entry_id, acked_at, server_ref, status, reason) VALUES (?1, ?2, NULL, ?3, ?4) \
                 ON CONFLICT (entry_id) DO UPDATE SET status = excluded.status, reason = excluded.reason",
            )?;
            let mut was = tx.prepare_cached("SELECT 1 FROM synced WHERE entry_id = ?1")?;
            for j in judged {
                if !exists.exists(params![j.id])? {
                    return Err(LedgerError::NoSuchEntry);
                }
                if !was.exists(params![j.id])? {
                    n += 1;
                }
                ins.execute(params![j.id, now, j.status, j.reason])?;
            }
        }
        tx.commit()?;
        Ok(n)
    }

    /// Entries with `seq > after`, in order, at most `limit`, each with the server's judgement
    /// when it has been synced.
    pub fn entries_judged(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(Entry, Option<Judged>)>, LedgerError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {COLUMNS}, s.entry_id, s.status, s.reason FROM entries e \
             LEFT JOIN synced s ON s.entry_id = e.id WHERE e.seq > ?1 ORDER BY e.seq LIMIT ?2"
        ))?;
        let rows = st.query_map(params![after, limit as i64], |r| {
            let e = row_entry(r)?;
            let synced: Option<String> = r.get(16)?;
            let j = synced.map(|id| -> rusqlite::Result<Judged> {
                Ok(Judged {
                    id,
                    status: r
                        .get::<_, Option<String>>(17)?
                        .unwrap_or_else(|| "synced".into()),
                    reason: r.get(18)?,
                })
            });
            Ok((e, j.transpose()?))
        })?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?);
        }
        Ok(out)
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
        let vk = self.public;
        let mut st = conn.prepare(&format!("SELECT {COLUMNS} FROM entries e ORDER BY e.seq"))?;
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

/// The rulebook on one redemption: validity, provider (`aud`), category, cancellation, then
/// what `req` may take given the voucher's history. Returns the amount and items taken and
/// what remains after.
fn judge(
    conn: &Connection,
    voucher: &Voucher,
    provider: &str,
    category: Option<&str>,
    req: &RedeemRequest,
    now: i64,
) -> Result<(Option<u64>, Vec<ItemQty>, Balance), RedeemError> {
    let ctx = Context {
        provider,
        category,
        at: now,
        // A cancellation the phone knows of applies from now on, whatever its time says.
        revoked_at: revoked_at(conn, &voucher.id)?.map(|r| r.min(now)),
    };
    let history = load_history(conn, &voucher.id)?;
    let counted = counted(&history);
    rules::check_context(voucher, &ctx)?;
    let (amount, items) = rules::plan(voucher, &counted, req)?;
    let currency = amount.and(voucher.value.as_ref().map(|x| x.currency.as_str()));
    let remaining = rules::check(
        voucher,
        &counted,
        &Taking {
            amount,
            currency,
            items: &items,
        },
        &ctx,
    )?;
    Ok((amount, items, remaining))
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
        "SELECT {COLUMNS} FROM entries e WHERE e.voucher_id = ?1 ORDER BY e.seq"
    ))?;
    let rows = st.query_map(params![id.0.as_slice()], row_entry)?;
    collect(rows)
}

fn get_entry(conn: &Connection, id: &str) -> Result<Option<Entry>, LedgerError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM entries e WHERE e.id = ?1"))?
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
        "INSERT INTO entries ({PLAIN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
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

/// The redemptions of a history that count against the voucher: not voided. Voided ids are
/// collected once (linear).
fn counted(history: &[Entry]) -> Vec<Counted<'_>> {
    let voided: std::collections::HashSet<&str> = history
        .iter()
        .filter(|v| v.kind == EntryKind::Void)
        .filter_map(|v| v.voids.as_deref())
        .collect();
    history
        .iter()
        .filter(|e| e.kind == EntryKind::Redeem && !voided.contains(e.id.as_str()))
        .map(|e| Counted {
            id: &e.id,
            at: e.at,
            provider: &e.provider,
            device: &e.device,
            amount: e.amount,
            items: &e.items,
        })
        .collect()
}

/// The schema version of a ledger, refusing files that are not ledgers (or newer ones).
fn check_version(conn: &Connection) -> Result<i64, LedgerError> {
    // One statement, so both are read from one snapshot (another process may be creating the
    // ledger between two statements).
    let (version, objects): (i64, i64) = conn.query_row(
        "SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_master)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if version > schema::VERSION {
        return Err(LedgerError::NewerSchema {
            found: version,
            supported: schema::VERSION,
        });
    }
    if version == 0 && objects > 0 {
        return Err(LedgerError::NotALedger);
    }
    Ok(version)
}

/// Move a new device key into place. Another process opening the same new ledger may have
/// done it already: then the key in place must be this one.
fn put_in_place(new: &Path, key_path: &Path) -> Result<(), LedgerError> {
    match std::fs::rename(new, key_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && key_path.exists() => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(dir) = key_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Make the rename durable (best effort: not every platform opens directories).
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// A path for an SQLite `file:` URI (percent-encoding what a URI must not hold).
fn uri_path(path: &Path) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mut out = String::new();
    for b in abs.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
