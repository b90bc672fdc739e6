//! JNI bridge for the Kotlin SDK (`org.evoucher.sdk.Native`). It only converts and forwards:
//! every entry point runs inside `EnvUnowned::with_env` (which catches panics) and resolves
//! through [`error::ThrowMapped`], the one table that turns errors into Java exceptions.
//! Native objects are `Arc`s behind `jlong` handles with an explicit destroy ([`handle`]).
//! Structured results cross the boundary as JSON strings.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod error;
mod handle;
mod phone;

use std::time::Duration;

use evoucher_core::ledger::{ItemQty, Ledger, RedeemRequest, Redeemer};
use evoucher_core::scan::{scan, Code, Fed, Frame, Rotation, ScanOptions, ScanSession};
use evoucher_core::voucher::VoucherId;
use evoucher_core::{verify, TrustStore, Verified, VerifyError};
use jni::objects::{JByteBuffer, JClass, JString};
use jni::refs::Reference;
use jni::sys::{jint, jlong};
use jni::{Env, EnvUnowned};
use serde_json::{json, Value};

use error::{BridgeError, ThrowMapped};

type R<T> = Result<T, BridgeError>;

fn string(env: &Env<'_>, s: &JString<'_>, name: &str) -> R<String> {
    if s.is_null() {
        return Err(BridgeError::BadArgument(format!("{name} is null")));
    }
    Ok(s.try_to_string(env)?)
}

fn opt_string(env: &Env<'_>, s: &JString<'_>) -> R<Option<String>> {
    if s.is_null() {
        Ok(None)
    } else {
        Ok(Some(s.try_to_string(env)?))
    }
}

fn jstr<'l>(env: &mut Env<'l>, v: &Value) -> R<JString<'l>> {
    Ok(JString::from_str(env, v.to_string())?)
}

fn non_negative(v: jint, name: &str) -> R<usize> {
    usize::try_from(v).map_err(|_| BridgeError::BadArgument(format!("{name} is negative")))
}

fn code_json(c: &Code) -> Value {
    json!({
        "text": c.text,
        "bytes_hex": c.bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "corners": c.corners.iter().map(|(x, y)| [*x, *y]).collect::<Vec<_>>(),
    })
}

fn verified_json(r: &Result<Verified, VerifyError>) -> Value {
    match r {
        Ok(v) => {
            json!({"valid": true, "kid": v.kid.to_string(), "format": v.format, "voucher": v.voucher})
        }
        Err(e) => {
            let mut v = json!({"valid": false, "stage": e.stage(), "error": e.to_string()});
            // When: for the verdict screen's "expired on …" / "not valid before …".
            match e {
                VerifyError::Expired { exp, .. } => v["at"] = json!(exp),
                VerifyError::NotYetValid { nbf, .. } => v["at"] = json!(nbf),
                _ => {}
            }
            v
        }
    }
}

/// A frame over a direct ByteBuffer's memory, checked; valid while `buf` is.
fn with_frame<T>(
    env: &Env<'_>,
    buf: &JByteBuffer<'_>,
    (width, height, stride, rotation): (jint, jint, jint, jint),
    f: impl FnOnce(&Frame<'_>) -> R<T>,
) -> R<T> {
    if buf.is_null() {
        return Err(BridgeError::BadArgument("buffer is null".into()));
    }
    let (w, h, s) = (
        non_negative(width, "width")?,
        non_negative(height, "height")?,
        non_negative(stride, "rowStride")?,
    );
    let rotation = Rotation::from_degrees(rotation).ok_or_else(|| {
        BridgeError::BadArgument(format!("rotation {rotation} is not 0, 90, 180 or 270"))
    })?;
    let ptr = env
        .get_direct_buffer_address(buf)
        .map_err(|_| BridgeError::BadArgument("buffer is not a direct ByteBuffer".into()))?;
    let cap = env.get_direct_buffer_capacity(buf)?;
    if ptr.is_null() {
        return Err(BridgeError::BadArgument(
            "buffer is not a direct ByteBuffer".into(),
        ));
    }
    // SAFETY: the JVM guarantees `cap` bytes at `ptr` for a direct buffer, and `buf` (a local
    // reference held by the caller's frame) keeps it alive for the whole call. The slice is
    // only read and does not outlive `f`.
    #[allow(unsafe_code)]
    let pixels = unsafe { std::slice::from_raw_parts(ptr as *const u8, cap) };
    let frame = Frame::new(w, h, s, pixels, rotation);
    frame
        .validate()
        .map_err(|e| BridgeError::Scan(e.to_string()))?;
    f(&frame)
}

// ---------------------------------------------------------------- verifier

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_verifierNew<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    jwks: JString<'l>,
) -> jlong {
    u.with_env(|env| -> R<jlong> {
        let json = string(env, &jwks, "jwks")?;
        let store =
            TrustStore::from_jwks_json(&json).map_err(|e| BridgeError::Key(e.to_string()))?;
        if store.is_empty() {
            return Err(BridgeError::Key("trust store holds no usable key".into()));
        }
        Ok(handle::new(store))
    })
    .resolve::<ThrowMapped>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_verifierDestroy<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
) {
    u.with_env(|_env| -> R<()> {
        handle::destroy::<TrustStore>(h);
        Ok(())
    })
    .resolve::<ThrowMapped>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_verifierVerify<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    text: JString<'l>,
    now: jlong,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let store = handle::get::<TrustStore>(h)?;
        let text = string(env, &text, "text")?;
        jstr(env, &verified_json(&verify(&text, &store, now)))
    })
    .resolve::<ThrowMapped>()
}

// ---------------------------------------------------------------- scanner

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_scannerNew<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    budget_ms: jint,
    forget_after: jint,
) -> jlong {
    u.with_env(|_env| -> R<jlong> {
        let budget = non_negative(budget_ms, "budgetMs")? as u64;
        let forget = non_negative(forget_after, "forgetAfterFrames")? as u64;
        let opts = ScanOptions {
            budget: Duration::from_millis(budget),
            retry: true,
        };
        Ok(handle::new(ScanSession::new(opts, forget)))
    })
    .resolve::<ThrowMapped>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_scannerDestroy<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
) {
    u.with_env(|_env| -> R<()> {
        handle::destroy::<ScanSession>(h);
        Ok(())
    })
    .resolve::<ThrowMapped>()
}

/// Feed a camera frame: JSON array of new codes, or null when the frame was dropped.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_scannerFeed<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    buf: JByteBuffer<'l>,
    width: jint,
    height: jint,
    row_stride: jint,
    rotation: jint,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let session = handle::get::<ScanSession>(h)?;
        let fed = with_frame(env, &buf, (width, height, row_stride, rotation), |f| {
            session
                .feed(f)
                .map_err(|e| BridgeError::Scan(e.to_string()))
        })?;
        match fed {
            Fed::Dropped => Ok(JString::null()),
            Fed::New(codes) => jstr(env, &Value::Array(codes.iter().map(code_json).collect())),
        }
    })
    .resolve::<ThrowMapped>()
}

/// Scan one frame (no session): JSON array of codes.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_scanFrame<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    buf: JByteBuffer<'l>,
    width: jint,
    height: jint,
    row_stride: jint,
    rotation: jint,
    budget_ms: jint,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let budget = non_negative(budget_ms, "budgetMs")? as u64;
        let opts = ScanOptions {
            budget: Duration::from_millis(budget),
            retry: true,
        };
        let codes = with_frame(env, &buf, (width, height, row_stride, rotation), |f| {
            scan(f, &opts).map_err(|e| BridgeError::Scan(e.to_string()))
        })?;
        jstr(env, &Value::Array(codes.iter().map(code_json).collect()))
    })
    .resolve::<ThrowMapped>()
}

/// Benchmark support: scan the same frame `iterations` times inside Rust and return the
/// nanoseconds taken, so the JNI overhead can be measured in the same run.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_benchScanLoop<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    buf: JByteBuffer<'l>,
    width: jint,
    height: jint,
    row_stride: jint,
    iterations: jint,
) -> jlong {
    u.with_env(|env| -> R<jlong> {
        let n = non_negative(iterations, "iterations")?;
        with_frame(env, &buf, (width, height, row_stride, 0), |f| {
            let t = std::time::Instant::now();
            for _ in 0..n {
                std::hint::black_box(
                    scan(f, &ScanOptions::default())
                        .map_err(|e| BridgeError::Scan(e.to_string()))?,
                );
            }
            Ok(i64::try_from(t.elapsed().as_nanos()).unwrap_or(i64::MAX))
        })
    })
    .resolve::<ThrowMapped>()
}

// ---------------------------------------------------------------- ledger

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_ledgerOpen<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    path: JString<'l>,
) -> jlong {
    u.with_env(|env| -> R<jlong> {
        let path = string(env, &path, "path")?;
        Ok(handle::new(Ledger::open(std::path::Path::new(&path))?))
    })
    .resolve::<ThrowMapped>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_ledgerDestroy<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
) {
    u.with_env(|_env| -> R<()> {
        handle::destroy::<Ledger>(h);
        Ok(())
    })
    .resolve::<ThrowMapped>()
}

fn parse_request(json: Option<String>) -> R<RedeemRequest> {
    let Some(json) = json else {
        return Ok(RedeemRequest::Whole);
    };
    let v: Value = serde_json::from_str(&json)
        .map_err(|_| BridgeError::BadArgument("request is not JSON".into()))?;
    let bad = |m: &str| BridgeError::BadArgument(format!("request: {m}"));
    match v["kind"].as_str() {
        Some("whole") => Ok(RedeemRequest::Whole),
        Some("amount") => {
            Ok(RedeemRequest::Amount(v["amount"].as_u64().ok_or_else(
                || bad("amount must be a non-negative integer"),
            )?))
        }
        Some("items") => {
            let items = v["items"]
                .as_array()
                .ok_or_else(|| bad("items must be a list"))?
                .iter()
                .map(|i| {
                    Ok(ItemQty {
                        code: i["code"]
                            .as_str()
                            .ok_or_else(|| bad("item code"))?
                            .to_owned(),
                        quantity: i["quantity"].as_u64().ok_or_else(|| bad("item quantity"))?,
                    })
                })
                .collect::<R<Vec<_>>>()?;
            Ok(RedeemRequest::Items(items))
        }
        _ => Err(bad("kind must be whole, amount or items")),
    }
}

/// Verify and redeem in one call. Throws `InvalidVoucherException` or a refusal exception.
#[allow(clippy::too_many_arguments)]
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_ledgerRedeem<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    verifier: jlong,
    text: JString<'l>,
    provider: JString<'l>,
    category: JString<'l>,
    device: JString<'l>,
    request: JString<'l>,
    now: jlong,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        let store = handle::get::<TrustStore>(verifier)?;
        let text = string(env, &text, "text")?;
        let provider = string(env, &provider, "provider")?;
        let device = string(env, &device, "device")?;
        let category = opt_string(env, &category)?;
        let req = parse_request(opt_string(env, &request)?)?;
        let v = verify(&text, &store, now).map_err(|e| BridgeError::Invalid {
            stage: e.stage().as_str(),
            message: e.to_string(),
        })?;
        let who = Redeemer {
            provider: &provider,
            category: category.as_deref(),
            device: &device,
        };
        let r = ledger.redeem(&v, &who, &req, now)?;
        jstr(env, &json!({"entry": r.entry, "remaining": r.remaining}))
    })
    .resolve::<ThrowMapped>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_ledgerVoid<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    entry_id: JString<'l>,
    provider: JString<'l>,
    device: JString<'l>,
    now: jlong,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        let id = string(env, &entry_id, "entryId")?;
        let provider = string(env, &provider, "provider")?;
        let device = string(env, &device, "device")?;
        let e = ledger.void(
            &id,
            &Redeemer {
                provider: &provider,
                category: None,
                device: &device,
            },
            now,
        )?;
        jstr(env, &json!(e))
    })
    .resolve::<ThrowMapped>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_ledgerEntries<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    after: jlong,
    limit: jint,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        let entries = ledger.entries(after, non_negative(limit, "limit")?)?;
        jstr(env, &json!(entries))
    })
    .resolve::<ThrowMapped>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_ledgerOutbox<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    limit: jint,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        let entries = ledger.outbox(non_negative(limit, "limit")?)?;
        jstr(env, &json!(entries))
    })
    .resolve::<ThrowMapped>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_ledgerMarkSynced<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    ids: JString<'l>,
    now: jlong,
) -> jint {
    u.with_env(|env| -> R<jint> {
        let ledger = handle::get::<Ledger>(h)?;
        let ids: Vec<String> = serde_json::from_str(&string(env, &ids, "ids")?)
            .map_err(|_| BridgeError::BadArgument("ids must be a JSON list of strings".into()))?;
        let n = ledger.mark_synced(&ids, now, None)?;
        Ok(jint::try_from(n).unwrap_or(jint::MAX))
    })
    .resolve::<ThrowMapped>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_ledgerAddRevocations<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
    json: JString<'l>,
) -> jint {
    u.with_env(|env| -> R<jint> {
        let ledger = handle::get::<Ledger>(h)?;
        let v: Value = serde_json::from_str(&string(env, &json, "revocations")?)
            .map_err(|_| BridgeError::BadArgument("revocations must be JSON".into()))?;
        let bad = || {
            BridgeError::BadArgument(
                "revocations: [{\"id\": 32 hex digits, \"revoked_at\": seconds}]".into(),
            )
        };
        let list = v
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|r| {
                Ok((
                    VoucherId::from_hex(r["id"].as_str().ok_or_else(bad)?).ok_or_else(bad)?,
                    r["revoked_at"].as_i64().ok_or_else(bad)?,
                ))
            })
            .collect::<R<Vec<_>>>()?;
        Ok(jint::try_from(ledger.add_revocations(&list)?).unwrap_or(jint::MAX))
    })
    .resolve::<ThrowMapped>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_ledgerVerifyChain<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        let v = match ledger.verify_chain()? {
            Ok(rep) => json!({"intact": true, "entries": rep.entries}),
            Err(e) => json!({"intact": false, "seq": e.seq, "problem": e.problem}),
        };
        jstr(env, &v)
    })
    .resolve::<ThrowMapped>()
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_ledgerStats<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    h: jlong,
) -> JString<'l> {
    u.with_env(|env| -> R<JString<'l>> {
        let ledger = handle::get::<Ledger>(h)?;
        jstr(env, &json!(ledger.stats()?))
    })
    .resolve::<ThrowMapped>()
}

// ---------------------------------------------------------------- diagnostics

/// Boundary self-test: 0 returns 42, 1 panics, 2 fails with a ledger error. Lets the SDK's tests
/// prove that a panic becomes `NativePanicException` and an error its mapped exception, with
/// the VM still running.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_evoucher_sdk_Native_selfTest<'l>(
    mut u: EnvUnowned<'l>,
    _c: JClass<'l>,
    kind: jint,
) -> jint {
    u.with_env(|_env| -> R<jint> {
        match kind {
            0 => Ok(42),
            #[allow(clippy::panic)]
            1 => panic!("deliberate panic from selfTest"),
            _ => Err(BridgeError::Ledger("deliberate error from selfTest".into())),
        }
    })
    .resolve::<ThrowMapped>()
}
