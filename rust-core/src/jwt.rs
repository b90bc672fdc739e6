//! OpenG2P vouchers: a compact JWS (RFC 7515) holding a JWT (RFC 7519), signed RS256, PS256 or
//! ES256 by the program's key manager, verified offline against RSA (2048 bits and up) and
//! P-256 keys from a JWKS, and mapped into the same [`Voucher`] model as ours.
//!
//! Refused: `alg: none`, every HMAC alg (no shared secrets: a public key must never be usable
//! as an HMAC key), any alg other than RS256/PS256/ES256, an alg that does not match the key's
//! type, a missing or unknown kid, a `crit` header, base64url that is not canonical (padding,
//! other alphabet, non-zero trailing bits), JSON with duplicate members, and anything over
//! 4 KiB.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{ClaimsError, VerifyError};
pub use crate::keys::{JwtKey, JwtKeyKind, MAX_RSA_BITS, MIN_RSA_BITS};
use crate::trust::TrustStore;
use crate::voucher::{currency_exponent, Amount, Beneficiary, RedemptionRule, Voucher, VoucherId};

/// The algorithms accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlg {
    Rs256,
    Ps256,
    Es256,
}

impl JwsAlg {
    fn parse(s: &str) -> Result<Self, VerifyError> {
        match s {
            "RS256" => Ok(JwsAlg::Rs256),
            "PS256" => Ok(JwsAlg::Ps256),
            "ES256" => Ok(JwsAlg::Es256),
            "none" | "None" | "NONE" => Err(VerifyError::Alg("alg none (unsigned) is refused")),
            a if a.starts_with("HS") => Err(VerifyError::Alg("HMAC algorithms are refused")),
            _ => Err(VerifyError::Alg("only RS256, PS256 and ES256 are accepted")),
        }
    }
}

/// Verify a signature over `msg` with a JWT key. `sig` is the raw JWS signature (RSA: modulus
/// length; ES256: 64 bytes r‖s).
pub fn verify_signature(alg: JwsAlg, key: &JwtKeyKind, msg: &[u8], sig: &[u8]) -> bool {
    use rsa::signature::Verifier;
    match (alg, key) {
        (JwsAlg::Rs256, JwtKeyKind::Rsa(k)) => {
            let Ok(s) = rsa::pkcs1v15::Signature::try_from(sig) else {
                return false;
            };
            rsa::pkcs1v15::VerifyingKey::<Sha256>::new(k.clone())
                .verify(msg, &s)
                .is_ok()
        }
        (JwsAlg::Ps256, JwtKeyKind::Rsa(k)) => {
            let Ok(s) = rsa::pss::Signature::try_from(sig) else {
                return false;
            };
            rsa::pss::VerifyingKey::<Sha256>::new(k.clone())
                .verify(msg, &s)
                .is_ok()
        }
        (JwsAlg::Es256, JwtKeyKind::P256(k)) => {
            let Ok(s) = p256::ecdsa::Signature::from_slice(sig) else {
                return false;
            };
            k.verify(msg, &s).is_ok()
        }
        _ => false,
    }
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// The claims of an OpenG2P voucher, as the PBMS writes them.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Claims {
    iss: String,
    sub: String,
    #[serde(default)]
    aud: Option<String>,
    exp: i64,
    iat: i64,
    #[serde(default)]
    nbf: Option<i64>,
    amount: serde_json::Value,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    b_name: Option<String>,
}

/// The decoded parts of a compact JWS, before any trust.
#[derive(Debug, Clone)]
pub struct Jws {
    pub header: serde_json::Value,
    pub claims: serde_json::Value,
    pub signing_input_len: usize,
    pub signature: Vec<u8>,
}

/// True when the text is shaped like a compact JWS with a JSON header (`eyJ` is base64url of
/// `{"`; Base45 has no lower-case letters, so an `EV1:` body never starts that way).
pub fn looks_like_jws(text: &str) -> bool {
    text.starts_with("eyJ")
}

fn canonical_b64(part: &str) -> Result<Vec<u8>, VerifyError> {
    B64.decode(part)
        .map_err(|_| VerifyError::Jws("a part is not canonical base64url"))
}

/// Split and decode a compact JWS (the `jws` stage).
pub fn decode(text: &str) -> Result<(Jws, Header2), VerifyError> {
    let mut parts = text.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Jws("not three dot-separated parts"));
    };
    let hb = canonical_b64(h)?;
    let pb = canonical_b64(p)?;
    let sig = canonical_b64(s)?;
    let header_v: serde_json::Value =
        serde_json::from_slice(&hb).map_err(|_| VerifyError::Jws("header is not JSON"))?;
    let header: Header = serde_json::from_slice(&hb).map_err(|_| {
        VerifyError::Jws("header is not a JWS header (alg missing, or a member twice)")
    })?;
    let claims: serde_json::Value =
        serde_json::from_slice(&pb).map_err(|_| VerifyError::Jws("payload is not JSON"))?;
    Ok((
        Jws {
            header: header_v,
            claims,
            signing_input_len: h.len() + 1 + p.len(),
            signature: sig,
        },
        Header2 {
            alg: header.alg,
            kid: header.kid,
            crit: header.crit.is_some(),
            payload: pb,
        },
    ))
}

/// The header fields the verifier needs, plus the payload bytes.
#[derive(Debug, Clone)]
pub struct Header2 {
    pub alg: String,
    pub kid: Option<String>,
    pub crit: bool,
    pub payload: Vec<u8>,
}

/// Verify an OpenG2P JWT voucher. Returns the voucher, the key's kid and its currency.
pub fn verify(text: &str, trust: &TrustStore, now: i64) -> Result<(Voucher, String), VerifyError> {
    let default_currency = trust.default_currency();
    let (jws, h) = decode(text)?;
    if h.crit {
        return Err(VerifyError::Jws(
            "critical header parameters are not supported",
        ));
    }
    let alg = JwsAlg::parse(&h.alg)?;
    let kid = h
        .kid
        .as_deref()
        .filter(|k| !k.is_empty())
        .ok_or(VerifyError::Kid("missing"))?;
    let key = trust
        .jwt_keys()
        .get(kid)
        .ok_or_else(|| trust.unknown_kid(kid))?;
    match (alg, &key.kind) {
        (JwsAlg::Rs256 | JwsAlg::Ps256, JwtKeyKind::Rsa(_))
        | (JwsAlg::Es256, JwtKeyKind::P256(_)) => {}
        _ => return Err(VerifyError::Alg("alg does not match the key type")),
    }
    let signing_input = &text.as_bytes()[..jws.signing_input_len];
    if !verify_signature(alg, &key.kind, signing_input, &jws.signature) {
        return Err(VerifyError::Signature);
    }
    let claims: Claims = serde_json::from_slice(&h.payload)
        .map_err(|_| ClaimsError::NotClaims("not an OpenG2P voucher claims set (a required claim is missing, of the wrong type, or given twice)".into()))?;
    if claims.kind != "voucher" {
        return Err(ClaimsError::Invalid("type", "not \"voucher\"").into());
    }
    if let Some(iss) = &key.iss {
        if *iss != claims.iss {
            return Err(ClaimsError::IssuerMismatch.into());
        }
    }
    let currency = key
        .currency
        .as_deref()
        .or(default_currency)
        .unwrap_or("XXX")
        .to_owned();
    let amount = match &claims.amount {
        serde_json::Value::String(s) => parse_decimal(s, currency_exponent(&currency))?,
        serde_json::Value::Number(n) => {
            parse_decimal(&n.to_string(), currency_exponent(&currency))?
        }
        _ => return Err(ClaimsError::WrongType("amount").into()),
    };
    let code = claims.code.unwrap_or_default();
    let v = Voucher {
        id: derive_id(&claims.iss, &claims.sub, &code),
        program: claims.iss.clone(),
        iss: claims.iss,
        aud: claims.aud,
        iat: claims.iat,
        nbf: claims.nbf,
        exp: claims.exp,
        cycle: None,
        beneficiary: Beneficiary {
            id: claims.sub,
            name: claims.b_name,
        },
        value: Some(Amount { amount, currency }),
        items: Vec::new(),
        rule: RedemptionRule::Single,
        categories: Vec::new(),
    };
    v.validate()?;
    v.check_time(now)?;
    Ok((v, kid.to_owned()))
}

/// The voucher id of an OpenG2P voucher: the first 16 bytes of
/// SHA-256("evoucher/openg2p/v1" 0 iss 0 sub 0 code).
pub fn derive_id(iss: &str, sub: &str, code: &str) -> VoucherId {
    let mut h = Sha256::new();
    for part in ["evoucher/openg2p/v1", iss, sub, code] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    VoucherId(id)
}

/// "5000.0" with exponent 2 → 500000. Digits, optionally a point and digits; extra fractional
/// digits must be zeros. No sign, no exponent, no spaces.
pub fn parse_decimal(s: &str, exponent: u32) -> Result<u64, ClaimsError> {
    let bad = ClaimsError::Invalid("amount", "not a decimal amount in this currency");
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (s.contains('.') && frac.is_empty())
    {
        return Err(bad);
    }
    let e = exponent as usize;
    let (keep, rest) = frac.split_at(frac.len().min(e));
    if rest.bytes().any(|b| b != b'0') {
        return Err(ClaimsError::Invalid(
            "amount",
            "more decimals than the currency has",
        ));
    }
    let mut digits = int.to_owned();
    digits.push_str(keep);
    for _ in keep.len()..e {
        digits.push('0');
    }
    let v: u64 = digits.parse().map_err(|_| bad)?;
    if v == 0 {
        return Err(ClaimsError::Invalid("value.amount", "zero"));
    }
    Ok(v)
}
