//! Issuing: a voucher and an issuer key to the `EV1:` text, keeping every stage.

use coset::{CborSerializable, HeaderBuilder};

use crate::error::EncodeError;
use crate::keys::IssuerKey;
use crate::text;
use crate::voucher::Voucher;
use crate::MAX_TEXT_LEN;

/// Every stage of an encoded voucher.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The CWT claims set (the COSE payload).
    pub claims_cbor: Vec<u8>,
    /// The tagged COSE_Sign1.
    pub cose: Vec<u8>,
    /// The zlib stream of `cose`.
    pub compressed: Vec<u8>,
    /// `EV1:` + Base45 of `compressed`.
    pub text: String,
}

/// Sign a voucher: COSE_Sign1 with protected `{1: -8, 4: kid}`, zlib, Base45, `EV1:`.
pub fn encode(voucher: &Voucher, key: &IssuerKey) -> Result<Encoded, EncodeError> {
    voucher.validate()?;
    let claims_cbor = voucher
        .to_claims()
        .to_vec()
        .map_err(|_| EncodeError::Cbor)?;
    let protected = HeaderBuilder::new()
        .algorithm(coset::iana::Algorithm::EdDSA)
        .key_id(key.kid().0.to_vec())
        .build();
    let cose = crate::cose::sign1_ed25519(
        protected,
        coset::Header::default(),
        claims_cbor.clone(),
        b"",
        key,
    )
    .map_err(|_| EncodeError::Cbor)?;
    let compressed = text::compress(&cose);
    let text = format!("{}{}", text::PREFIX, text::base45_encode(&compressed));
    if text.len() > MAX_TEXT_LEN {
        return Err(EncodeError::TooLarge(text.len()));
    }
    Ok(Encoded {
        claims_cbor,
        cose,
        compressed,
        text,
    })
}
