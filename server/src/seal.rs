//! Issuer private keys at rest: ChaCha20-Poly1305 under a master key from the environment or
//! a file, a fresh nonce per key, the kid as associated data (a sealed key cannot be swapped
//! onto another kid's row).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::Zeroizing;

use crate::ApiError;

pub struct Sealer(ChaCha20Poly1305);

impl Sealer {
    pub fn new(key: [u8; 32]) -> Self {
        Sealer(ChaCha20Poly1305::new(&Key::from(key)))
    }

    pub fn seal(&self, kid: &str, secret: &[u8]) -> Result<String, ApiError> {
        let mut nonce = [0u8; 12];
        getrandom::getrandom(&mut nonce).map_err(|_| ApiError::Internal("no randomness".into()))?;
        let ct = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| ApiError::Internal("seal failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(B64.encode(out))
    }

    pub fn open(&self, kid: &str, sealed: &str) -> Result<Zeroizing<Vec<u8>>, ApiError> {
        let raw = B64
            .decode(sealed)
            .map_err(|_| ApiError::Internal("sealed key malformed".into()))?;
        if raw.len() < 12 + 16 {
            return Err(ApiError::Internal("sealed key malformed".into()));
        }
        let (nonce, ct) = raw.split_at(12);
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| ApiError::Internal("sealed key malformed".into()))?;
        self.0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: kid.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| ApiError::Internal("sealed key does not open with this master key".into()))
    }
}
