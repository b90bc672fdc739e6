//! Offline verification: text → claims, stage by stage, against a trust store and a clock.

use coset::cwt::ClaimsSet;
use coset::{CborSerializable, CoseSign1};
use serde::Serialize;

use crate::cose;
use crate::error::{ClaimsError, Stage, VerifyError};
use crate::keys::Kid;
use crate::text;
use crate::trust::TrustStore;
use crate::voucher::Voucher;

/// Which wire format a voucher came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `EV1:` (COSE_Sign1, Ed25519).
    Ev1,
    /// An OpenG2P JWT voucher (RS256, PS256, ES256).
    Openg2pJwt,
}

/// The id of the key that signed a voucher.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyId {
    /// 8-byte kid of an Ed25519 issuer key.
    Ed25519(Kid),
    /// The `kid` of a JWK (OpenG2P: a UUID).
    Jwk(String),
}

impl KeyId {
    /// The bytes stored in the ledger: the 8-byte kid, or the JWK kid's UTF-8.
    pub fn as_bytes(&self) -> Vec<u8> {
        match self {
            KeyId::Ed25519(k) => k.0.to_vec(),
            KeyId::Jwk(s) => s.as_bytes().to_vec(),
        }
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyId::Ed25519(k) => f.write_str(&k.to_b64()),
            KeyId::Jwk(s) => f.write_str(s),
        }
    }
}

/// A voucher whose signature and claims checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub voucher: Voucher,
    /// The key that signed it.
    pub kid: KeyId,
    pub format: Format,
    /// The voucher text as it was verified (kept in the ledger so a server can verify again).
    pub text: String,
}

/// The layers of a voucher text up to the parsed COSE_Sign1 (no trust involved).
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The Base45-decoded body (zlib stream, or the COSE bytes when uncompressed).
    pub body: Vec<u8>,
    /// Whether the body was zlib-compressed.
    pub compressed: bool,
    /// The COSE_Sign1 bytes.
    pub cose: Vec<u8>,
    pub sign1: CoseSign1,
}

/// Run the stages input → prefix → base45 → zlib → cose.
pub fn decode(input: &str) -> Result<Decoded, VerifyError> {
    let body45 = text::strip_prefix(input)?;
    let body = text::base45_decode(body45)?;
    let (cose, compressed) = text::decompress(&body)?;
    let sign1 = cose::decode_sign1(&cose)?;
    Ok(Decoded {
        body,
        compressed,
        cose,
        sign1,
    })
}

/// Verify a voucher text at time `now` (seconds since the epoch): an `EV1:` voucher, or an
/// OpenG2P JWT voucher (text starting `eyJ`). Stages run in the order of [`Stage::ALL`] (or
/// [`Stage::JWT`]); `alg` and `kid` are checked before the signature, the signature before the
/// claims are read.
pub fn verify(input: &str, trust: &TrustStore, now: i64) -> Result<Verified, VerifyError> {
    if input.len() > crate::MAX_TEXT_LEN {
        return Err(VerifyError::TooLarge {
            len: input.len(),
            max: crate::MAX_TEXT_LEN,
        });
    }
    if crate::jwt::looks_like_jws(input) {
        let (voucher, kid) = crate::jwt::verify(input, trust, now)?;
        return Ok(Verified {
            voucher,
            kid: KeyId::Jwk(kid),
            format: Format::Openg2pJwt,
            text: input.to_owned(),
        });
    }
    verify_ev1(input, trust, now)
}

/// Verify an `EV1:` voucher only.
pub fn verify_ev1(input: &str, trust: &TrustStore, now: i64) -> Result<Verified, VerifyError> {
    let d = decode(input)?;
    let kid = cose::voucher_kid(&d.sign1)?;
    // A payable (its own prefix, but the same layers) is never read as a voucher.
    if crate::payable::is_payable(&d.sign1) {
        return Err(VerifyError::Cose(
            "this is a signed payable, not a voucher".into(),
        ));
    }
    let key = trust
        .get_bytes(kid)
        .ok_or_else(|| trust.unknown_kid(&crate::keys::kid_text(kid)))?;
    cose::verify_ed25519(&d.sign1, &key.key, b"")?;
    let payload = d.sign1.payload.unwrap_or_default();
    let claims = ClaimsSet::from_slice(&payload)
        .map_err(|e| VerifyError::Claims(ClaimsError::NotClaims(e.to_string())))?;
    let voucher = Voucher::from_claims(claims)?;
    if let Some(iss) = &key.iss {
        if *iss != voucher.iss {
            return Err(ClaimsError::IssuerMismatch.into());
        }
    }
    if key.nbf.is_some_and(|n| voucher.iat < n) || key.exp.is_some_and(|e| voucher.iat >= e) {
        return Err(ClaimsError::KeyNotValidAtIssue.into());
    }
    check_time(&voucher, now)?;
    Ok(Verified {
        voucher,
        kid: KeyId::Ed25519(key.kid),
        format: Format::Ev1,
        text: input.to_owned(),
    })
}

pub use crate::voucher::check_time;

/// The stages that apply to a text: [`Stage::JWT`] for a JWT, else [`Stage::ALL`].
pub fn stages_for(input: &str) -> &'static [Stage] {
    if crate::jwt::looks_like_jws(input) {
        &Stage::JWT
    } else {
        &Stage::ALL
    }
}

/// The pass/fail/not-reached state of each stage for a result, as in the test vectors.
pub fn stage_flags(
    result: &Result<Verified, VerifyError>,
    stages: &[Stage],
) -> Vec<(Stage, Option<bool>)> {
    let failed = result.as_ref().err().map(VerifyError::stage);
    stages
        .iter()
        .map(|&s| {
            let flag = match failed {
                None => Some(true),
                Some(f) if s < f => Some(true),
                Some(f) if s == f => Some(false),
                Some(_) => None,
            };
            (s, flag)
        })
        .collect()
}

/// Every layer of a voucher decoded as far as it goes, without trust: for debugging.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inspection {
    pub format: Option<Format>,
    pub length: usize,
    /// JWT vouchers: the JOSE header, as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jws_header: Option<serde_json::Value>,
    /// JWT vouchers: the claims, as sent (the signature is not checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jws_claims: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compressed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cose_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tagged: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protected: Option<HeaderView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unprotected: Option<HeaderView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<Voucher>,
    /// The first stage that failed, if any (the signature is not checked: no trust store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StageError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeaderView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// The key id as in the JWKS (base64url), the one form people see everywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid_hex: Option<String>,
    pub other_labels: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageError {
    pub stage: Stage,
    pub message: String,
}

impl From<&VerifyError> for StageError {
    fn from(e: &VerifyError) -> Self {
        StageError {
            stage: e.stage(),
            message: e.to_string(),
        }
    }
}

fn header_view(h: &coset::Header) -> HeaderView {
    HeaderView {
        alg: h.alg.as_ref().map(|a| match a {
            coset::RegisteredLabelWithPrivate::Assigned(x) => format!("{x:?}"),
            coset::RegisteredLabelWithPrivate::PrivateUse(i) => i.to_string(),
            coset::RegisteredLabelWithPrivate::Text(t) => t.clone(),
        }),
        kid: (!h.key_id.is_empty()).then(|| crate::keys::kid_text(&h.key_id)),
        kid_hex: (!h.key_id.is_empty()).then(|| hex::encode(&h.key_id)),
        other_labels: h.rest.len()
            + usize::from(h.content_type.is_some())
            + usize::from(!h.crit.is_empty())
            + usize::from(!h.iv.is_empty())
            + usize::from(!h.partial_iv.is_empty())
            + h.counter_signatures.len(),
    }
}

/// Decode every layer that decodes, stopping at the first failure.
pub fn inspect(input: &str) -> Inspection {
    let mut out = Inspection {
        length: input.len(),
        ..Inspection::default()
    };
    if input.len() <= crate::MAX_TEXT_LEN && crate::jwt::looks_like_jws(input) {
        out.format = Some(Format::Openg2pJwt);
        match crate::jwt::decode(input) {
            Ok((jws, _)) => {
                out.jws_header = Some(jws.header);
                out.jws_claims = Some(jws.claims);
                out.signature_hex = Some(hex::encode(&jws.signature));
            }
            Err(e) => out.error = Some((&e).into()),
        }
        return out;
    }
    out.format = Some(Format::Ev1);
    let body45 = match text::strip_prefix(input) {
        Ok(b) => b,
        Err(e) => {
            out.error = Some((&e).into());
            return out;
        }
    };
    out.prefix = input.get(..text::PREFIX.len()).map(str::to_owned);
    let body = match text::base45_decode(body45) {
        Ok(b) => b,
        Err(e) => {
            out.error = Some((&e).into());
            return out;
        }
    };
    out.body_hex = Some(hex::encode(&body));
    let cose_bytes = match text::decompress(&body) {
        Ok((c, compressed)) => {
            out.compressed = Some(compressed);
            c
        }
        Err(e) => {
            out.error = Some((&e).into());
            return out;
        }
    };
    out.cose_hex = Some(hex::encode(&cose_bytes));
    out.tagged = Some(cose_bytes.first() == Some(&0xD2));
    let s = match cose::decode_sign1(&cose_bytes) {
        Ok(s) => s,
        Err(e) => {
            out.error = Some((&e).into());
            return out;
        }
    };
    out.protected = Some(header_view(&s.protected.header));
    out.unprotected = Some(header_view(&s.unprotected));
    out.signature_hex = Some(hex::encode(&s.signature));
    let payload = s.payload.clone().unwrap_or_default();
    out.payload_hex = Some(hex::encode(&payload));
    if let Err(e) = cose::voucher_kid(&s) {
        out.error = Some((&e).into());
        return out;
    }
    match ClaimsSet::from_slice(&payload)
        .map_err(|e| VerifyError::Claims(ClaimsError::NotClaims(e.to_string())))
        .and_then(|c| Voucher::from_claims(c).map_err(VerifyError::from))
    {
        Ok(v) => out.claims = Some(v),
        Err(e) => out.error = Some((&e).into()),
    }
    out
}
