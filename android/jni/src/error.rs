//! The one mapping table from bridge errors to Java exceptions, and the error policy every entry
//! point resolves through: errors become exceptions of our SDK, panics become
//! `NativePanicException`; nothing ever aborts the VM.

use std::any::Any;

use evoucher_core::ledger::{LedgerError, RedeemError, Refusal};
use jni::errors::ErrorPolicy;
use jni::strings::JNIString;
use jni::Env;

const PKG: &str = "org/evoucher/sdk/";

/// Everything an entry point can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("{0}")]
    BadArgument(String),
    #[error("object is closed")]
    Closed,
    #[error("{0}")]
    Refused(Refusal),
    #[error("voucher is invalid at stage {stage}: {message}")]
    Invalid {
        stage: &'static str,
        message: String,
    },
    #[error("{0}")]
    Ledger(String),
    #[error("{0}")]
    Key(String),
    #[error("{0}")]
    Scan(String),
    #[error("{0}")]
    Sync(#[from] evoucher_core::sync::SyncError),
    #[error("JNI: {0}")]
    Jni(#[from] jni::errors::Error),
}

impl From<RedeemError> for BridgeError {
    fn from(e: RedeemError) -> Self {
        match e {
            RedeemError::Refused(r) => BridgeError::Refused(r),
            RedeemError::Ledger(l) => l.into(),
        }
    }
}

impl From<LedgerError> for BridgeError {
    fn from(e: LedgerError) -> Self {
        BridgeError::Ledger(e.to_string())
    }
}

impl BridgeError {
    /// The mapping table: (Java class, JSON details). Every exception of the SDK takes one
    /// String, a JSON object with at least `message` and `reason`.
    fn to_java(&self) -> (String, serde_json::Value) {
        use serde_json::json;
        let msg = self.to_string();
        match self {
            BridgeError::BadArgument(_) => {
                ("java/lang/IllegalArgumentException".into(), json!(msg))
            }
            BridgeError::Closed => ("java/lang/IllegalStateException".into(), json!(msg)),
            BridgeError::Jni(_) => (
                format!("{PKG}NativeException"),
                json!({"message": msg, "reason": "jni"}),
            ),
            BridgeError::Ledger(_) => (
                format!("{PKG}LedgerException"),
                json!({"message": msg, "reason": "ledger"}),
            ),
            BridgeError::Key(_) => (
                format!("{PKG}TrustStoreException"),
                json!({"message": msg, "reason": "trust_store"}),
            ),
            BridgeError::Scan(_) => ("java/lang/IllegalArgumentException".into(), json!(msg)),
            BridgeError::Sync(e) => {
                use evoucher_core::sync::SyncError as S;
                let (reason, status) = match e {
                    S::Status(code, _) => ("status", Some(*code)),
                    S::Protocol(_) => ("protocol", None),
                    S::Http(_) => ("http", None),
                    S::Ledger(_) | S::Io(_) => ("ledger", None),
                };
                (
                    format!("{PKG}SyncException"),
                    json!({"message": msg, "reason": reason, "status": status}),
                )
            }
            BridgeError::Invalid { stage, message } => (
                format!("{PKG}InvalidVoucherException"),
                json!({"message": msg, "reason": "invalid", "stage": stage, "detail": message}),
            ),
            BridgeError::Refused(r) => {
                let class = match r {
                    Refusal::AlreadyRedeemed { .. } => "AlreadyRedeemedException",
                    Refusal::Exhausted
                    | Refusal::InsufficientBalance { .. }
                    | Refusal::InsufficientItems { .. } => "InsufficientBalanceException",
                    Refusal::WrongProvider => "WrongProviderException",
                    Refusal::CategoryNotAllowed => "CategoryNotAllowedException",
                    Refusal::NotYetValid { .. } => "NotYetValidException",
                    Refusal::Expired { .. } => "ExpiredException",
                    Refusal::Revoked { .. } => "RevokedException",
                    Refusal::UnknownItem { .. }
                    | Refusal::NoValue
                    | Refusal::WholeOnly
                    | Refusal::NotWhole(_)
                    | Refusal::WrongCurrency { .. }
                    | Refusal::OutOfRange(_)
                    | Refusal::InvalidRequest(_) => "RedemptionRefusedException",
                };
                let mut details = serde_json::to_value(r).unwrap_or_else(|_| json!({}));
                if let Some(o) = details.as_object_mut() {
                    o.insert("message".into(), json!(r.to_string()));
                    o.insert("reason".into(), json!(r.code()));
                }
                (format!("{PKG}{class}"), details)
            }
        }
    }
}

fn throw(env: &mut Env<'_>, class: &str, message: &str) {
    if env.exception_check() {
        return; // a pending Java exception takes precedence
    }
    let _ = env.throw_new(JNIString::from(class), JNIString::from(message));
}

/// The error policy of every entry point.
#[derive(Debug, Default)]
pub struct ThrowMapped;

impl<T: Default> ErrorPolicy<T, BridgeError> for ThrowMapped {
    type Captures<'unowned_env_local: 'native_method, 'native_method> = ();

    fn on_error<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _cap: &mut Self::Captures<'unowned_env_local, 'native_method>,
        err: BridgeError,
    ) -> jni::errors::Result<T> {
        if let BridgeError::Jni(jni::errors::Error::JavaException) = err {
            return Ok(T::default()); // already thrown
        }
        let (class, details) = err.to_java();
        let message = match &details {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        throw(env, &class, &message);
        Ok(T::default())
    }

    fn on_panic<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _cap: &mut Self::Captures<'unowned_env_local, 'native_method>,
        payload: Box<dyn Any + Send + 'static>,
    ) -> jni::errors::Result<T> {
        // The payload may describe internal state: it is not passed on. Dropping it could
        // itself panic, so it is forgotten.
        std::mem::forget(payload);
        throw(
            env,
            &format!("{PKG}NativePanicException"),
            r#"{"message":"internal error in the native library","reason":"panic"}"#,
        );
        Ok(T::default())
    }
}
