//! Trust stores: the issuer public keys a verifier accepts, read from a JWKS.
//!
//! RFC 7517 §5: a JWK Set may hold keys an implementation cannot use (another `kty`, `use:
//! enc`, an RSA key under 2048 bits, an unknown `alg`, missing or malformed members). Such keys
//! are skipped, each with its reason ([`SkippedKey`]); a voucher signed by one of them is refused
//! with that reason. A store is refused whole only when no usable key remains, or when it holds
//! a private key (a leak, not a key to trust).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{KeyError, VerifyError};
pub use crate::keys::TrustedKey;
use crate::keys::{Jwk, Jwks, JwtKey, Kid, Source};

/// A key of a JWKS that the store does not use, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedKey {
    /// The key's `kid` as written (for Ed25519 keys without one: derived from `x` when it can
    /// be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    pub kty: String,
    pub reason: String,
}

/// The set of issuer keys a verifier trusts, by kid: Ed25519 keys for `EV1:` vouchers, RSA and
/// P-256 keys for OpenG2P JWT vouchers.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    keys: BTreeMap<Kid, TrustedKey>,
    jwt: BTreeMap<String, JwtKey>,
    default_currency: Option<String>,
    source: Option<Source>,
    skipped: Vec<SkippedKey>,
}

impl TrustStore {
    /// The error for a kid this store does not trust: skipped from its JWKS (with the
    /// reason), or not in it at all.
    pub(crate) fn unknown_kid(&self, kid: &str) -> VerifyError {
        match self.skipped_reason(kid) {
            Some(reason) => VerifyError::KidUntrusted {
                kid: kid.to_owned(),
                reason: reason.to_owned(),
            },
            None => VerifyError::KidUnknown {
                kid: kid.to_owned(),
            },
        }
    }

    /// A store of the given keys. Duplicate kids are refused.
    pub fn from_keys(keys: impl IntoIterator<Item = TrustedKey>) -> Result<Self, KeyError> {
        let mut s = TrustStore::default();
        for k in keys {
            s.add(k)?;
        }
        Ok(s)
    }

    /// Add a key. Duplicate kids are refused.
    pub fn add(&mut self, key: TrustedKey) -> Result<(), KeyError> {
        if self.keys.contains_key(&key.kid) {
            return Err(KeyError::DuplicateKid(key.kid.to_b64()));
        }
        self.keys.insert(key.kid, key);
        Ok(())
    }

    /// Read a JWKS document. Keys evoucher can use are loaded; the others are skipped with
    /// their reason ([`skipped`](Self::skipped)), as RFC 7517 §5 asks. Refused whole: a JWKS
    /// that is not JSON, that holds a private key, or whose keys are all unusable.
    pub fn from_jwks_json(json: &str) -> Result<Self, KeyError> {
        let jwks: Jwks = serde_json::from_str(json).map_err(|e| KeyError::Json(e.to_string()))?;
        let mut s = TrustStore {
            source: jwks.evoucher_source.clone(),
            ..TrustStore::default()
        };
        for jwk in &jwks.keys {
            if jwk.d.is_some() {
                return Err(KeyError::PrivateInTrustStore);
            }
            if let Err(reason) = s.load(jwk) {
                s.skipped.push(SkippedKey {
                    kid: jwk.kid.clone().or_else(|| derived_kid(jwk)),
                    kty: jwk.kty.clone(),
                    reason,
                });
            }
        }
        if !jwks.keys.is_empty() && s.is_empty() {
            return Err(KeyError::NoUsableKey(
                s.skipped
                    .iter()
                    .map(|k| format!("{}: {}", k.kid.as_deref().unwrap_or("(no kid)"), k.reason))
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        Ok(s)
    }

    /// Load one public JWK, or say why it cannot be used.
    fn load(&mut self, jwk: &Jwk) -> Result<(), String> {
        if let Some(u) = jwk.evoucher_use.as_deref() {
            if u != "voucher" {
                return Err(format!(
                    "evoucher_use is {u:?}: a key for {u}s, never for vouchers"
                ));
            }
        }
        if let Some(u) = jwk.use_.as_deref() {
            if u != "sig" {
                return Err(format!("use is {u:?}, not \"sig\""));
            }
        }
        if let Some(ops) = &jwk.key_ops {
            if !ops.iter().any(|o| o == "verify") {
                return Err("key_ops does not include \"verify\"".into());
            }
        }
        if jwk.kty == "OKP" && jwk.crv.as_deref() == Some("Ed25519") {
            let k = TrustedKey::from_jwk(jwk).map_err(|e| e.to_string())?;
            if self.keys.contains_key(&k.kid) {
                return Err("another key of this store has the same kid".into());
            }
            self.keys.insert(k.kid, k);
        } else if jwk.kty == "RSA" || jwk.kty == "EC" {
            let k = JwtKey::from_jwk(jwk).map_err(|e| e.to_string())?;
            if self.jwt.contains_key(&k.kid) {
                return Err("another key of this store has the same kid".into());
            }
            self.jwt.insert(k.kid.clone(), k);
        } else {
            return Err(format!(
                "key type {}{} is not used by evoucher",
                jwk.kty,
                jwk.crv
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            ));
        }
        Ok(())
    }

    /// The keys of the JWKS that were skipped, with their reasons.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// Why the key with this kid (as written in a JWK, or the base64url of an `EV1:` kid) is
    /// not trusted, when the JWKS held it but the store skipped it.
    pub fn skipped_reason(&self, kid: &str) -> Option<&str> {
        self.skipped
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
            .map(|k| k.reason.as_str())
    }

    /// Add a key for JWT vouchers. Duplicate kids are refused.
    pub fn add_jwt(&mut self, key: JwtKey) -> Result<(), KeyError> {
        if self.jwt.contains_key(&key.kid) {
            return Err(KeyError::DuplicateKid(key.kid));
        }
        self.jwt.insert(key.kid.clone(), key);
        Ok(())
    }

    /// Where and when this store was fetched, for a cached JWKS.
    pub fn source(&self) -> Option<&Source> {
        self.source.as_ref()
    }

    /// JWT keys by kid.
    pub fn jwt_keys(&self) -> &BTreeMap<String, JwtKey> {
        &self.jwt
    }

    /// The currency assumed for JWT vouchers whose key names none (else `XXX`, "no currency").
    pub fn set_default_currency(&mut self, c: Option<String>) {
        self.default_currency = c;
    }

    pub fn default_currency(&self) -> Option<&str> {
        self.default_currency.as_deref()
    }

    /// Read a JWKS file.
    pub fn read(path: &std::path::Path) -> Result<Self, KeyError> {
        Self::from_jwks_json(&std::fs::read_to_string(path)?)
    }

    /// The store as a JWKS document.
    pub fn to_jwks(&self) -> Jwks {
        Jwks {
            keys: self.keys.values().map(TrustedKey::to_jwk).collect(),
            evoucher_source: None,
        }
    }

    pub fn get(&self, kid: &Kid) -> Option<&TrustedKey> {
        self.keys.get(kid)
    }

    /// Look a key up by raw kid bytes (any length; only 8-byte kids can match).
    pub fn get_bytes(&self, kid: &[u8]) -> Option<&TrustedKey> {
        let k: [u8; 8] = kid.try_into().ok()?;
        self.keys.get(&Kid(k))
    }

    /// Number of keys, of every kind.
    pub fn len(&self) -> usize {
        self.keys.len() + self.jwt.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn keys(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keys.values()
    }
}

/// The kid an Ed25519 JWK without one would have (its `x` hashed), when `x` can be read.
fn derived_kid(jwk: &Jwk) -> Option<String> {
    use base64::Engine;
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwk.x.as_deref()?)
        .ok()?;
    let x: [u8; 32] = x.try_into().ok()?;
    (jwk.kty == "OKP").then(|| Kid::of(&x).to_b64())
}
