//! Issuer keys: Ed25519, key ids, and their JWK form (RFC 7517, RFC 8037).

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::KeyError;

/// A key id: the first 8 bytes of SHA-256 of the raw 32-byte Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid(pub [u8; 8]);

impl Kid {
    /// The kid of a raw Ed25519 public key.
    pub fn of(public: &[u8; 32]) -> Kid {
        let h = Sha256::digest(public);
        let mut k = [0u8; 8];
        k.copy_from_slice(&h[..8]);
        Kid(k)
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// base64url without padding, as in the JWK `kid` member.
    pub fn to_b64(&self) -> String {
        B64.encode(self.0)
    }
}

impl std::fmt::Debug for Kid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kid({})", self.to_hex())
    }
}
impl std::fmt::Display for Kid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A key id as people and tools see it, one form everywhere: the base64url of an `EV1:` issuer
/// key's 8-byte kid (as in its JWK), or a JWK kid as written (OpenG2P's UUIDs).
pub fn kid_text(kid: &[u8]) -> String {
    match std::str::from_utf8(kid) {
        Ok(s) if kid.len() != 8 => s.to_owned(),
        _ => B64.encode(kid),
    }
}

/// A JSON Web Key as evoucher reads and writes it. Unknown members are ignored on input.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Private part. Never printed by `Debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// evoucher extension: the issuer (`iss`) this key may sign for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// evoucher extension: the key signs vouchers issued at or after this second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// evoucher extension: the key signs vouchers issued before this second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// RSA modulus (base64url, big-endian).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// EC y coordinate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// Intended use (RFC 7517 §4.2): keys with `use` other than `sig` are not trusted.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Permitted operations (RFC 7517 §4.3): a key whose list lacks `verify` is not trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    /// evoucher extension: the ISO 4217 currency of amounts in JWT vouchers signed by this key
    /// (OpenG2P vouchers carry an amount without a currency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// evoucher extension: what the key signs, `voucher` (the default when absent) or
    /// `payable` (a program's payables key, never trusted for vouchers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evoucher_use: Option<String>,
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk")
            .field("kty", &self.kty)
            .field("crv", &self.crv)
            .field("kid", &self.kid)
            .field("d", &self.d.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A JWK Set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
    /// Set on a JWKS cached by `evoucher trust fetch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evoucher_source: Option<Source>,
}

/// An issuer's private signing key.
pub struct IssuerKey {
    signing: SigningKey,
    kid: Kid,
    /// Restrictions copied into the public JWK.
    pub iss: Option<String>,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IssuerKey({})", self.kid)
    }
}

impl IssuerKey {
    /// A new key from the operating system's generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(seed.as_mut()).map_err(|_| KeyError::Rng)?;
        Ok(Self::from_seed(*seed))
    }

    /// A key from a 32-byte seed (the RFC 8032 private key). Deterministic: for tests and vectors.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&seed);
        let kid = Kid::of(signing.verifying_key().as_bytes());
        IssuerKey {
            signing,
            kid,
            iss: None,
        }
    }

    pub fn kid(&self) -> Kid {
        self.kid
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// Sign a message (the COSE Sig_structure).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.signing.sign(msg).to_bytes()
    }

    /// The public half as a trust store entry.
    pub fn trusted(&self) -> TrustedKey {
        TrustedKey {
            kid: self.kid,
            key: self.verifying_key(),
            iss: self.iss.clone(),
            nbf: None,
            exp: None,
        }
    }

    /// The public JWK.
    pub fn public_jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some(B64.encode(self.verifying_key().as_bytes())),
            kid: Some(self.kid.to_b64()),
            alg: Some("EdDSA".into()),
            iss: self.iss.clone(),
            ..Jwk::default()
        }
    }

    /// The private JWK (includes `d`). Handle with care.
    pub fn private_jwk(&self) -> Jwk {
        Jwk {
            d: Some(B64.encode(self.signing.to_bytes())),
            ..self.public_jwk()
        }
    }

    /// Read a private key from a JWK.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        check_okp(jwk)?;
        let d = jwk.d.as_deref().ok_or(KeyError::Member("d"))?;
        let seed = Zeroizing::new(decode32(d, "d")?);
        let key = IssuerKey {
            iss: jwk.iss.clone(),
            ..Self::from_seed(*seed)
        };
        if let Some(x) = &jwk.x {
            if decode32(x, "x")? != *key.verifying_key().as_bytes() {
                return Err(KeyError::Member("x"));
            }
        }
        check_kid(jwk, &key.kid)?;
        Ok(key)
    }

    /// Read a private JWK file.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = Zeroizing::new(std::fs::read_to_string(path)?);
        let jwk: Jwk = serde_json::from_str(&text).map_err(|e| KeyError::Json(e.to_string()))?;
        Self::from_jwk(&jwk)
    }

    /// Write the private JWK to a new file with mode 0600. Refuses to overwrite.
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists(path.display().to_string())
            } else {
                KeyError::Io(e)
            }
        })?;
        let json = Zeroizing::new(
            serde_json::to_string_pretty(&self.private_jwk())
                .map_err(|e| KeyError::Json(e.to_string()))?,
        );
        f.write_all(json.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        Ok(())
    }
}

pub(crate) fn check_okp(jwk: &Jwk) -> Result<(), KeyError> {
    if jwk.kty != "OKP" || jwk.crv.as_deref() != Some("Ed25519") {
        return Err(KeyError::Unsupported(format!(
            "kty={} crv={}",
            jwk.kty,
            jwk.crv.as_deref().unwrap_or("-")
        )));
    }
    if let Some(alg) = &jwk.alg {
        if alg != "EdDSA" && alg != "Ed25519" {
            return Err(KeyError::Alg(alg.clone()));
        }
    }
    Ok(())
}

pub(crate) fn check_kid(jwk: &Jwk, kid: &Kid) -> Result<(), KeyError> {
    match &jwk.kid {
        Some(k) if *k != kid.to_b64() => Err(KeyError::KidMismatch {
            expected: kid.to_b64(),
        }),
        _ => Ok(()),
    }
}

/// Decode a base64url (no padding, canonical) value of exactly 32 bytes.
pub(crate) fn decode32(s: &str, member: &'static str) -> Result<[u8; 32], KeyError> {
    let v = B64.decode(s).map_err(|_| KeyError::Member(member))?;
    v.try_into().map_err(|_| KeyError::Member(member))
}

/// Strict Ed25519 verification (RFC 8032 with ed25519-dalek's `verify_strict`: canonical S,
/// no small-order public key or R). Used by the COSE layer; exposed for cross-checks.
pub fn ed25519_verify_strict(key: &VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
    let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
        return false;
    };
    key.verify_strict(msg, &sig).is_ok()
}

/// Where a cached trust store came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub url: String,
    /// Seconds since the epoch.
    pub fetched_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

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

/// The public key types a JWT voucher may be signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKeyKind {
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
}

/// A trusted key for JWT vouchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtKey {
    pub kid: String,
    pub kind: JwtKeyKind,
    /// If set, only tokens with this `iss`.
    pub iss: Option<String>,
    /// The currency of `amount` for this issuer.
    pub currency: Option<String>,
}

/// Smallest RSA modulus accepted.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted (bounds verification cost).
pub const MAX_RSA_BITS: usize = 8192;

fn b64(s: &str, member: &'static str) -> Result<Vec<u8>, KeyError> {
    B64.decode(s).map_err(|_| KeyError::Member(member))
}

impl JwtKey {
    /// Read an RSA or EC P-256 public JWK. A JWK with `d` is refused.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        if jwk.d.is_some() {
            return Err(KeyError::PrivateInTrustStore);
        }
        let kid = jwk
            .kid
            .clone()
            .filter(|k| !k.is_empty())
            .ok_or(KeyError::Member("kid"))?;
        let kind = match jwk.kty.as_str() {
            "RSA" => {
                use rsa::traits::PublicKeyParts;
                let n = rsa::BigUint::from_bytes_be(&b64(
                    jwk.n.as_deref().ok_or(KeyError::Member("n"))?,
                    "n",
                )?);
                let e = rsa::BigUint::from_bytes_be(&b64(
                    jwk.e.as_deref().ok_or(KeyError::Member("e"))?,
                    "e",
                )?);
                let key = rsa::RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
                    .map_err(|_| KeyError::Member("n"))?;
                if key.n().bits() < MIN_RSA_BITS {
                    return Err(KeyError::Unsupported(format!(
                        "RSA key of {} bits (at least {MIN_RSA_BITS})",
                        key.n().bits()
                    )));
                }
                if let Some(alg) = &jwk.alg {
                    if alg != "RS256" && alg != "PS256" {
                        return Err(KeyError::Alg(alg.clone()));
                    }
                }
                JwtKeyKind::Rsa(key)
            }
            "EC" => {
                if jwk.crv.as_deref() != Some("P-256") {
                    return Err(KeyError::Unsupported(format!(
                        "EC curve {}",
                        jwk.crv.as_deref().unwrap_or("-")
                    )));
                }
                let x = b64(jwk.x.as_deref().ok_or(KeyError::Member("x"))?, "x")?;
                let y = b64(jwk.y.as_deref().ok_or(KeyError::Member("y"))?, "y")?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(KeyError::Member("x"));
                }
                let mut sec1 = Vec::with_capacity(65);
                sec1.push(0x04);
                sec1.extend_from_slice(&x);
                sec1.extend_from_slice(&y);
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .map_err(|_| KeyError::BadPoint)?;
                if let Some(alg) = &jwk.alg {
                    if alg != "ES256" {
                        return Err(KeyError::Alg(alg.clone()));
                    }
                }
                JwtKeyKind::P256(key)
            }
            other => return Err(KeyError::Unsupported(format!("kty={other}"))),
        };
        if let Some(c) = &jwk.currency {
            if !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) {
                return Err(KeyError::Member("currency"));
            }
        }
        Ok(JwtKey {
            kid,
            kind,
            iss: jwk.iss.clone(),
            currency: jwk.currency.clone(),
        })
    }
}
