//! `evoucher user …` and `evoucher audit …`: accounts and the audit log, on the server's
//! database directly (an operator on the server's machine). Every change is audited as done by
//! the command line.

use clap::Subcommand;
use evoucher_server::audit::{self, Actor, Event};
use evoucher_server::users::{self, NewUser};

use crate::util::{self, io_err, usage, CliError, Outcome};

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    cmd: UserCmd,
}

#[derive(Debug, Clone, clap::Args)]
struct Db {
    /// The server's database: `sqlite://FILE` (default `sqlite://evoucher-server.db`) or
    /// `postgres://…`.
    #[arg(
        long,
        env = "EVOUCHER_DATABASE",
        default_value = "sqlite://evoucher-server.db"
    )]
    database: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// Add an account with a one-time password (printed once) that must be changed at sign-in.
    Add {
        #[command(flatten)]
        db: Db,
        /// The account name (sign-in name): letters, digits, '.', '-', '_', '@'.
        name: String,
        /// admin, program_manager, accountant, cash_manager, auditor or provider.
        #[arg(long)]
        role: String,
        /// Limit a program role to this program (repeat for several; none: all programs).
        #[arg(long = "program", value_name = "ID")]
        programs: Vec<String>,
        /// The provider a provider account belongs to.
        #[arg(long)]
        provider: Option<String>,
    },
    /// List the accounts.
    List {
        #[command(flatten)]
        db: Db,
    },
    /// Disable an account: it cannot sign in, its sessions end, its tokens stop.
    Disable {
        #[command(flatten)]
        db: Db,
        /// The account name or id.
        name: String,
    },
    /// Give an account a new one-time password (printed once); its sessions end.
    Reset {
        #[command(flatten)]
        db: Db,
        /// The account name or id.
        name: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    cmd: AuditCmd,
}

#[derive(Debug, Subcommand)]
enum AuditCmd {
    /// Check the audit log's hash chain: exit 0 intact, 1 broken (naming the record).
    Verify {
        #[command(flatten)]
        db: Db,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("starting the runtime"))
}

async fn pool(db: &Db) -> Result<sqlx::AnyPool, CliError> {
    evoucher_server::db::connect(&db.database)
        .await
        .map_err(|e| usage(format!("database {}: {e:?}", safe_url(&db.database))))
}

/// A database URL without its password, for messages.
fn safe_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

fn api(e: evoucher_server::ApiError) -> CliError {
    usage(e.to_string())
}

pub fn user(a: UserArgs) -> Result<Outcome, CliError> {
    runtime()?.block_on(async move {
        match a.cmd {
            UserCmd::Add {
                db,
                name,
                role,
                programs,
                provider,
            } => {
                let pool = pool(&db).await?;
                let postgres = db.database.starts_with("postgres");
                let mut tx = pool.begin().await.map_err(|e| usage(e.to_string()))?;
                let (u, password) = users::add(
                    &mut tx,
                    &NewUser {
                        name,
                        role,
                        programs,
                        provider,
                    },
                )
                .await
                .map_err(api)?;
                audit::record(
                    &mut tx,
                    postgres,
                    &Actor::command_line(),
                    None,
                    Event::new(
                        "account.create",
                        "account",
                        u.id.clone(),
                        serde_json::json!({"after": {"name": u.name, "role": u.role, "programs": u.programs, "provider": u.provider_id}}),
                    ),
                )
                .await
                .map_err(api)?;
                tx.commit().await.map_err(|e| usage(e.to_string()))?;
                if db.json {
                    util::print_json(&serde_json::json!({"user": u, "one_time_password": password}));
                } else {
                    println!(
                        "added {} ({}); one-time password (shown once, to be changed at sign-in): {password}",
                        u.name,
                        u.role.as_str()
                    );
                }
                Ok(Outcome::Ok)
            }
            UserCmd::List { db } => {
                let pool = pool(&db).await?;
                let mut c = pool.acquire().await.map_err(|e| usage(e.to_string()))?;
                let list = users::list(&mut c).await.map_err(api)?;
                if db.json {
                    util::print_json(&serde_json::json!({ "users": list }));
                } else {
                    for u in &list {
                        println!(
                            "{:<24} {:<16} {}{}{}",
                            u.name,
                            u.role.as_str(),
                            if u.programs.is_empty() {
                                String::new()
                            } else {
                                format!("programs {} ", u.programs.join(","))
                            },
                            u.provider_id
                                .as_deref()
                                .map(|p| format!("provider {p} "))
                                .unwrap_or_default(),
                            if u.disabled_at.is_some() {
                                "DISABLED"
                            } else if u.external {
                                "(identity provider)"
                            } else if u.must_change {
                                "(one-time password)"
                            } else {
                                ""
                            }
                        );
                    }
                }
                Ok(Outcome::Ok)
            }
            UserCmd::Disable { db, name } => change(&db, &name, false).await,
            UserCmd::Reset { db, name } => change(&db, &name, true).await,
        }
    })
}

async fn change(db: &Db, name: &str, reset: bool) -> Result<Outcome, CliError> {
    let pool = pool(db).await?;
    let postgres = db.database.starts_with("postgres");
    let mut tx = pool.begin().await.map_err(|e| usage(e.to_string()))?;
    let Some(u) = users::find(&mut tx, name).await.map_err(api)? else {
        return Err(usage(format!("no account {name}")));
    };
    let password = if reset {
        Some(users::reset(&mut tx, &u.id).await.map_err(api)?)
    } else {
        users::disable(&mut tx, &u.id).await.map_err(api)?;
        None
    };
    audit::record(
        &mut tx,
        postgres,
        &Actor::command_line(),
        None,
        Event::new(
            if reset { "account.reset" } else { "account.disable" },
            "account",
            u.id.clone(),
            serde_json::json!({"after": if reset { serde_json::json!({"must_change": true}) } else { serde_json::json!({"disabled": true}) }}),
        ),
    )
    .await
    .map_err(api)?;
    tx.commit().await.map_err(|e| usage(e.to_string()))?;
    match (db.json, &password) {
        (true, _) => {
            util::print_json(&serde_json::json!({"user": u.name, "one_time_password": password}))
        }
        (false, Some(p)) => println!("{}: new one-time password (shown once): {p}", u.name),
        (false, None) => println!("{}: disabled (sessions ended, tokens stopped)", u.name),
    }
    Ok(Outcome::Ok)
}

pub fn audit_cmd(a: AuditArgs) -> Result<Outcome, CliError> {
    runtime()?.block_on(async move {
        match a.cmd {
            AuditCmd::Verify { db } => {
                let pool = pool(&db).await?;
                let mut c = pool.acquire().await.map_err(|e| usage(e.to_string()))?;
                let r = audit::verify(&mut c).await.map_err(api)?;
                match &r {
                    Ok(v) if db.json => util::print_json(
                        &serde_json::json!({"intact": true, "records": v.records, "head": v.head}),
                    ),
                    Ok(v) => println!("INTACT: {} records, head {}", v.records, v.head),
                    Err(b) if db.json => util::print_json(
                        &serde_json::json!({"intact": false, "seq": b.seq, "problem": b.problem}),
                    ),
                    Err(b) => println!("BROKEN: {b}"),
                }
                Ok(if r.is_ok() {
                    Outcome::Ok
                } else {
                    Outcome::Refused
                })
            }
        }
    })
}
