//! The people of a program: accounts with a role, their passwords (Argon2id), their browser
//! sessions and their API tokens.
//!
//! - Passwords are hashed with Argon2id, m = 19 MiB, t = 2, p = 1 (OWASP's recommended
//!   minimum), a random 16-byte salt each, stored as a PHC string. A password is never logged
//!   or stored otherwise. An unknown account costs the same verification as a known one.
//! - A session id is 32 random bytes, given to the browser once in a cookie and stored as its
//!   SHA-256. It ends after 30 minutes without use or 12 hours after sign-in, whichever comes
//!   first, or at sign-out (on the server). Each session has its own CSRF token.
//! - An API token (`evt_…`) carries its user's role for scripts; shown once, stored as its
//!   SHA-256, revocable.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Serialize;
use sqlx::Row;

use crate::secret::{hash_secret, random_token};
use crate::{now, ApiError};

/// What a person may do (see docs/server.md, "People and roles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Accounts and settings; reads everything but beneficiary data.
    Admin,
    /// Programs, beneficiaries, issuance, letters, cancellations, providers, enrolment codes,
    /// devices (of the programs they are limited to, if any).
    ProgramManager,
    /// Reimbursement reviews (first stage by default).
    Accountant,
    /// Reimbursement reviews (second stage by default) and payment.
    CashManager,
    /// Reads everything, changes nothing.
    Auditor,
    /// A service provider's login: its own devices and redemptions (and, later, claims).
    Provider,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::ProgramManager,
        Role::Accountant,
        Role::CashManager,
        Role::Auditor,
        Role::Provider,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ProgramManager => "program_manager",
            Role::Accountant => "accountant",
            Role::CashManager => "cash_manager",
            Role::Auditor => "auditor",
            Role::Provider => "provider",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Roles that may be limited to some programs.
    pub fn is_program_role(self) -> bool {
        matches!(
            self,
            Role::ProgramManager | Role::Accountant | Role::CashManager
        )
    }
}

/// An account.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// The provider a `provider` account is bound to.
    pub provider_id: Option<String>,
    /// The programs a program role is limited to (empty: all programs).
    pub programs: Vec<String>,
    /// The password is a one-time password that must be changed first.
    pub must_change: bool,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    /// Signs in through the identity provider (OpenID Connect), without a password.
    pub external: bool,
}

impl User {
    /// Whether this user may see program `id` (program roles limited to some programs).
    pub fn sees_program(&self, id: &str) -> bool {
        !self.role.is_program_role()
            || self.programs.is_empty()
            || self.programs.iter().any(|p| p == id)
    }
}

/// A session ends after this long without use.
pub const SESSION_IDLE: i64 = 30 * 60;
/// A session ends this long after sign-in, used or not.
pub const SESSION_MAX: i64 = 12 * 3600;
/// Names: 1 to 64 letters, digits, `.`, `-`, `_`, `@`.
pub const MAX_NAME: usize = 64;
/// Passwords: at least this many characters.
pub const MIN_PASSWORD: usize = 12;

fn argon2() -> Argon2<'static> {
    // OWASP's Argon2id minimum: 19 MiB, 2 passes, 1 lane. These are also the crate's defaults;
    // written out so that a change of defaults cannot weaken them silently.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hash a password (Argon2id, random salt) to a PHC string.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    argon2()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| ApiError::Internal("password hashing failed".into()))
}

/// A fixed hash verified against when an account does not exist, so that an unknown name
/// takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a password of anyone").unwrap_or_default())
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(hash: Option<&str>, password: &str) -> bool {
    let h = hash.unwrap_or_else(|| dummy_hash());
    let ok = PasswordHash::new(h)
        .map(|p| argon2().verify_password(password.as_bytes(), &p).is_ok())
        .unwrap_or(false);
    ok && hash.is_some()
}

/// Check a new password: long enough, not the account name.
pub fn check_new_password(name: &str, password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(ApiError::BadRequest(format!(
            "a password has at least {MIN_PASSWORD} characters"
        )));
    }
    if password.eq_ignore_ascii_case(name) {
        return Err(ApiError::BadRequest(
            "the password must not be the account name".into(),
        ));
    }
    Ok(())
}

/// A one-time password: 16 characters from an alphabet without look-alikes.
pub fn one_time_password() -> Result<String, ApiError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|_| ApiError::Internal("no randomness".into()))?;
    Ok(b.iter()
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect())
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "account name: 1 to 64 letters, digits, '.', '-', '_' or '@'".into(),
        ))
    }
}

const USER_COLUMNS: &str =
    "SELECT id, name, role, provider_id, must_change, created_at, disabled_at, oidc_subject FROM users";

async fn user_from(c: &mut sqlx::AnyConnection, r: &sqlx::any::AnyRow) -> Result<User, ApiError> {
    let id: String = r.try_get("id")?;
    let role: String = r.try_get("role")?;
    let programs =
        sqlx::query("SELECT program_id FROM user_programs WHERE user_id = $1 ORDER BY program_id")
            .bind(&id)
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|p| p.try_get::<String, _>("program_id"))
            .collect::<Result<Vec<_>, _>>()?;
    Ok(User {
        id,
        name: r.try_get("name")?,
        role: Role::parse(&role).ok_or_else(|| ApiError::Internal("stored role".into()))?,
        provider_id: r.try_get("provider_id")?,
        programs,
        must_change: r.try_get::<i64, _>("must_change")? != 0,
        created_at: r.try_get("created_at")?,
        disabled_at: r.try_get("disabled_at")?,
        external: r.try_get::<Option<String>, _>("oidc_subject")?.is_some(),
    })
}

/// One account by id or by name.
pub async fn find(c: &mut sqlx::AnyConnection, id_or_name: &str) -> Result<Option<User>, ApiError> {
    let Some(r) = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{USER_COLUMNS} WHERE id = $1 OR name = $1"
    )))
    .bind(id_or_name)
    .fetch_optional(&mut *c)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(user_from(c, &r).await?))
}

/// Every account, by name.
pub async fn list(c: &mut sqlx::AnyConnection) -> Result<Vec<User>, ApiError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{USER_COLUMNS} ORDER BY name")))
        .fetch_all(&mut *c)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(user_from(c, r).await?);
    }
    Ok(out)
}

/// Whether any account exists.
pub async fn any(c: &mut sqlx::AnyConnection) -> Result<bool, ApiError> {
    Ok(sqlx::query("SELECT 1 FROM users LIMIT 1")
        .fetch_optional(&mut *c)
        .await?
        .is_some())
}

/// What a new account is.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct NewUser {
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub programs: Vec<String>,
    #[serde(default)]
    pub provider: Option<String>,
}

/// Add an account inside the caller's transaction, with a one-time password it must change.
/// Returns the account and the password (shown once).
pub async fn add(c: &mut sqlx::AnyConnection, n: &NewUser) -> Result<(User, String), ApiError> {
    check_name(&n.name)?;
    let role = Role::parse(&n.role).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "role: one of {}",
            Role::ALL.map(Role::as_str).join(", ")
        ))
    })?;
    if !n.programs.is_empty() && !role.is_program_role() {
        return Err(ApiError::BadRequest(
            "only program_manager, accountant and cash_manager accounts are limited to programs"
                .into(),
        ));
    }
    match (role, &n.provider) {
        (Role::Provider, None) => {
            return Err(ApiError::BadRequest(
                "a provider account names its provider".into(),
            ))
        }
        (Role::Provider, Some(p))
            if sqlx::query("SELECT 1 FROM providers WHERE id = $1")
                .bind(p)
                .fetch_optional(&mut *c)
                .await?
                .is_none() =>
        {
            return Err(ApiError::BadRequest(format!("no provider {p}")));
        }
        (Role::Provider, Some(_)) => {}
        (_, Some(_)) => {
            return Err(ApiError::BadRequest(
                "only a provider account names a provider".into(),
            ))
        }
        _ => {}
    }
    for p in &n.programs {
        if sqlx::query("SELECT 1 FROM programs WHERE id = $1")
            .bind(p)
            .fetch_optional(&mut *c)
            .await?
            .is_none()
        {
            return Err(ApiError::BadRequest(format!("no program {p}")));
        }
    }
    let id = uuid_v4()?;
    let password = one_time_password()?;
    let t = now();
    let n_ins = sqlx::query("INSERT INTO users (id, name, role, provider_id, password_hash, must_change, created_at, disabled_at) VALUES ($1, $2, $3, $4, $5, 1, $6, NULL) ON CONFLICT (name) DO NOTHING")
        .bind(&id)
        .bind(&n.name)
        .bind(role.as_str())
        .bind(n.provider.clone())
        .bind(hash_password(&password)?)
        .bind(t)
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n_ins == 0 {
        return Err(ApiError::Conflict(format!("account {} exists", n.name)));
    }
    for p in &n.programs {
        sqlx::query("INSERT INTO user_programs (user_id, program_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&id)
            .bind(p)
            .execute(&mut *c)
            .await?;
    }
    let user = find(c, &id)
        .await?
        .ok_or_else(|| ApiError::Internal("account just made is missing".into()))?;
    Ok((user, password))
}

/// Add an account for a person an identity provider vouched for (`subject`: its issuer and
/// the person's `sub`): no password, the role the provider gives.
pub async fn add_external(
    c: &mut sqlx::AnyConnection,
    name: &str,
    role: Role,
    programs: &[String],
    subject: &str,
) -> Result<User, ApiError> {
    check_name(name)?;
    let id = uuid_v4()?;
    let n = sqlx::query("INSERT INTO users (id, name, role, provider_id, password_hash, must_change, created_at, disabled_at, oidc_subject) VALUES ($1, $2, $3, NULL, NULL, 0, $4, NULL, $5) ON CONFLICT DO NOTHING")
        .bind(&id)
        .bind(name)
        .bind(role.as_str())
        .bind(now())
        .bind(subject)
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(ApiError::Conflict(format!("account {name} exists")));
    }
    set_role(c, &id, role, programs).await?;
    find(c, &id)
        .await?
        .ok_or_else(|| ApiError::Internal("account just made is missing".into()))
}

/// Set an account's role and the programs it is limited to.
pub async fn set_role(
    c: &mut sqlx::AnyConnection,
    id: &str,
    role: Role,
    programs: &[String],
) -> Result<(), ApiError> {
    sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
        .bind(role.as_str())
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM user_programs WHERE user_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    if role.is_program_role() {
        for p in programs {
            sqlx::query("INSERT INTO user_programs (user_id, program_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(p)
                .execute(&mut *c)
                .await?;
        }
    }
    Ok(())
}

/// Disable an account: it can no longer sign in, its sessions end and its tokens stop.
pub async fn disable(c: &mut sqlx::AnyConnection, id: &str) -> Result<(), ApiError> {
    let t = now();
    sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
        .bind(t)
        .bind(id)
        .execute(&mut *c)
        .await?;
    end_sessions(c, id).await
}

/// A new one-time password for an account (which must change it); its sessions end.
pub async fn reset(c: &mut sqlx::AnyConnection, id: &str) -> Result<String, ApiError> {
    if find(c, id).await?.is_some_and(|u| u.external) {
        return Err(ApiError::BadRequest(
            "this account signs in through the identity provider: it has no password".into(),
        ));
    }
    let password = one_time_password()?;
    sqlx::query("UPDATE users SET password_hash = $1, must_change = 1 WHERE id = $2")
        .bind(hash_password(&password)?)
        .bind(id)
        .execute(&mut *c)
        .await?;
    end_sessions(c, id).await?;
    Ok(password)
}

/// Set a user's own new password (after checking it); other sessions of the user end.
pub async fn set_password(
    c: &mut sqlx::AnyConnection,
    user: &User,
    password: &str,
    keep_session: Option<&str>,
) -> Result<(), ApiError> {
    if user.external {
        return Err(ApiError::BadRequest(
            "this account signs in through the identity provider: it has no password".into(),
        ));
    }
    check_new_password(&user.name, password)?;
    sqlx::query("UPDATE users SET password_hash = $1, must_change = 0 WHERE id = $2")
        .bind(hash_password(password)?)
        .bind(&user.id)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL AND id_hash <> $3",
    )
    .bind(now())
    .bind(&user.id)
    .bind(keep_session.map(hash_secret).unwrap_or_default())
    .execute(&mut *c)
    .await?;
    Ok(())
}

async fn end_sessions(c: &mut sqlx::AnyConnection, user_id: &str) -> Result<(), ApiError> {
    sqlx::query("UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL")
        .bind(now())
        .bind(user_id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// The account behind a name and password, if they match and it is not disabled. Costs one
/// Argon2id verification whether or not the account exists.
pub async fn check_password(
    c: &mut sqlx::AnyConnection,
    name: &str,
    password: &str,
) -> Result<Option<User>, ApiError> {
    let row = sqlx::query("SELECT id, password_hash, disabled_at FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *c)
        .await?;
    let hash: Option<String> = match &row {
        Some(r) => r.try_get("password_hash")?,
        None => None,
    };
    let hash2 = hash.clone();
    let pw = password.to_owned();
    // Argon2id takes tens of milliseconds of CPU: off the async runtime.
    let ok = tokio::task::spawn_blocking(move || verify_password(hash2.as_deref(), &pw))
        .await
        .map_err(|_| ApiError::Internal("password check failed".into()))?;
    let Some(r) = row else { return Ok(None) };
    if !ok || r.try_get::<Option<i64>, _>("disabled_at")?.is_some() {
        return Ok(None);
    }
    let id: String = r.try_get("id")?;
    find(c, &id).await
}

/// Start a session for a user: a new id (never one the browser brought: no fixation) and its
/// CSRF token. Returns (cookie value, csrf token).
pub async fn start_session(
    c: &mut sqlx::AnyConnection,
    user_id: &str,
) -> Result<(String, String), ApiError> {
    let sid = random_token(32)?;
    let csrf = random_token(32)?;
    let t = now();
    sqlx::query("INSERT INTO sessions (id_hash, user_id, csrf, created_at, last_seen_at, ended_at) VALUES ($1, $2, $3, $4, $4, NULL)")
        .bind(hash_secret(&sid))
        .bind(user_id)
        .bind(&csrf)
        .bind(t)
        .execute(&mut *c)
        .await?;
    Ok((sid, csrf))
}

/// The user and CSRF token of a live session (and the session's use is recorded), if the
/// session exists, has not ended, is within its idle and absolute limits, and the user is not
/// disabled.
pub async fn session(
    c: &mut sqlx::AnyConnection,
    sid: &str,
) -> Result<Option<(User, String)>, ApiError> {
    let t = now();
    let Some(r) = sqlx::query(
        "SELECT s.user_id, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id_hash = $1 AND s.ended_at IS NULL AND s.last_seen_at > $2 AND s.created_at > $3 \
         AND u.disabled_at IS NULL",
    )
    .bind(hash_secret(sid))
    .bind(t - SESSION_IDLE)
    .bind(t - SESSION_MAX)
    .fetch_optional(&mut *c)
    .await?
    else {
        return Ok(None);
    };
    let user_id: String = r.try_get("user_id")?;
    let csrf: String = r.try_get("csrf")?;
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
        .bind(t)
        .bind(hash_secret(sid))
        .execute(&mut *c)
        .await?;
    Ok(find(c, &user_id).await?.map(|u| (u, csrf)))
}

/// End a session on the server (sign-out).
pub async fn end_session(c: &mut sqlx::AnyConnection, sid: &str) -> Result<(), ApiError> {
    sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id_hash = $2 AND ended_at IS NULL")
        .bind(now())
        .bind(hash_secret(sid))
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// An API token for a user: shown once. Returns (token id, token).
pub async fn new_token(
    c: &mut sqlx::AnyConnection,
    user_id: &str,
    name: &str,
) -> Result<(String, String), ApiError> {
    if name.trim().is_empty() || name.len() > 64 {
        return Err(ApiError::BadRequest(
            "token name: 1 to 64 characters".into(),
        ));
    }
    let id = uuid_v4()?;
    let token = format!("evt_{}", random_token(32)?);
    sqlx::query("INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, last_used_at, revoked_at) VALUES ($1, $2, $3, $4, $5, NULL, NULL)")
        .bind(&id)
        .bind(user_id)
        .bind(name.trim())
        .bind(hash_secret(&token))
        .bind(now())
        .execute(&mut *c)
        .await?;
    Ok((id, token))
}

/// The user behind an API token (not revoked, user not disabled).
pub async fn token_user(
    c: &mut sqlx::AnyConnection,
    token: &str,
) -> Result<Option<User>, ApiError> {
    if !token.starts_with("evt_") {
        return Ok(None);
    }
    let Some(r) = sqlx::query(
        "SELECT t.user_id FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
    )
    .bind(hash_secret(token))
    .fetch_optional(&mut *c)
    .await?
    else {
        return Ok(None);
    };
    let user_id: String = r.try_get("user_id")?;
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2")
        .bind(now())
        .bind(hash_secret(token))
        .execute(&mut *c)
        .await?;
    find(c, &user_id).await
}

/// A user's API tokens (never the tokens themselves).
pub async fn tokens(
    c: &mut sqlx::AnyConnection,
    user_id: &str,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let rows = sqlx::query("SELECT id, name, created_at, last_used_at, revoked_at FROM api_tokens WHERE user_id = $1 ORDER BY created_at, id")
        .bind(user_id)
        .fetch_all(&mut *c)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(serde_json::json!({
                "id": r.try_get::<String, _>("id")?,
                "name": r.try_get::<String, _>("name")?,
                "created_at": r.try_get::<i64, _>("created_at")?,
                "last_used_at": r.try_get::<Option<i64>, _>("last_used_at")?,
                "revoked_at": r.try_get::<Option<i64>, _>("revoked_at")?,
            }))
        })
        .collect()
}

/// Revoke one of a user's API tokens. Whether there was such a token.
pub async fn revoke_token(
    c: &mut sqlx::AnyConnection,
    user_id: &str,
    token_id: &str,
) -> Result<bool, ApiError> {
    let n = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL")
        .bind(now())
        .bind(token_id)
        .bind(user_id)
        .execute(&mut *c)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// A random (version 4) UUID.
pub fn uuid_v4() -> Result<String, ApiError> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|_| ApiError::Internal("no randomness".into()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}
