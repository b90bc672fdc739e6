//! The COSE layer: COSE_Sign1 (RFC 9052) with Ed25519, through `coset`.
//!
//! Structure rules: tag 18 or untagged (a doubled or different tag is refused), exactly one
//! CBOR item (trailing bytes refused), an attached payload. Voucher header rules
//! ([`voucher_kid`]): `alg` = EdDSA and `kid` both in the protected header, no critical
//! headers, checked before the signature.

use coset::iana;
use coset::{
    CborSerializable, CoseSign1, Header, RegisteredLabelWithPrivate, TaggedCborSerializable,
};
use ed25519_dalek::VerifyingKey;

use crate::error::VerifyError;
use crate::keys::IssuerKey;

/// Parse a COSE_Sign1 (tag 18 or untagged).
pub fn decode_sign1(bytes: &[u8]) -> Result<CoseSign1, VerifyError> {
    let s = match bytes.first() {
        Some(0xD2) => CoseSign1::from_tagged_slice(bytes),
        _ => CoseSign1::from_slice(bytes),
    }
    .map_err(|e| VerifyError::Cose(e.to_string()))?;
    if s.payload.is_none() {
        return Err(VerifyError::Cose("detached payload".into()));
    }
    Ok(s)
}

/// Sign `payload` with Ed25519 into a tagged COSE_Sign1.
pub fn sign1_ed25519(
    protected: Header,
    unprotected: Header,
    payload: Vec<u8>,
    external_aad: &[u8],
    key: &IssuerKey,
) -> Result<Vec<u8>, coset::CoseError> {
    coset::CoseSign1Builder::new()
        .protected(protected)
        .unprotected(unprotected)
        .payload(payload)
        .create_signature(external_aad, |tbs| key.sign(tbs).to_vec())
        .build()
        .to_tagged_vec()
}

/// The algorithm, from the protected header or, failing that, the unprotected one.
pub fn alg(s: &CoseSign1) -> Option<&RegisteredLabelWithPrivate<iana::Algorithm>> {
    s.protected
        .header
        .alg
        .as_ref()
        .or(s.unprotected.alg.as_ref())
}

/// Apply the voucher header rules and return the kid (raw bytes).
pub fn voucher_kid(s: &CoseSign1) -> Result<&[u8], VerifyError> {
    let p = &s.protected.header;
    let u = &s.unprotected;
    if !p.crit.is_empty() || !u.crit.is_empty() {
        return Err(VerifyError::Cose(
            "critical headers present that this version does not understand".into(),
        ));
    }
    match (&p.alg, &u.alg) {
        (_, Some(_)) => return Err(VerifyError::Alg("alg in the unprotected header")),
        (None, None) => return Err(VerifyError::Alg("missing")),
        (Some(a), None) if *a != RegisteredLabelWithPrivate::Assigned(iana::Algorithm::EdDSA) => {
            return Err(VerifyError::Alg("not EdDSA (-8)"))
        }
        _ => {}
    }
    match (p.key_id.is_empty(), u.key_id.is_empty()) {
        (false, true) => Ok(&p.key_id),
        (true, false) => Err(VerifyError::Kid("kid only in the unprotected header")),
        (true, true) => Err(VerifyError::Kid("missing")),
        (false, false) => Err(VerifyError::Kid("kid in both headers")),
    }
}

/// Verify the Ed25519 signature with strict rules (no malleable S, no small-order keys).
pub fn verify_ed25519(
    s: &CoseSign1,
    key: &VerifyingKey,
    external_aad: &[u8],
) -> Result<(), VerifyError> {
    let tbs = sig_structure(s, external_aad);
    if crate::keys::ed25519_verify_strict(key, &tbs, &s.signature) {
        Ok(())
    } else {
        Err(VerifyError::Signature)
    }
}

/// The Sig_structure (RFC 9052 §4.4) to verify against. The protected header goes in as the
/// bytes that were sent, except that an empty protected map is taken as the zero-length bstr
/// however it was written (`h''` or `h'A0'`): RFC 9052 §3 has recipients accept both, and
/// cose-wg `sign-pass-01` is signed that way. Vouchers never have an empty protected header.
pub fn sig_structure(s: &CoseSign1, external_aad: &[u8]) -> Vec<u8> {
    if s.protected.header.is_empty() && s.protected.original_data.as_deref() != Some(&[]) {
        let mut c = s.clone();
        c.protected.original_data = None;
        return c.tbs_data(external_aad);
    }
    s.tbs_data(external_aad)
}
