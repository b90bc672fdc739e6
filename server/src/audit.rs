//! The audit log: every change people make (and every sign-in), who made it, with which role,
//! when, what, on which object, with a short before/after. Written in the same transaction as
//! the change it records, so a change and its record stand or fall together.
//!
//! Append-only: the database refuses `UPDATE` and `DELETE` on it (triggers on SQLite and
//! PostgreSQL, `TRUNCATE` too on PostgreSQL, made by [`crate::db::connect`]). Hash-chained: each
//! record's hash covers the previous record's hash and every field, so an edit, a removal or a
//! reordering done behind the database's back is found by [`verify`] (`evoucher audit verify`).
//! Never in it: beneficiary names, tokens, passwords, codes.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::{now, ApiError};

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// A user id, `admin-token`, `device:<id>`, or `unknown` (a failed sign-in to no account).
    pub id: String,
    /// The role acted with.
    pub role: String,
    /// The account name, for people reading the log (not hashed into the id).
    pub name: String,
}

impl Actor {
    pub fn admin_token() -> Actor {
        Actor {
            id: "admin-token".into(),
            role: "admin-token".into(),
            name: "admin token".into(),
        }
    }
    pub fn user(u: &crate::users::User) -> Actor {
        Actor {
            id: u.id.clone(),
            role: u.role.as_str().into(),
            name: u.name.clone(),
        }
    }
    pub fn device(id: &str) -> Actor {
        Actor {
            id: format!("device:{id}"),
            role: "device".into(),
            name: id.into(),
        }
    }
    /// An operator on the server's machine, with the `evoucher` command and the database.
    pub fn command_line() -> Actor {
        Actor {
            id: "command-line".into(),
            role: "operator".into(),
            name: "evoucher command".into(),
        }
    }
    pub fn unknown() -> Actor {
        Actor {
            id: "unknown".into(),
            role: "-".into(),
            name: "-".into(),
        }
    }
}

impl crate::auth::Principal {
    /// The actor of the audit log.
    pub fn actor(&self) -> Actor {
        match self {
            crate::auth::Principal::AdminToken => Actor::admin_token(),
            crate::auth::Principal::User(u) => Actor::user(u),
        }
    }
}

/// One thing that happened.
#[derive(Debug, Clone)]
pub struct Event {
    /// `sign_in`, `sign_in_failed`, `program.create`, `voucher.cancel`, …
    pub action: &'static str,
    pub object_type: &'static str,
    pub object_id: String,
    /// A short before/after, never beneficiary names, secrets or codes.
    pub detail: serde_json::Value,
}

impl Event {
    pub fn new(
        action: &'static str,
        object_type: &'static str,
        object_id: impl Into<String>,
        detail: serde_json::Value,
    ) -> Event {
        Event {
            action,
            object_type,
            object_id: object_id.into(),
            detail,
        }
    }
}

/// The hash of a record: SHA-256 over a domain string, the previous hash and every field,
/// each length-prefixed (no ambiguity between fields).
#[allow(clippy::too_many_arguments)]
fn hash_of(
    prev: &str,
    seq: i64,
    at: i64,
    actor: &str,
    role: &str,
    action: &str,
    object_type: &str,
    object_id: &str,
    detail: &str,
    client: Option<&str>,
) -> String {
    let mut h = Sha256::new();
    h.update(b"evoucher-audit-v1\0");
    for part in [
        prev,
        &seq.to_string(),
        &at.to_string(),
        actor,
        role,
        action,
        object_type,
        object_id,
        detail,
        client.unwrap_or(""),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Append one record inside the caller's transaction. On PostgreSQL the table is locked
/// against other appends for the rest of the transaction (the chain has one head); on SQLite
/// the caller's write transaction already is.
pub async fn record(
    c: &mut sqlx::AnyConnection,
    postgres: bool,
    actor: &Actor,
    client: Option<std::net::IpAddr>,
    e: Event,
) -> Result<(), ApiError> {
    if postgres {
        sqlx::query("LOCK TABLE audit IN EXCLUSIVE MODE")
            .execute(&mut *c)
            .await?;
    }
    let (last, prev): (i64, String) =
        match sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *c)
            .await?
        {
            Some(r) => (r.try_get("seq")?, r.try_get("hash")?),
            None => (0, GENESIS.into()),
        };
    let seq = last + 1;
    let at = now();
    // The account name goes into the detail (people read it), the id into `actor`.
    let mut detail = e.detail;
    if let Some(o) = detail.as_object_mut() {
        o.insert("by".into(), actor.name.clone().into());
    }
    let detail = detail.to_string();
    let client = client.map(|c| c.to_string());
    let hash = hash_of(
        &prev,
        seq,
        at,
        &actor.id,
        &actor.role,
        e.action,
        e.object_type,
        &e.object_id,
        &detail,
        client.as_deref(),
    );
    sqlx::query("INSERT INTO audit (seq, at, actor, role, action, object_type, object_id, detail, client, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(seq)
        .bind(at)
        .bind(&actor.id)
        .bind(&actor.role)
        .bind(e.action)
        .bind(e.object_type)
        .bind(&e.object_id)
        .bind(&detail)
        .bind(client)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Record what `who` did (from `client`) inside the caller's transaction.
pub async fn by(
    c: &mut sqlx::AnyConnection,
    s: &crate::AppState,
    who: &crate::auth::Principal,
    client: crate::limits::ClientAddr,
    e: Event,
) -> Result<(), ApiError> {
    record(c, s.postgres, &who.actor(), client.0, e).await
}

/// A record as read back.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub detail: serde_json::Value,
    pub client: Option<String>,
    pub hash: String,
}

/// Filters of the log (each optional; all must match).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub object_type: Option<String>,
    #[serde(default)]
    pub object_id: Option<String>,
    /// From this time (seconds since the epoch), inclusive.
    #[serde(default)]
    pub from: Option<i64>,
    /// Up to this time, exclusive.
    #[serde(default)]
    pub to: Option<i64>,
}

/// Records matching `f`, newest first: (total, page).
pub async fn list(
    c: &mut sqlx::AnyConnection,
    f: &Filter,
    offset: i64,
    limit: i64,
) -> Result<(i64, Vec<Record>), ApiError> {
    let text = [&f.actor, &f.action, &f.object_type, &f.object_id];
    let cols = ["actor", "action", "object_type", "object_id"];
    let mut wheres: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("(${} = '' OR {c} = ${})", i + 1, i + 1))
        .collect();
    wheres.push("at >= $5 AND at < $6".into());
    let w = wheres.join(" AND ");
    let bind = |sql: String| {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for v in text {
            q = q.bind(v.clone().unwrap_or_default());
        }
        q.bind(f.from.unwrap_or(i64::MIN))
            .bind(f.to.unwrap_or(i64::MAX))
    };
    let total: i64 = bind(format!("SELECT COUNT(*) AS n FROM audit WHERE {w}"))
        .fetch_one(&mut *c)
        .await?
        .try_get("n")?;
    let rows = bind(format!(
        "SELECT seq, at, actor, role, action, object_type, object_id, detail, client, hash FROM audit WHERE {w} ORDER BY seq DESC LIMIT {limit} OFFSET {offset}"
    ))
    .fetch_all(&mut *c)
    .await?;
    let list = rows
        .iter()
        .map(|r| {
            Ok(Record {
                seq: r.try_get("seq")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                role: r.try_get("role")?,
                action: r.try_get("action")?,
                object_type: r.try_get("object_type")?,
                object_id: r.try_get("object_id")?,
                detail: serde_json::from_str(&r.try_get::<String, _>("detail")?)
                    .unwrap_or_default(),
                client: r.try_get("client")?,
                hash: r.try_get("hash")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok((total, list))
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("the audit log is broken at record {seq}: {problem}")]
pub struct Break {
    pub seq: i64,
    pub problem: &'static str,
}

/// A verified log: how many records and the head hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub records: i64,
    pub head: String,
}

/// Check the whole chain: numbers contiguous from 1, each record linked to the one before, each
/// hash the hash of its fields.
pub async fn verify(c: &mut sqlx::AnyConnection) -> Result<Result<Verified, Break>, ApiError> {
    let mut expected = 1i64;
    let mut prev = GENESIS.to_owned();
    loop {
        let rows = sqlx::query("SELECT seq, at, actor, role, action, object_type, object_id, detail, client, prev_hash, hash FROM audit WHERE seq >= $1 ORDER BY seq LIMIT 5000")
            .bind(expected)
            .fetch_all(&mut *c)
            .await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let seq: i64 = r.try_get("seq")?;
            let fail = |problem| Ok(Err(Break { seq, problem }));
            if seq != expected {
                return fail("a record is missing (numbers are not contiguous)");
            }
            if r.try_get::<String, _>("prev_hash")? != prev {
                return fail("the link to the previous record is broken");
            }
            let client: Option<String> = r.try_get("client")?;
            let h = hash_of(
                &prev,
                seq,
                r.try_get("at")?,
                &r.try_get::<String, _>("actor")?,
                &r.try_get::<String, _>("role")?,
                &r.try_get::<String, _>("action")?,
                &r.try_get::<String, _>("object_type")?,
                &r.try_get::<String, _>("object_id")?,
                &r.try_get::<String, _>("detail")?,
                client.as_deref(),
            );
            if h != r.try_get::<String, _>("hash")? {
                return fail("the record was changed after it was written");
            }
            prev = h;
            expected += 1;
        }
    }
    // Anything numbered beyond a gap?
    if sqlx::query("SELECT 1 FROM audit WHERE seq >= $1 LIMIT 1")
        .bind(expected)
        .fetch_optional(&mut *c)
        .await?
        .is_some()
    {
        return Ok(Err(Break {
            seq: expected,
            problem: "a record is missing (numbers are not contiguous)",
        }));
    }
    Ok(Ok(Verified {
        records: expected - 1,
        head: prev,
    }))
}

/// Triggers that make the log append-only, per database (created after the migrations,
/// idempotently: several server processes may start at once).
pub const SQLITE_TRIGGERS: [&str; 2] = [
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
];
pub const POSTGRES_TRIGGERS: [&str; 3] = [
    "CREATE OR REPLACE FUNCTION evoucher_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
    "CREATE OR REPLACE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION evoucher_audit_append_only()",
    "CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION evoucher_audit_append_only()",
];

/// Append a record in a transaction of its own (for operators' commands).
pub async fn record_alone(
    db: &sqlx::AnyPool,
    postgres: bool,
    actor: &Actor,
    e: Event,
) -> Result<(), ApiError> {
    let mut tx = if postgres {
        db.begin().await?
    } else {
        db.begin_with("BEGIN IMMEDIATE").await?
    };
    record(&mut tx, postgres, actor, None, e).await?;
    tx.commit().await?;
    Ok(())
}
