//! Typed errors. Messages name a stage and a reason, never key material or beneficiary data.

use serde::Serialize;

/// The stage of verification, in the order they run. A failure names the first stage that
/// refused the voucher; every earlier stage passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Size limit on the raw text, checked before anything else.
    Input,
    /// The `EV1:` prefix.
    Prefix,
    /// Base45 (RFC 9285) decoding.
    Base45,
    /// zlib (RFC 1950) decompression (skipped for an uncompressed body).
    Zlib,
    /// COSE_Sign1 structure (RFC 9052).
    Cose,
    /// Compact JWS structure (RFC 7515), for OpenG2P JWT vouchers.
    Jws,
    /// The algorithm in the protected header.
    Alg,
    /// The key id: present, protected and known to the trust store.
    Kid,
    /// The Ed25519 signature (strict).
    Signature,
    /// The CWT claims and the voucher claim.
    Claims,
    /// `nbf` is still in the future.
    NotYetValid,
    /// `exp` has passed.
    Expired,
}

impl Stage {
    /// The stages of a JWT voucher, in order.
    pub const JWT: [Stage; 9] = [
        Stage::Input,
        Stage::Prefix,
        Stage::Jws,
        Stage::Alg,
        Stage::Kid,
        Stage::Signature,
        Stage::Claims,
        Stage::NotYetValid,
        Stage::Expired,
    ];

    /// Every stage of an `EV1:` voucher, in order.
    pub const ALL: [Stage; 11] = [
        Stage::Input,
        Stage::Prefix,
        Stage::Base45,
        Stage::Zlib,
        Stage::Cose,
        Stage::Alg,
        Stage::Kid,
        Stage::Signature,
        Stage::Claims,
        Stage::NotYetValid,
        Stage::Expired,
    ];

    /// The stable snake_case name used in JSON, test vectors and other languages.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Input => "input",
            Stage::Prefix => "prefix",
            Stage::Base45 => "base45",
            Stage::Zlib => "zlib",
            Stage::Cose => "cose",
            Stage::Jws => "jws",
            Stage::Alg => "alg",
            Stage::Kid => "kid",
            Stage::Signature => "signature",
            Stage::Claims => "claims",
            Stage::NotYetValid => "not_yet_valid",
            Stage::Expired => "expired",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a voucher text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("input is {len} bytes, over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("text is neither an EV1: voucher nor a JWT")]
    Prefix,
    #[error("body is not valid Base45: {0}")]
    Base45(&'static str),
    #[error("body is not a valid zlib stream: {0}")]
    Zlib(&'static str),
    #[error("not a valid COSE_Sign1: {0}")]
    Cose(String),
    #[error("not a valid JWS: {0}")]
    Jws(&'static str),
    #[error("algorithm refused: {0}")]
    Alg(&'static str),
    #[error("key id refused: {0}")]
    Kid(&'static str),
    #[error("key id {kid} is not in the trust store")]
    KidUnknown { kid: String },
    #[error("key id {kid} is in the trust store but not trusted: {reason}")]
    KidUntrusted { kid: String, reason: String },
    #[error("signature does not verify")]
    Signature,
    #[error("claims refused: {0}")]
    Claims(#[from] ClaimsError),
    #[error("voucher is not valid before {} (now {})", crate::time::rfc3339(*nbf), crate::time::rfc3339(*now))]
    NotYetValid { nbf: i64, now: i64 },
    #[error("voucher expired at {} (now {})", crate::time::rfc3339(*exp), crate::time::rfc3339(*now))]
    Expired { exp: i64, now: i64 },
}

impl VerifyError {
    /// The stage that refused the voucher.
    pub fn stage(&self) -> Stage {
        match self {
            VerifyError::TooLarge { .. } => Stage::Input,
            VerifyError::Prefix => Stage::Prefix,
            VerifyError::Base45(_) => Stage::Base45,
            VerifyError::Zlib(_) => Stage::Zlib,
            VerifyError::Cose(_) => Stage::Cose,
            VerifyError::Jws(_) => Stage::Jws,
            VerifyError::Alg(_) => Stage::Alg,
            VerifyError::Kid(_)
            | VerifyError::KidUnknown { .. }
            | VerifyError::KidUntrusted { .. } => Stage::Kid,
            VerifyError::Signature => Stage::Signature,
            VerifyError::Claims(_) => Stage::Claims,
            VerifyError::NotYetValid { .. } => Stage::NotYetValid,
            VerifyError::Expired { .. } => Stage::Expired,
        }
    }
}

/// Why the claims (CWT and the voucher claim) were refused. Names the claim, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("payload is not a CBOR claims map: {0}")]
    NotClaims(String),
    #[error("required claim `{0}` is missing")]
    Missing(&'static str),
    #[error("claim `{0}` has the wrong type")]
    WrongType(&'static str),
    #[error("claim `{0}` is invalid: {1}")]
    Invalid(&'static str, &'static str),
    #[error("claim `{0}` holds a duplicate key")]
    DuplicateKey(&'static str),
    #[error("voucher version {0} is not supported (this build reads version 1)")]
    UnsupportedVersion(u64),
    #[error("voucher has neither a value nor items")]
    NoEntitlement,
    #[error("issuer does not match the trust store entry for this key")]
    IssuerMismatch,
    #[error("voucher was issued outside the validity of its key")]
    KeyNotValidAtIssue,
}

/// Problems with keys and trust stores (files, JWK members).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("JSON is not a valid JWK/JWKS: {0}")]
    Json(String),
    #[error("key member `{0}` is missing or malformed")]
    Member(&'static str),
    #[error("key type is not supported: {0}")]
    Unsupported(String),
    #[error("alg {0:?} is not one evoucher verifies with this key type")]
    Alg(String),
    #[error("no key of the JWKS can be used: {0}")]
    NoUsableKey(String),
    #[error("public key is not a valid Ed25519 point, or has small order")]
    BadPoint,
    #[error("kid does not match the key (expected {expected})")]
    KidMismatch { expected: String },
    #[error("duplicate kid {0} in trust store")]
    DuplicateKid(String),
    #[error("trust store holds a private key (member `d`): refusing to use it as a trust store")]
    PrivateInTrustStore,
    #[error("file already exists: {0}")]
    Exists(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("no randomness available from the operating system")]
    Rng,
}

/// Problems encoding a voucher (issuing side).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("voucher is invalid: {0}")]
    Claims(#[from] ClaimsError),
    #[error("CBOR encoding failed")]
    Cbor,
    #[error("voucher text is {0} bytes, over the 4096-byte limit")]
    TooLarge(usize),
    #[error("QR encoding failed: {0}")]
    Qr(String),
    #[error("image encoding failed: {0}")]
    Image(String),
}
