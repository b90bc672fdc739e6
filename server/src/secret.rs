//! Secrets the server makes and compares: random tokens, their stored hashes, and comparison
//! in constant time.

use sha2::{Digest, Sha256};

use crate::ApiError;

/// SHA-256 of a secret, hex: how tokens, session ids and codes are stored and looked up.
pub fn hash_secret(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A random secret of `bytes` bytes, hex.
pub fn random_token(bytes: usize) -> Result<String, ApiError> {
    let mut b = vec![0u8; bytes];
    getrandom::getrandom(&mut b).map_err(|_| ApiError::Internal("no randomness".into()))?;
    Ok(hex::encode(b))
}

/// Compare two secrets in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
