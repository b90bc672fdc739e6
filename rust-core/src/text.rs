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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn base45_rfc9285_examples() {
        assert_eq!(base45_encode(b"AB"), "BB8");
        assert_eq!(base45_encode(b"Hello!!"), "%69 VD92EX0");
        assert_eq!(base45_encode(b"base-45"), "UJCLQE7W581");
        assert_eq!(base45_decode("QED8WEX0").unwrap(), b"ietf!");
        assert_eq!(base45_decode("BB8").unwrap(), b"AB");
    }

    #[test]
    fn base45_refuses_what_rfc9285_refuses() {
        assert!(base45_decode("").is_err());
        assert!(base45_decode("A").is_err()); // 1 mod 3
        assert!(base45_decode("GGW").is_err()); // 65536
        assert!(base45_decode("::").is_err()); // final pair 2024
        assert!(base45_decode("U5").is_ok()); // 30 + 5*45 = 255
        assert!(base45_decode("V5").is_err()); // 256
        assert!(base45_decode("bb8").is_err()); // lower case is outside the alphabet
    }

    #[test]
    fn prefix_any_case_and_size_limit() {
        assert_eq!(strip_prefix("EV1:ABC").unwrap(), "ABC");
        assert_eq!(strip_prefix("ev1:ABC").unwrap(), "ABC");
        assert_eq!(strip_prefix("eV1:ABC").unwrap(), "ABC");
        assert!(strip_prefix("EV2:ABC").is_err());
        assert!(strip_prefix("EV").is_err());
        assert!(strip_prefix("€€€€").is_err()); // not a char boundary at 4: no panic
        let big = format!("EV1:{}", "0".repeat(MAX_TEXT_LEN));
        assert!(matches!(
            strip_prefix(&big),
            Err(VerifyError::TooLarge { .. })
        ));
        assert!(strip_prefix(&big[..MAX_TEXT_LEN]).is_ok());
    }

    #[test]
    fn zlib_round_trip_and_refusals() {
        let data = b"\x01\x02\x03 hello hello hello hello";
        let c = compress(data);
        assert_eq!(decompress(&c).unwrap(), (data.to_vec(), true));
        let mut t = c.clone();
        t.push(0);
        assert!(decompress(&t).is_err(), "trailing byte");
        assert!(
            decompress(&c[..c.len() - 1]).is_err(),
            "truncated (checksum)"
        );
        assert!(decompress(&[]).is_err());
        let bomb = compress(&vec![0u8; MAX_BODY_LEN + 1]);
        assert_eq!(
            decompress(&bomb),
            Err(VerifyError::Zlib("decompressed body over 16 KiB"))
        );
        assert_eq!(
            decompress(&[0xD2, 0x84]).unwrap(),
            (vec![0xD2, 0x84], false)
        );
    }
}
