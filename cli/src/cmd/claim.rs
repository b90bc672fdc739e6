//! `evoucher claim …`: a provider's phone asks to be reimbursed for its accepted redemptions.
//!
//! `submit` makes the claim on the program server, uploads the documents and submits it. What
//! it is about to send is written first to `<ledger>.claim.json`, so that a submit cut off by
//! a bad link is resumed by running it again (the same claim, not a second one); the file is
//! removed once the server has the claim submitted.

use std::path::{Path, PathBuf};

use evoucher_core::claims::{ClaimRequest, Document, MAX_DOCUMENT};
use evoucher_core::ledger::Ledger;
use evoucher_core::sync::SyncClient;
use serde::{Deserialize, Serialize};

use super::device::{device_token, refused_token, server_of};
use crate::util::{self, io_err, usage, CliError, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Args)]
struct Device {
    /// The device's ledger (enrolled with `evoucher enrol`).
    #[arg(long)]
    ledger: PathBuf,
    /// The program server (default: the one the ledger was enrolled with).
    #[arg(long)]
    server: Option<String>,
    /// Device token (default: `<ledger>.token`).
    #[arg(long, env = "EVOUCHER_DEVICE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Claim reimbursement: these redemptions, or every unclaimed accepted one (up to a time),
    /// with photos or PDFs of receipts and delivery notes. Exit 0 submitted, 2 refused or
    /// network error (nothing is lost: run it again).
    Submit {
        #[command(flatten)]
        device: Device,
        /// The program to claim from.
        #[arg(long)]
        program: String,
        /// A redemption (ledger entry id) to claim; repeat it. Without any: every unclaimed
        /// accepted redemption of this provider in the program.
        #[arg(long = "redemption", value_name = "ID")]
        redemptions: Vec<String>,
        /// With no --redemption: redemptions made up to this time (RFC 3339; default now).
        #[arg(long, value_name = "TIME")]
        up_to: Option<String>,
        /// A supporting document: a JPEG or PNG photo or a PDF (10 MiB at most); repeat it.
        #[arg(long = "doc", value_name = "FILE")]
        docs: Vec<PathBuf>,
        /// A note for the reviewers.
        #[arg(long)]
        note: Option<String>,
    },
    /// Answer a claim a reviewer returned with a question: add documents and submit it again
    /// (it goes back to the first stage). Exit 0 submitted, 2 refused or network error.
    Answer {
        #[command(flatten)]
        device: Device,
        /// The claim's id (CLM-…).
        claim: String,
        /// A document the reviewer asked for: a JPEG or PNG photo or a PDF (10 MiB at most);
        /// repeat it.
        #[arg(long = "doc", value_name = "FILE")]
        docs: Vec<PathBuf>,
        /// The answer to the reviewer's question.
        #[arg(long)]
        note: Option<String>,
    },
    /// This provider's claims and their states.
    List {
        #[command(flatten)]
        device: Device,
    },
    /// Withdraw a draft or returned claim: its redemptions can be claimed again.
    Withdraw {
        #[command(flatten)]
        device: Device,
        /// The claim's id (CLM-…).
        claim: String,
    },
}

/// A submit under way, kept beside the ledger until the server has it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    key: String,
    program: String,
    redemptions: Vec<String>,
    up_to: Option<i64>,
}

fn pending_path(ledger: &Path) -> PathBuf {
    let mut p = ledger.as_os_str().to_owned();
    p.push(".claim.json");
    PathBuf::from(p)
}

fn client(d: &Device) -> Result<(SyncClient, PathBuf), CliError> {
    let token = device_token(&d.ledger, d.token.clone())?;
    let ledger = Ledger::open_read_only(&d.ledger)
        .map_err(|e| usage(format!("ledger {}: {e}", d.ledger.display())))?;
    let server = server_of(&d.ledger, &ledger, d.server.clone())?;
    let c = SyncClient::new(&server, Some(token)).map_err(|e| refused_token(e, "claim"))?;
    Ok((c, d.ledger.clone()))
}

/// Money for people: `25.00 KES`.
fn money(v: &serde_json::Value, key: &str) -> String {
    match (v[key].as_i64(), v["currency"].as_str()) {
        (Some(a), Some(c)) => evoucher_core::voucher::format_amount(a.max(0) as u64, c),
        _ => "-".into(),
    }
}

/// One line about a claim, as `sync` and `claim list` print it.
pub fn summary_line(c: &serde_json::Value) -> String {
    let state = c["state"].as_str().unwrap_or("?");
    let what = match state {
        "submitted" => format!(
            "submitted, waiting for the {} (stage {} of {})",
            c["waiting_for"].as_str().unwrap_or("?"),
            c["stage"].as_i64().unwrap_or(0),
            c["stages"].as_array().map(|a| a.len()).unwrap_or(0)
        ),
        "returned" => format!(
            "RETURNED with a question: {} (answer it with `evoucher claim answer {}`)",
            c["question"].as_str().unwrap_or(""),
            c["id"].as_str().unwrap_or("?")
        ),
        "rejected" => format!("REJECTED: {}", c["reason"].as_str().unwrap_or("")),
        "payable" => format!("approved, {} to be paid", money(c, "approved")),
        "paid" => format!("PAID {}", money(c, "approved")),
        "failed" => format!(
            "payment FAILED ({}); the program will send it again",
            c["payable"]["failure"]
                .as_str()
                .unwrap_or("no reason given")
        ),
        other => other.to_owned(),
    };
    format!(
        "claim {} ({}, {} redemptions, {} claimed): {what}",
        c["id"].as_str().unwrap_or("?"),
        c["program"].as_str().unwrap_or("?"),
        c["line_count"].as_i64().unwrap_or(0),
        money(c, "claimed"),
    )
}

/// A claim as `sync --json` lists it.
pub fn summary_json(c: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "id": c["id"], "program": c["program"], "state": c["state"], "stage": c["stage"],
        "waiting_for": c["waiting_for"], "claimed": c["claimed"], "approved": c["approved"],
        "currency": c["currency"], "question": c["question"], "reason": c["reason"],
        "payable": c["payable"],
    })
}

pub fn run(a: Args) -> Result<Outcome, CliError> {
    match a.cmd {
        Cmd::Submit {
            device,
            program,
            redemptions,
            up_to,
            docs,
            note,
        } => submit(&device, program, redemptions, up_to, &docs, note),
        Cmd::Answer {
            device,
            claim,
            docs,
            note,
        } => {
            if docs.is_empty() && note.as_deref().is_none_or(|n| n.trim().is_empty()) {
                return Err(usage(
                    "answer the reviewer's question with --note, --doc or both",
                ));
            }
            let documents = read_documents(&docs)?;
            let (c, _) = client(&device)?;
            let v = c
                .answer_claim(&claim, note.as_deref(), &documents)
                .map_err(|e| match e {
                    evoucher_core::sync::SyncError::Status(code, why)
                        if (400..500).contains(&code) && code != 401 =>
                    {
                        usage(format!("the server refused the answer: {why}"))
                    }
                    e => refused_token(e, "answering the claim"),
                })?;
            if device.json {
                util::print_json(&summary_json(&v));
            } else {
                println!("{}", summary_line(&v));
            }
            Ok(Outcome::Ok)
        }
        Cmd::List { device } => {
            let (c, _) = client(&device)?;
            let list = c.claims().map_err(|e| refused_token(e, "reading claims"))?;
            if device.json {
                util::print_json(&serde_json::json!({
                    "claims": list.iter().map(summary_json).collect::<Vec<_>>()
                }));
            } else if list.is_empty() {
                println!("no claims yet");
            } else {
                for c in &list {
                    println!("{}", summary_line(c));
                }
            }
            Ok(Outcome::Ok)
        }
        Cmd::Withdraw { device, claim } => {
            let (c, _) = client(&device)?;
            let v = c
                .withdraw_claim(&claim)
                .map_err(|e| refused_token(e, "withdrawing"))?;
            if device.json {
                util::print_json(&summary_json(&v));
            } else {
                println!("{}", summary_line(&v));
            }
            Ok(Outcome::Ok)
        }
    }
}

fn submit(
    device: &Device,
    program: String,
    redemptions: Vec<String>,
    up_to: Option<String>,
    docs: &[PathBuf],
    note: Option<String>,
) -> Result<Outcome, CliError> {
    let up_to = up_to.as_deref().map(util::parse_time).transpose()?;
    let documents = read_documents(docs)?;
    let (c, ledger) = client(device)?;
    let path = pending_path(&ledger);
    // A submit cut off earlier for the same program is resumed with its key.
    let pending = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<Pending>(&t).ok())
        .filter(|p| p.program == program);
    let resumed = pending.is_some();
    let pending = match pending {
        Some(p) => p,
        None => {
            let p = Pending {
                key: format!("{}-{}", program, hex::encode(random16()?)),
                program: program.clone(),
                redemptions: redemptions.clone(),
                up_to: up_to.or(Some(evoucher_core::ledger_now())),
            };
            std::fs::write(&path, serde_json::to_vec(&p).unwrap_or_default())
                .map_err(io_err(format!("writing {}", path.display())))?;
            p
        }
    };
    if resumed {
        eprintln!("resuming the claim begun earlier ({})", pending.key);
    }
    let req = ClaimRequest {
        key: pending.key.clone(),
        program: pending.program.clone(),
        redemptions: (!pending.redemptions.is_empty()).then(|| pending.redemptions.clone()),
        up_to: pending
            .redemptions
            .is_empty()
            .then_some(pending.up_to)
            .flatten(),
        note,
    };
    match c.submit_claim(&req, &documents) {
        Ok(v) => {
            let _ = std::fs::remove_file(&path);
            if device.json {
                util::print_json(&v);
            } else {
                println!("{}", summary_line(&v));
            }
            Ok(Outcome::Ok)
        }
        Err(evoucher_core::sync::SyncError::Status(code, why))
            if (400..500).contains(&code) && code != 401 =>
        {
            // Refused for good (nothing to claim, a redemption not claimable…): nothing to resume.
            let _ = std::fs::remove_file(&path);
            Err(usage(format!("the server refused the claim: {why}")))
        }
        Err(e) => Err(refused_token(e, "claim")),
    }
}

/// Read every document first: a missing, oversized or wrong-typed file stops before anything
/// is sent.
fn read_documents(docs: &[PathBuf]) -> Result<Vec<Document>, CliError> {
    let mut documents = Vec::new();
    for p in docs {
        let bytes = std::fs::read(p).map_err(io_err(format!("reading {}", p.display())))?;
        if bytes.len() > MAX_DOCUMENT {
            return Err(usage(format!(
                "{}: {} bytes, over the 10 MiB a document may have",
                p.display(),
                bytes.len()
            )));
        }
        if evoucher_core::claims::sniff(&bytes).is_none() {
            return Err(usage(format!(
                "{}: a supporting document is a JPEG or PNG photo or a PDF",
                p.display()
            )));
        }
        documents.push(Document {
            name: p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bytes,
        });
    }
    Ok(documents)
}

fn random16() -> Result<[u8; 16], CliError> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|_| usage("no randomness"))?;
    Ok(b)
}
