//! Entry points for the provider app: the verdict before confirming, the history screen, the
//! sync panel, enrolment and sync. The app's own HTTP stack is the transport; what to send and
//! how to apply each answer is the core's ([`evoucher_core::sync`]).

use std::path::Path;
use std::sync::Mutex;

use evoucher_core::ledger::{HistoryFilter, Ledger, RedeemError, Redeemer};
use evoucher_core::sync::{self, Answer, SyncRun};
use evoucher_core::{claims, verify, TrustStore};
use jni::objects::{JClass, JString};
use jni::sys::{jint, jlong};
use jni::EnvUnowned;
use serde_json::{json, Value};

use crate::error::{BridgeError, ThrowMapped};
use crate::{handle, jstr, opt_string, parse_request, string, verified_json, R};

/// A refusal as the verdict screen reads it: `reason` (stable code), `message`, and the
/// refusal's own fields (`at`, `provider`, … for an earlier redemption).
fn refusal_json(r: &evoucher_core::ledger::Refusal) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or_else(|_| json!({}));
    if !v.is_object() {
        v = json!({});
    }
    if let Some(o) = v.as_object_mut() {
        o.insert("reason".into(), json!(r.code()));
        o.insert("message".into(), json!(r.to_string()));
    }
    v
}

/// Verify `text` and ask the ledger what a redemption would decide, writing nothing:
/// `{"verdict": "ok" | "refused" | "invalid", "verified": …, "refusal": …, "remaining": …,
/// "balance": …}` (`balance`: what the voucher holds now; `remaining`: what it would hold after).
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_ledgerCheck<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    verifier: jlong,
    text: JString<'l>,
    provider: JString<'l>,
    category: JString<'l>,
    request: JString<'l>,
    now: jlong,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        let store = handle::get::<TrustStore>(verifier)?;
        let text = string(env, &text, "text")?;
        let provider = opt_string(env, &provider)?.unwrap_or_default();
        let category = opt_string(env, &category)?;
        let req = parse_request(opt_string(env, &request)?)?;
        let verified = verify(&text, &store, now);
        let out = match &verified {
            Err(_) => json!({"verdict": "invalid", "verified": verified_json(&verified)}),
            Ok(v) => {
                let who = Redeemer {
                    provider: &provider,
                    category: category.as_deref(),
                    device: "",
                };
                let balance = ledger.balance(&v.voucher)?;
                match ledger.check(v, &who, &req, now) {
                    Ok(b) => json!({
                        "verdict": "ok",
                        "verified": verified_json(&verified),
                        "remaining": b,
                        "balance": balance,
                    }),
                    Err(RedeemError::Refused(r)) => json!({
                        "verdict": "refused",
                        "verified": verified_json(&verified),
                        "refusal": refusal_json(&r),
                        "balance": balance,
                    }),
                    Err(RedeemError::Ledger(e)) => return Err(e.into()),
                }
            }
        };
        jstr(env, &out)
    })
    .resolve::<ThrowMapped>()
}

/// One page of the history screen; `filter` is a JSON [`HistoryFilter`].
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_ledgerHistory<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    filter: JString<'l>,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        let f: HistoryFilter = match opt_string(env, &filter)? {
            Some(s) => serde_json::from_str(&s)
                .map_err(|e| BridgeError::BadArgument(format!("history filter: {e}")))?,
            None => HistoryFilter::default(),
        };
        jstr(env, &json!(ledger.history_page(&f)?))
    })
    .resolve::<ThrowMapped>()
}

/// The sync panel: last sync, waiting entries, the lists' ages, clock warnings; with the
/// enrolment (no token: the ledger never holds it) and the device's public key.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_ledgerStatus<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    stale_after: jlong,
    now: jlong,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        let s = sync::status(&ledger, stale_after, now)?;
        let mut v = json!(s);
        v["clock_suspect"] = json!(s.clock_suspect());
        v["enrolment"] = json!(ledger.enrolment()?);
        v["device_public"] = json!(ledger.device_public());
        v["stats"] = json!(ledger.stats()?);
        jstr(env, &v)
    })
    .resolve::<ThrowMapped>()
}

/// The body of the enrolment request for this ledger's device key. Throws when the ledger is
/// already enrolled (before anything is sent).
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_enrolBody<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    code: JString<'l>,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        let code = string(env, &code, "code")?;
        sync::check_not_enrolled(&ledger)?;
        Ok(JString::from_str(env, sync::enrol_body(&ledger, &code))?)
    })
    .resolve::<ThrowMapped>()
}

/// Apply the server's answer to enrolment: the ledger records it; the enrolment with its
/// token is returned for the app to keep in its private storage.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_enrolApply<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    server: JString<'l>,
    status: jint,
    body: JString<'l>,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        let server = string(env, &server, "server")?;
        let body = opt_string(env, &body)?.unwrap_or_default();
        let e = sync::apply_enrolment(&ledger, &server, status_code(status)?, &body)?;
        jstr(env, &json!(e))
    })
    .resolve::<ThrowMapped>()
}

fn status_code(s: jint) -> R<u16> {
    u16::try_from(s).map_err(|_| BridgeError::BadArgument(format!("HTTP status {s}")))
}

/// A sync run; the trust list is kept at `trustPath`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_syncNew<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    trust_path: JString<'l>,
) -> jlong {
    u.with_env(|env| -> R<jlong> {
        let ledger = handle::get::<Ledger>(h)?;
        let path = string(env, &trust_path, "trustPath")?;
        Ok(handle::new(Mutex::new(SyncRun::new(
            &ledger,
            Path::new(&path),
        ))))
    })
    .resolve::<ThrowMapped>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_syncDestroy<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    s: jlong,
) {
    u.with_env(|_env| -> R<()> {
        handle::destroy::<Mutex<SyncRun>>(s);
        Ok(())
    })
    .resolve::<ThrowMapped>()
}

fn run(s: jlong) -> R<std::sync::Arc<Mutex<SyncRun>>> {
    handle::get::<Mutex<SyncRun>>(s)
}

/// The next request (`{"method", "path", "body"?, "if_none_match"?}`), or null at the end.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_syncNext<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    s: jlong,
    h: jlong,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        let run = run(s)?;
        let mut run = run
            .lock()
            .map_err(|_| BridgeError::Ledger("sync run poisoned".into()))?;
        match run.next(&ledger)? {
            Some(req) => jstr(env, &json!(req)),
            None => Ok(JString::null()),
        }
    })
    .resolve::<ThrowMapped>()
}

/// Apply the answer to the last request (`date`: the `Date` header as sent).
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_syncAnswer<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    s: jlong,
    h: jlong,
    status: jint,
    etag: JString<'l>,
    date: JString<'l>,
    body: JString<'l>,
) {
    u.with_env(|env| -> R<()> {
        let ledger = handle::get::<Ledger>(h)?;
        let etag = opt_string(env, &etag)?;
        let date = opt_string(env, &date)?.and_then(|d| evoucher_core::time::parse_http_date(&d));
        let body = opt_string(env, &body)?.unwrap_or_default();
        let run = run(s)?;
        let mut run = run
            .lock()
            .map_err(|_| BridgeError::Ledger("sync run poisoned".into()))?;
        run.answer(
            &ledger,
            Answer {
                status: status_code(status)?,
                etag: etag.as_deref(),
                date,
                body: &body,
            },
        )?;
        Ok(())
    })
    .resolve::<ThrowMapped>()
}

/// What the run has done so far (a `SyncReport`).
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_syncReport<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    s: jlong,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let run = run(s)?;
        let run = run
            .lock()
            .map_err(|_| BridgeError::Ledger("sync run poisoned".into()))?;
        jstr(env, &json!(run.report()))
    })
    .resolve::<ThrowMapped>()
}

/// The whole ledger as CSV (the settings screen shares it).
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_ledgerExportCsv<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    path: JString<'l>,
) -> jint {
    u.with_env(|env| -> R<jint> {
        let ledger = handle::get::<Ledger>(h)?;
        let path = string(env, &path, "path")?;
        let tmp = format!("{path}.tmp");
        let file = std::fs::File::create(&tmp).map_err(|e| BridgeError::Ledger(e.to_string()))?;
        let n = ledger.export_csv(std::io::BufWriter::new(file))?;
        std::fs::rename(&tmp, &path).map_err(|e| BridgeError::Ledger(e.to_string()))?;
        Ok(jint::try_from(n).unwrap_or(jint::MAX))
    })
    .resolve::<ThrowMapped>()
}

// ---------------------------------------------------------------- claims

/// Queue a claim (`{"key", "program", "redemptions"?, "up_to"?, "note"?}`) or, with
/// `claimId`, the answer to a returned claim (`{"key", "note"?}`); `documents` is a JSON list of
/// `{"name", "path"}`. Returns the queued item.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_claimQueue<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    request: JString<'l>,
    claim_id: JString<'l>,
    documents: JString<'l>,
    now: jlong,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        let bad = |m: &str| BridgeError::BadArgument(m.to_owned());
        let req: Value = serde_json::from_str(&string(env, &request, "request")?)
            .map_err(|_| bad("request is not JSON"))?;
        let docs: Vec<Value> = serde_json::from_str(&string(env, &documents, "documents")?)
            .map_err(|_| bad("documents: a JSON list of {name, path}"))?;
        let docs = docs
            .iter()
            .map(|d| match (d["name"].as_str(), d["path"].as_str()) {
                (Some(n), Some(p)) => Ok((n.to_owned(), p.to_owned())),
                _ => Err(bad("documents: a JSON list of {name, path}")),
            })
            .collect::<R<Vec<_>>>()?;
        let key = req["key"].as_str().ok_or_else(|| bad("request.key"))?;
        let q = match opt_string(env, &claim_id)? {
            Some(id) => claims::queue_answer(&ledger, key, &id, req["note"].as_str(), &docs, now)?,
            None => {
                let r: claims::ClaimRequest = serde_json::from_value(req.clone())
                    .map_err(|e| bad(&format!("request: {e}")))?;
                claims::queue_claim(&ledger, &r, &docs, now)?
            }
        };
        jstr(env, &json!(q))
    })
    .resolve::<ThrowMapped>()
}

/// The claim outbox (newest first) and the claims as the server last listed them:
/// `{"outbox": [...], "claims": [...]}`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_claimList<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        jstr(
            env,
            &json!({"outbox": ledger.claim_outbox()?, "claims": ledger.claims_seen()?}),
        )
    })
    .resolve::<ThrowMapped>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_claimRunNew<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
) -> jlong {
    u.with_env(|_env| -> R<jlong> { Ok(handle::new(Mutex::new(claims::ClaimRun::new()))) })
        .resolve::<ThrowMapped>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_claimRunDestroy<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    r: jlong,
) {
    u.with_env(|_env| -> R<()> {
        handle::destroy::<Mutex<claims::ClaimRun>>(r);
        Ok(())
    })
    .resolve::<ThrowMapped>()
}

fn claim_run(r: jlong) -> R<std::sync::Arc<Mutex<claims::ClaimRun>>> {
    handle::get::<Mutex<claims::ClaimRun>>(r)
}

/// The next request of a claim run (as `syncNext`), or null at the end.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_claimRunNext<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    r: jlong,
    h: jlong,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        let run = claim_run(r)?;
        let mut run = run
            .lock()
            .map_err(|_| BridgeError::Ledger("claim run poisoned".into()))?;
        match run.next(&ledger)? {
            Some(req) => jstr(env, &json!(req)),
            None => Ok(JString::null()),
        }
    })
    .resolve::<ThrowMapped>()
}

/// Apply the answer to the last request; returns `{"sent", "refused"}` so far.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_claimRunAnswer<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    r: jlong,
    h: jlong,
    status: jint,
    body: JString<'l>,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        let body = opt_string(env, &body)?.unwrap_or_default();
        let run = claim_run(r)?;
        let mut run = run
            .lock()
            .map_err(|_| BridgeError::Ledger("claim run poisoned".into()))?;
        run.answer(
            &ledger,
            Answer {
                status: status_code(status)?,
                etag: None,
                date: None,
                body: &body,
            },
        )?;
        jstr(env, &json!({"sent": run.sent, "refused": run.refused}))
    })
    .resolve::<ThrowMapped>()
}
