//! The text layer: `EV1:` prefix, Base45 (RFC 9285) and zlib (RFC 1950).

use std::io::{Read, Write};

use crate::error::VerifyError;
use crate::MAX_TEXT_LEN;

/// The prefix of voucher format v1. Decoders accept it in any letter case.
pub const PREFIX: &str = "EV1:";
/// Decompressed bodies larger than this are refused (a text of 4 KiB holds at most 2,730
/// compressed bytes; a real voucher is well under 1 KiB).
pub const MAX_BODY_LEN: usize = 16 * 1024;

/// Check the size limit and the prefix, returning the Base45 body.
pub fn strip_prefix(text: &str) -> Result<&str, VerifyError> {
    if text.len() > MAX_TEXT_LEN {
        return Err(VerifyError::TooLarge {
            len: text.len(),
            max: MAX_TEXT_LEN,
        });
    }
    match text.get(..PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(PREFIX) => Ok(&text[PREFIX.len()..]),
        _ => Err(VerifyError::Prefix),
    }
}

/// Base45-encode bytes.
pub fn base45_encode(bytes: &[u8]) -> String {
    base45::encode(bytes)
}

/// Base45-decode strictly: the alphabet, the length (not 1 mod 3) and the value range of every
/// group (≤ 65535 for three characters, ≤ 255 for a final pair: the `base45` crate does not
/// check the final pair, so it is checked here).
pub fn base45_decode(body: &str) -> Result<Vec<u8>, VerifyError> {
    const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    let b = body.as_bytes();
    if b.is_empty() {
        return Err(VerifyError::Base45("empty body"));
    }
    if b.len() % 3 == 1 {
        return Err(VerifyError::Base45("length is 1 mod 3"));
    }
    let val = |c: u8| ALPHABET.iter().position(|&a| a == c);
    if b.len() % 3 == 2 {
        let (c, d) = (b[b.len() - 2], b[b.len() - 1]);
        match (val(c), val(d)) {
            (Some(c), Some(d)) if c + d * 45 <= 255 => {}
            (Some(_), Some(_)) => return Err(VerifyError::Base45("final pair over 255")),
            _ => return Err(VerifyError::Base45("character outside the alphabet")),
        }
    }
    base45::decode(b).map_err(|_| VerifyError::Base45("invalid character or group over 65535"))
}

/// zlib-compress at the best level (deterministic for a given input).
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(bytes);
    e.finish().unwrap_or_default()
}

/// Return the COSE bytes of a decoded body: the body itself when it is uncompressed (first
/// byte 0xD2, a tag 18, or 0x84, an untagged array of four), else the zlib-decompressed body.
/// Returns whether it was compressed. Trailing bytes after the zlib stream are refused.
pub fn decompress(body: &[u8]) -> Result<(Vec<u8>, bool), VerifyError> {
    match body.first() {
        None => Err(VerifyError::Zlib("empty")),
        Some(0xD2) | Some(0x84) => Ok((body.to_vec(), false)),
        Some(_) => {
            let mut d = flate2::bufread::ZlibDecoder::new(body);
            let mut out = Vec::new();
            (&mut d)
                .take(MAX_BODY_LEN as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|_| VerifyError::Zlib("corrupt or truncated stream"))?;
            if out.len() > MAX_BODY_LEN {
                return Err(VerifyError::Zlib("decompressed body over 16 KiB"));
            }
            if d.total_in() as usize != body.len() || !d.get_ref().is_empty() {
                return Err(VerifyError::Zlib("trailing bytes after the stream"));
            }
            Ok((out, true))
        }
    }
}
