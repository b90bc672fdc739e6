//! The program server: programs with their issuer keys (sealed at rest, rotated), beneficiaries
//! from CSV, voucher issuance, printable letters (PDF) and QR PNGs, the trust list (JWKS with
//! ETag), cancellation and the revocation feed, providers and device enrolment, redemption sync
//! with conflict detection, health and the OpenAPI document. Reimbursement claims come later.
//!
//! Shape (after the axum examples): thin `main` in the CLI (`evoucher serve`), a `router()` per
//! module, one [`AppState`], one [`ApiError`] that becomes problem+json without internals.

pub mod audit;
pub mod auth;
pub mod db;
pub mod error;
pub mod fonts;
pub mod limits;
pub mod oidc;
pub mod payable_pdf;
pub mod pdf;
pub mod routes;
pub mod seal;
pub mod secret;
pub mod serve;
pub mod users;
pub mod web;

use std::sync::Arc;

use axum::Router;

pub use error::ApiError;

/// Server configuration.
#[derive(Clone)]
pub struct Config {
    /// `sqlite://FILE` (default) or `postgres://…`.
    pub database: String,
    /// Bearer token for admin endpoints.
    pub admin_token: String,
    /// 32-byte key that seals issuer private keys at rest.
    pub master_key: [u8; 32],
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database", &self.database)
            .field("admin_token", &"<redacted>")
            .field("master_key", &"<redacted>")
            .finish()
    }
}

/// The one state every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub db: sqlx::AnyPool,
    pub admin_token: Arc<String>,
    pub sealer: Arc<seal::Sealer>,
    /// The database is PostgreSQL (several connections: pushes take a table lock).
    pub postgres: bool,
    /// Fonts for letter text beyond Windows-1252 (none: such text prints as `?`).
    pub letter_fonts: fonts::LetterFonts,
    /// How long an enrolment code stays usable, in seconds.
    pub enrolment_ttl: i64,
    /// Failed enrolments per client address (this process's count).
    pub enrol_failures: Arc<limits::FailureLimiter>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (none by default).
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
    /// Failed sign-ins per account name and per client address (this process's counts).
    pub signin_by_account: Arc<limits::FailureLimiter<String>>,
    pub signin_by_client: Arc<limits::FailureLimiter>,
    /// Session cookies are marked `Secure` (the server is reached over TLS).
    pub secure_cookies: bool,
    /// The address browsers use (`with_public_url`), when it is not the one they connect to.
    pub public_url: Option<Arc<str>>,
    /// Signing in through an identity provider, when configured.
    pub oidc: Option<Arc<oidc::Oidc>>,
}

/// Failed sign-ins allowed per account in [`SIGNIN_WINDOW`].
pub const MAX_SIGNIN_FAILURES_PER_ACCOUNT: u32 = 5;
/// Failed sign-ins allowed per client address in [`SIGNIN_WINDOW`].
pub const MAX_SIGNIN_FAILURES_PER_CLIENT: u32 = 20;
/// The window of the sign-in limits.
pub const SIGNIN_WINDOW: std::time::Duration = std::time::Duration::from_secs(900);

/// Enrolment codes expire after 7 days unless configured otherwise.
pub const DEFAULT_ENROLMENT_TTL: i64 = 7 * 86_400;
/// Failed enrolment attempts allowed per client address in [`ENROL_FAILURE_WINDOW`].
pub const MAX_ENROL_FAILURES: u32 = 10;
/// The window of [`MAX_ENROL_FAILURES`].
pub const ENROL_FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

impl AppState {
    /// Connect, migrate, and build the state.
    pub async fn new(cfg: &Config) -> Result<Self, ApiError> {
        let db = db::connect(&cfg.database).await?;
        Ok(AppState {
            db,
            admin_token: Arc::new(cfg.admin_token.clone()),
            sealer: Arc::new(seal::Sealer::new(cfg.master_key)),
            postgres: cfg.database.starts_with("postgres"),
            letter_fonts: fonts::LetterFonts::default(),
            enrolment_ttl: DEFAULT_ENROLMENT_TTL,
            enrol_failures: Arc::new(limits::FailureLimiter::new(
                MAX_ENROL_FAILURES,
                ENROL_FAILURE_WINDOW,
            )),
            trusted_proxies: Arc::new(Vec::new()),
            signin_by_account: Arc::new(limits::FailureLimiter::new(
                MAX_SIGNIN_FAILURES_PER_ACCOUNT,
                SIGNIN_WINDOW,
            )),
            signin_by_client: Arc::new(limits::FailureLimiter::new(
                MAX_SIGNIN_FAILURES_PER_CLIENT,
                SIGNIN_WINDOW,
            )),
            secure_cookies: false,
            public_url: None,
            oidc: None,
        })
    }

    /// A transaction that will write. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so several server processes on one database file wait for each other
    /// instead of failing when two transactions that read first both try to write; on
    /// PostgreSQL it is a plain transaction (rows and tables are locked where needed).
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, ApiError> {
        Ok(if self.postgres {
            self.db.begin().await?
        } else {
            self.db.begin_with("BEGIN IMMEDIATE").await?
        })
    }

    /// The same state, allowing `max` failed enrolments per client address in
    /// [`ENROL_FAILURE_WINDOW`].
    pub fn with_max_enrol_failures(self, max: u32) -> Self {
        AppState {
            enrol_failures: Arc::new(limits::FailureLimiter::new(max, ENROL_FAILURE_WINDOW)),
            ..self
        }
    }

    /// The same state, taking the client's address from `X-Forwarded-For` when a request comes
    /// from one of these reverse proxies.
    pub fn with_trusted_proxies(self, proxies: Vec<std::net::IpAddr>) -> Self {
        AppState {
            trusted_proxies: Arc::new(proxies),
            ..self
        }
    }

    /// The same state served at `url` (`--public-url`, e.g. `https://vouchers.example.org`
    /// behind a reverse proxy): browsers' `Origin` must be that address, enrolment QR codes
    /// carry it, and over `https` session cookies are `Secure`. Only a scheme (`http` or
    /// `https`) and a host (with an optional port) are accepted.
    pub fn with_public_url(self, url: Option<&str>) -> Result<Self, String> {
        let Some(url) = url else { return Ok(self) };
        let url = public_origin(url)?;
        Ok(AppState {
            secure_cookies: url.starts_with("https:"),
            public_url: Some(Arc::from(url)),
            ..self
        })
    }

    /// The same state with sign-in through an identity provider (OpenID Connect).
    pub fn with_oidc(self, config: Option<oidc::OidcConfig>) -> Result<Self, String> {
        let oidc = config.map(oidc::Oidc::new).transpose()?;
        Ok(AppState { oidc, ..self })
    }

    /// The same state, marking session cookies `Secure` (served over TLS).
    pub fn with_secure_cookies(self, secure: bool) -> Self {
        AppState {
            secure_cookies: secure,
            ..self
        }
    }

    /// The same state, with enrolment codes valid for `secs` seconds.
    pub fn with_enrolment_ttl(self, secs: i64) -> Self {
        AppState {
            enrolment_ttl: secs,
            ..self
        }
    }

    /// The same state, printing letters with these fonts.
    pub fn with_letter_fonts(self, letter_fonts: fonts::LetterFonts) -> Self {
        AppState {
            letter_fonts,
            ..self
        }
    }
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(routes::health::router())
        .merge(routes::trust::router())
        .merge(routes::programs::router())
        .merge(routes::revocations::router())
        .merge(routes::devices::router())
        .merge(routes::sync::router())
        .merge(routes::beneficiaries::router())
        .merge(routes::documents::router())
        .merge(routes::vouchers::router())
        .merge(routes::redemptions::router())
        .merge(routes::people::router())
        .merge(routes::claims::router())
        .merge(routes::payables::router())
        .merge(routes::payments::router())
        .merge(web::router())
        .fallback(routes::health::no_such_endpoint)
        .method_not_allowed_fallback(routes::health::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(routes::MAX_JSON))
        // Middleware that decides who is calling reads the state from here.
        .layer(axum::Extension(state.clone()))
        .with_state(state)
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A public URL as the origin browsers will send (`https://host[:port]`, no trailing slash), or
/// why it is not one.
pub fn public_origin(url: &str) -> Result<String, String> {
    let url = url.strip_suffix('/').unwrap_or(url);
    let (scheme, authority) = url
        .split_once("://")
        .ok_or_else(|| format!("the public URL {url:?} needs http:// or https://"))?;
    if !matches!(scheme, "http" | "https") {
        return Err(format!("the public URL {url:?} needs http:// or https://"));
    }
    if authority.is_empty()
        || !authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
    {
        return Err(format!(
            "the public URL {url:?} must be a scheme and a host only (no path, user or query)"
        ));
    }
    Ok(url.to_ascii_lowercase())
}
