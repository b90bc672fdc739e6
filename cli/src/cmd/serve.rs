use std::path::{Path, PathBuf};

use evoucher_server::{app, AppState, Config};

use crate::util::{io_err, usage, CliError, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free one; the bound address is printed).
    #[arg(long, env = "EVOUCHER_LISTEN")]
    listen: Option<String>,
    /// `sqlite://FILE` (default `sqlite://evoucher-server.db`) or `postgres://…`.
    #[arg(long, env = "EVOUCHER_DATABASE")]
    database: Option<String>,
    /// Admin bearer token (default: read from, or made into, `evoucher-admin.token`, mode
    /// 0600). Prefer the file or EVOUCHER_ADMIN_TOKEN: a token on the command line is visible
    /// to every user of the machine in the process list.
    #[arg(long, env = "EVOUCHER_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// File holding the 64-hex-digit master key that seals issuer keys at rest (default:
    /// `evoucher-master.key`, made with mode 0600 if missing). EVOUCHER_MASTER_KEY overrides.
    #[arg(long)]
    master_key_file: Option<PathBuf>,
    /// Seconds that requests in flight get to finish after SIGTERM or Ctrl-C (default 30);
    /// then the server stops anyway. A push cut off this way is rolled back whole and resent.
    #[arg(long, env = "EVOUCHER_SHUTDOWN_GRACE", value_name = "SECS")]
    shutdown_grace: Option<u64>,
    /// TrueType font for letter text Windows-1252 cannot show (Cyrillic, Arabic, Amharic, …);
    /// repeat it for fallbacks, tried in order (`FILE#N` for face N of a collection).
    /// Without one such text prints as `?` (the QR code always carries it exactly).
    #[arg(
        long = "letter-font",
        value_name = "FILE",
        env = "EVOUCHER_LETTER_FONTS",
        value_delimiter = ','
    )]
    letter_fonts: Vec<PathBuf>,
    /// Seconds a client has to send a request's head (default 10).
    #[arg(long, env = "EVOUCHER_HEADER_TIMEOUT", value_name = "SECS")]
    header_timeout: Option<u64>,
    /// Seconds a client has to send a request's whole body; a slower upload is cut with 408
    /// (default 60).
    #[arg(long, env = "EVOUCHER_BODY_TIMEOUT", value_name = "SECS")]
    body_timeout: Option<u64>,
    /// Seconds after which a connection with no request in flight and no bytes moving is
    /// closed (default 60).
    #[arg(long, env = "EVOUCHER_IDLE_TIMEOUT", value_name = "SECS")]
    idle_timeout: Option<u64>,
    /// Most connections open at once; more wait in the kernel's backlog (default 4096).
    #[arg(long, env = "EVOUCHER_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// Failed enrolment attempts allowed per client address in 10 minutes; past them the
    /// address gets 429 until the 10 minutes are over (default 10).
    #[arg(long, env = "EVOUCHER_MAX_FAILED_ENROLMENTS", value_name = "N")]
    max_failed_enrolments: Option<u32>,
    /// A reverse proxy in front of the server (repeatable): for requests from it, the client's
    /// address is the last one in `X-Forwarded-For` (the enrolment limiter counts per client).
    #[arg(
        long = "trusted-proxy",
        value_name = "IP",
        env = "EVOUCHER_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// Days an enrolment code stays usable (default 7).
    #[arg(long, env = "EVOUCHER_ENROLMENT_CODE_DAYS", value_name = "DAYS")]
    enrolment_code_days: Option<u32>,
    /// The address people's browsers use, when a reverse proxy stands in front (e.g.
    /// `https://vouchers.example.org`): the back office accepts forms only from it, enrolment
    /// QR codes carry it, and with https session cookies are marked Secure.
    #[arg(long, env = "EVOUCHER_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Sign-in through an identity provider (OpenID Connect, e.g. Keycloak): its issuer URL
    /// (https; http only on loopback). Needs --oidc-client-id and the client secret.
    #[arg(long, env = "EVOUCHER_OIDC_ISSUER", value_name = "URL")]
    oidc_issuer: Option<String>,
    /// This server's client id at the identity provider.
    #[arg(long, env = "EVOUCHER_OIDC_CLIENT_ID", value_name = "ID")]
    oidc_client_id: Option<String>,
    /// File holding the client secret (EVOUCHER_OIDC_CLIENT_SECRET gives it directly).
    #[arg(long, value_name = "FILE")]
    oidc_client_secret_file: Option<PathBuf>,
    /// Where the person's roles are in the ID token: a claim name or a dotted path such as
    /// `realm_access.roles` (default `roles`).
    #[arg(long, env = "EVOUCHER_OIDC_ROLE_CLAIM", value_name = "PATH")]
    oidc_role_claim: Option<String>,
    /// Map a value of the role claim to an evoucher role, e.g.
    /// `voucher-managers=program_manager` (repeatable). Without any, the claim's values are
    /// evoucher role names. Exactly one role must map for a person to sign in.
    #[arg(
        long = "oidc-role",
        value_name = "VALUE=ROLE",
        env = "EVOUCHER_OIDC_ROLES",
        value_delimiter = ','
    )]
    oidc_roles: Vec<String>,
    /// Where the programs a program role is limited to are in the ID token (none: all).
    #[arg(long, env = "EVOUCHER_OIDC_PROGRAMS_CLAIM", value_name = "PATH")]
    oidc_programs_claim: Option<String>,
    /// The text of the sign-in button (default "single sign-on").
    #[arg(long, env = "EVOUCHER_OIDC_LABEL", value_name = "TEXT")]
    oidc_label: Option<String>,
    /// TOML file with any of: listen, database, admin_token_file, master_key_file,
    /// shutdown_grace, letter_fonts (a list of files), header_timeout, body_timeout,
    /// idle_timeout, max_connections, enrolment_code_days, max_failed_enrolments,
    /// trusted_proxies (a list of addresses), public_url, and an [oidc] table (issuer,
    /// client_id, client_secret_file, role_claim, roles = { "claim value" = "role" },
    /// programs_claim, label).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    database: Option<String>,
    admin_token_file: Option<PathBuf>,
    master_key_file: Option<PathBuf>,
    shutdown_grace: Option<u64>,
    #[serde(default)]
    letter_fonts: Vec<PathBuf>,
    header_timeout: Option<u64>,
    body_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    max_connections: Option<usize>,
    enrolment_code_days: Option<u32>,
    max_failed_enrolments: Option<u32>,
    #[serde(default)]
    trusted_proxies: Vec<std::net::IpAddr>,
    public_url: Option<String>,
    oidc: Option<FileOidc>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileOidc {
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<PathBuf>,
    role_claim: Option<String>,
    #[serde(default)]
    roles: std::collections::BTreeMap<String, String>,
    programs_claim: Option<String>,
    label: Option<String>,
}

/// Read a secret file, or make one with `make` (mode 0600, never overwritten).
fn secret_file(
    path: &Path,
    make: impl FnOnce() -> Result<String, CliError>,
) -> Result<String, CliError> {
    if path.exists() {
        return Ok(std::fs::read_to_string(path)
            .map_err(io_err(format!("reading {}", path.display())))?
            .trim()
            .to_owned());
    }
    let value = make()?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts
        .open(path)
        .map_err(io_err(format!("creating {}", path.display())))?;
    f.write_all(value.as_bytes())
        .map_err(io_err("writing secret"))?;
    eprintln!("made {} (mode 0600)", path.display());
    Ok(value)
}

fn random_hex(n: usize) -> Result<String, CliError> {
    let mut b = vec![0u8; n];
    getrandom::getrandom(&mut b).map_err(|_| usage("no randomness from the operating system"))?;
    Ok(hex::encode(b))
}

pub fn run(a: Args) -> Result<Outcome, CliError> {
    let mut file: FileConfig = match &a.config {
        Some(p) => toml::from_str(
            &std::fs::read_to_string(p).map_err(io_err(format!("reading {}", p.display())))?,
        )
        .map_err(|e| usage(format!("{}: {e}", p.display())))?,
        None => FileConfig::default(),
    };
    let listen = a
        .listen
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let public_url = a.public_url.or(file.public_url);
    if let Some(u) = &public_url {
        evoucher_server::public_origin(u).map_err(usage)?;
    }
    let oidc = oidc_config(
        OidcArgs {
            issuer: a.oidc_issuer,
            client_id: a.oidc_client_id,
            secret_file: a.oidc_client_secret_file,
            role_claim: a.oidc_role_claim,
            roles: a.oidc_roles,
            programs_claim: a.oidc_programs_claim,
            label: a.oidc_label,
        },
        file.oidc.take().unwrap_or_default(),
    )?;
    let database = a
        .database
        .or(file.database)
        .unwrap_or_else(|| "sqlite://evoucher-server.db".into());
    let letter_fonts = if a.letter_fonts.is_empty() {
        file.letter_fonts
    } else {
        a.letter_fonts
    };
    let letter_fonts = evoucher_server::fonts::LetterFonts::load(&letter_fonts)
        .map_err(|e| usage(e.to_string()))?;
    let grace =
        std::time::Duration::from_secs(a.shutdown_grace.or(file.shutdown_grace).unwrap_or(30));
    let defaults = evoucher_server::serve::Limits::default();
    let secs = |flag: Option<u64>, file: Option<u64>, d: std::time::Duration| {
        flag.or(file)
            .map(std::time::Duration::from_secs)
            .unwrap_or(d)
    };
    let limits = evoucher_server::serve::Limits {
        header_timeout: secs(
            a.header_timeout,
            file.header_timeout,
            defaults.header_timeout,
        ),
        body_timeout: secs(a.body_timeout, file.body_timeout, defaults.body_timeout),
        idle_timeout: secs(a.idle_timeout, file.idle_timeout, defaults.idle_timeout),
        max_connections: a
            .max_connections
            .or(file.max_connections)
            .unwrap_or(defaults.max_connections),
    };
    if limits.max_connections == 0
        || [
            limits.header_timeout,
            limits.body_timeout,
            limits.idle_timeout,
        ]
        .iter()
        .any(|d| d.is_zero())
    {
        return Err(usage("timeouts and --max-connections must be above 0"));
    }
    let code_days = a
        .enrolment_code_days
        .or(file.enrolment_code_days)
        .unwrap_or(7);
    if !(1..=365).contains(&code_days) {
        return Err(usage("--enrolment-code-days: 1 to 365"));
    }
    if a.admin_token.is_some() && token_on_command_line() {
        eprintln!(
            "warning: the admin token was given on the command line, where every user of this machine can read it in the process list; use EVOUCHER_ADMIN_TOKEN or admin_token_file instead"
        );
    }
    let admin_token = match a.admin_token {
        Some(t) => t,
        None => secret_file(
            &file
                .admin_token_file
                .clone()
                .unwrap_or_else(|| "evoucher-admin.token".into()),
            || random_hex(24),
        )?,
    };
    if admin_token.len() < 16 {
        return Err(usage("the admin token must have at least 16 characters"));
    }
    // The first account's one-time password goes beside the admin token file.
    let password_file = file
        .admin_token_file
        .as_deref()
        .and_then(|p| p.parent())
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("evoucher-admin.password");
    let key_hex = match std::env::var("EVOUCHER_MASTER_KEY") {
        Ok(k) => k,
        Err(_) => secret_file(
            &a.master_key_file
                .or(file.master_key_file)
                .unwrap_or_else(|| "evoucher-master.key".into()),
            || random_hex(32),
        )?,
    };
    let master_key: [u8; 32] = hex::decode(key_hex.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| usage("the master key must be 64 hex digits"))?;
    let cfg = Config {
        database,
        admin_token,
        master_key,
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Runtime::new().map_err(io_err("starting the runtime"))?;
    rt.block_on(async move {
        let state = AppState::new(&cfg)
            .await
            .map_err(|e| usage(format!("database: {e:?}")))?
            .with_letter_fonts(letter_fonts)
            .with_enrolment_ttl(i64::from(code_days) * 86_400)
            .with_max_enrol_failures(
                a.max_failed_enrolments
                    .or(file.max_failed_enrolments)
                    .unwrap_or(evoucher_server::MAX_ENROL_FAILURES),
            )
            .with_trusted_proxies(if a.trusted_proxies.is_empty() {
                file.trusted_proxies
            } else {
                a.trusted_proxies
            })
            .with_public_url(public_url.as_deref())
            .map_err(usage)?
            .with_oidc(oidc)
            .map_err(usage)?;
        let first_admin = first_admin(&state, &password_file).await?;
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(io_err(format!("binding {listen}")))?;
        let addr = listener.local_addr().map_err(io_err("local address"))?;
        println!("listening on http://{addr}");
        if first_admin {
            eprintln!(
                "made the first account, `admin` (role admin): sign in at http://{addr}/ with the one-time password in {} (mode 0600), and change it",
                password_file.display()
            );
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        match evoucher_server::serve::serve(listener, app(state), limits, shutdown(), grace)
            .await
            .map_err(io_err("serving"))?
        {
            evoucher_server::serve::Ended::Drained => eprintln!("stopped"),
            // Every write is one transaction: what was cut off is rolled back whole.
            evoucher_server::serve::Ended::Cut => eprintln!(
                "stopped with requests still in flight after {}s",
                grace.as_secs()
            ),
        }
        Ok(Outcome::Ok)
    })
}

/// On a server with no account yet, make the first one: `admin` (role admin) with a one-time
/// password written to `password_file` (mode 0600, never overwritten) that must be changed at
/// the first sign-in. Whether it was made.
async fn first_admin(state: &AppState, password_file: &Path) -> Result<bool, CliError> {
    use evoucher_server::audit::{self, Actor, Event};
    use evoucher_server::users;
    let mut tx = state
        .begin_write()
        .await
        .map_err(|e| usage(format!("database: {e}")))?;
    if users::any(&mut tx)
        .await
        .map_err(|e| usage(format!("database: {e}")))?
    {
        return Ok(false);
    }
    let (u, password) = users::add(
        &mut tx,
        &users::NewUser {
            name: "admin".into(),
            role: "admin".into(),
            ..Default::default()
        },
    )
    .await
    .map_err(|e| usage(format!("database: {e}")))?;
    audit::record(
        &mut tx,
        state.postgres,
        &Actor::command_line(),
        None,
        Event::new(
            "account.create",
            "account",
            u.id.clone(),
            serde_json::json!({"after": {"name": u.name, "role": u.role, "first": true}}),
        ),
    )
    .await
    .map_err(|e| usage(format!("database: {e}")))?;
    let _ = std::fs::remove_file(password_file);
    secret_file(password_file, || Ok(password))?;
    tx.commit()
        .await
        .map_err(|e| usage(format!("database: {e}")))?;
    Ok(true)
}

/// Whether `--admin-token` appears among this process's own arguments (rather than coming
/// from the environment).
fn token_on_command_line() -> bool {
    std::env::args().any(|a| a == "--admin-token" || a.starts_with("--admin-token="))
}

/// Finish requests in flight on SIGTERM or Ctrl-C.
async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

struct OidcArgs {
    issuer: Option<String>,
    client_id: Option<String>,
    secret_file: Option<PathBuf>,
    role_claim: Option<String>,
    roles: Vec<String>,
    programs_claim: Option<String>,
    label: Option<String>,
}

/// The identity provider's settings from the flags, the environment and the config file
/// (flags first), checked before anything starts. None when no issuer is given.
fn oidc_config(
    a: OidcArgs,
    f: FileOidc,
) -> Result<Option<evoucher_server::oidc::OidcConfig>, CliError> {
    use evoucher_server::oidc::OidcConfig;
    let Some(issuer) = a.issuer.or(f.issuer) else {
        return Ok(None);
    };
    let client_id = a
        .client_id
        .or(f.client_id)
        .ok_or_else(|| usage("--oidc-issuer needs --oidc-client-id"))?;
    let client_secret = match std::env::var("EVOUCHER_OIDC_CLIENT_SECRET") {
        Ok(s) if !s.is_empty() => s,
        _ => {
            let path = a.secret_file.or(f.client_secret_file).ok_or_else(|| {
                usage("--oidc-issuer needs the client secret: --oidc-client-secret-file or EVOUCHER_OIDC_CLIENT_SECRET")
            })?;
            std::fs::read_to_string(&path)
                .map_err(io_err(format!("reading {}", path.display())))?
                .trim()
                .to_owned()
        }
    };
    let mut roles = Vec::new();
    if a.roles.is_empty() {
        for (value, role) in f.roles {
            roles.push(OidcConfig::parse_role(&format!("{value}={role}")).map_err(usage)?);
        }
    } else {
        for r in &a.roles {
            roles.push(OidcConfig::parse_role(r).map_err(usage)?);
        }
    }
    let config = OidcConfig {
        issuer,
        client_id,
        client_secret,
        role_claim: a
            .role_claim
            .or(f.role_claim)
            .unwrap_or_else(|| "roles".into()),
        roles,
        programs_claim: a.programs_claim.or(f.programs_claim),
        label: a
            .label
            .or(f.label)
            .unwrap_or_else(|| "single sign-on".into()),
    };
    config.check().map_err(usage)?;
    Ok(Some(config))
}
