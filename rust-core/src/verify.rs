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

/// A voucher whose signature and claims checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub voucher: Voucher,
    /// The key that signed it.
    pub kid: Kid,
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

/// Verify a voucher text at time `now` (seconds since the epoch). Stages run in the order of
/// [`Stage`]; `alg` and `kid` are checked before the signature, the signature before the claims
/// are read.
pub fn verify(input: &str, trust: &TrustStore, now: i64) -> Result<Verified, VerifyError> {
    let d = decode(input)?;
    let kid = cose::voucher_kid(&d.sign1)?;
    let key = trust
        .get_bytes(kid)
        .ok_or_else(|| VerifyError::KidUnknown {
            kid: hex::encode(kid),
        })?;
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
        kid: key.kid,
        text: input.to_owned(),
    })
}

/// The time stages alone: not yet valid, expired.
pub fn check_time(v: &Voucher, now: i64) -> Result<(), VerifyError> {
    if now < v.valid_from() {
        return Err(VerifyError::NotYetValid {
            nbf: v.valid_from(),
            now,
        });
    }
    if now >= v.exp {
        return Err(VerifyError::Expired { exp: v.exp, now });
    }
    Ok(())
}

/// The pass/fail/not-reached state of each stage for a result, as in the test vectors.
pub fn stage_flags(result: &Result<Verified, VerifyError>) -> Vec<(Stage, Option<bool>)> {
    let failed = result.as_ref().err().map(VerifyError::stage);
    Stage::ALL
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
    pub length: usize,
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
