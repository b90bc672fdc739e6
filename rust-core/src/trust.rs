//! Trust stores: the issuer public keys a verifier accepts, read from a JWKS.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;

use crate::error::KeyError;
use crate::jwt::JwtKey;
use crate::keys::{check_kid, check_okp, decode32, Jwk, Jwks, Kid};

/// A trusted issuer key with its optional restrictions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    pub kid: Kid,
    pub key: VerifyingKey,
    /// If set, only vouchers whose `iss` equals this are accepted under this key.
    pub iss: Option<String>,
    /// If set, only vouchers issued (`iat`) at or after this second.
    pub nbf: Option<i64>,
    /// If set, only vouchers issued (`iat`) before this second.
    pub exp: Option<i64>,
}

impl TrustedKey {
    /// Read one public Ed25519 JWK.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        check_okp(jwk)?;
        if jwk.d.is_some() {
            return Err(KeyError::PrivateInTrustStore);
        }
        let x = decode32(jwk.x.as_deref().ok_or(KeyError::Member("x"))?, "x")?;
        let key = VerifyingKey::from_bytes(&x).map_err(|_| KeyError::BadPoint)?;
        if key.is_weak() {
            return Err(KeyError::BadPoint);
        }
        let kid = Kid::of(&x);
        check_kid(jwk, &kid)?;
        Ok(TrustedKey {
            kid,
            key,
            iss: jwk.iss.clone(),
            nbf: jwk.nbf,
            exp: jwk.exp,
        })
    }

    pub fn to_jwk(&self) -> Jwk {
        use base64::Engine;
        Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.key.as_bytes())),
            kid: Some(self.kid.to_b64()),
            alg: Some("EdDSA".into()),
            iss: self.iss.clone(),
            nbf: self.nbf,
            exp: self.exp,
            d: None,
            ..Jwk::default()
        }
    }
}

/// The set of issuer keys a verifier trusts, by kid: Ed25519 keys for `EV1:` vouchers, RSA and
/// P-256 keys for OpenG2P JWT vouchers.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    keys: BTreeMap<Kid, TrustedKey>,
    jwt: BTreeMap<String, JwtKey>,
    default_currency: Option<String>,
    source: Option<crate::fetch::Source>,
    skipped: usize,
}

impl TrustStore {
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

    /// Read a JWKS document. Ed25519 keys are loaded (a malformed one is an error); keys of
    /// other types are skipped and counted in [`skipped`](Self::skipped).
    pub fn from_jwks_json(json: &str) -> Result<Self, KeyError> {
        let jwks: Jwks = serde_json::from_str(json).map_err(|e| KeyError::Json(e.to_string()))?;
        let mut s = TrustStore {
            source: jwks.evoucher_source.clone(),
            ..TrustStore::default()
        };
        for jwk in &jwks.keys {
            if jwk.kty == "OKP" && jwk.crv.as_deref() == Some("Ed25519") {
                s.add(TrustedKey::from_jwk(jwk)?)?;
            } else if jwk.kty == "RSA" || (jwk.kty == "EC" && jwk.crv.as_deref() == Some("P-256")) {
                s.add_jwt(JwtKey::from_jwk(jwk)?)?;
            } else if jwk.d.is_some() {
                return Err(KeyError::PrivateInTrustStore);
            } else {
                s.skipped += 1;
            }
        }
        Ok(s)
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
    pub fn source(&self) -> Option<&crate::fetch::Source> {
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

    /// Keys in the JWKS of types evoucher does not use (not loaded).
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    pub fn keys(&self) -> impl Iterator<Item = &TrustedKey> {
        self.keys.values()
    }
}
