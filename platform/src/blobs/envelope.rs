//! Encryption at rest for objects: AES-256-GCM in segments (a streaming AEAD).
//!
//! Layout: `DKT1` · 7-byte random nonce prefix · segments. Each segment is up to
//! [`SEGMENT`] plaintext bytes sealed with nonce = prefix ‖ counter (u32 BE) ‖ last-flag,
//! and the object's full key as associated data. So a segment cannot be reordered, the
//! object cannot be truncated (the last segment is flagged), and ciphertext copied to
//! another key — or another tenant's prefix — does not decrypt. Segments let a 100 MB
//! upload stream through with one segment in memory.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

/// Plaintext bytes per segment.
pub const SEGMENT: usize = 256 * 1024;
pub(super) const MAGIC: &[u8; 4] = b"DKT1";
/// Bytes an AEAD tag adds to each segment.
pub(super) const TAG: usize = 16;
/// Bytes before the first segment.
pub const HEADER: usize = 4 + 7;

/// Decryption failed: wrong key, wrong object key, tampered or truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("object cannot be decrypted (wrong key, moved, tampered or truncated)")]
pub struct DecryptError;

fn nonce(prefix: &[u8; 7], counter: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Encrypts a stream of segments; feed plaintext with [`Sealer::push`], end with
/// [`Sealer::finish`]. Emits ciphertext in pieces the caller uploads.
pub struct Sealer {
    cipher: Aes256Gcm,
    prefix: [u8; 7],
    aad: Vec<u8>,
    counter: u32,
    pending: Vec<u8>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// Starts an object; returns the sealer and the header bytes to write first.
    pub fn new(key: &[u8; 32], object_key: &str) -> (Self, Vec<u8>) {
        let prefix: [u8; 7] = crate::crypto::random_bytes();
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&prefix);
        let s = Sealer {
            cipher: Aes256Gcm::new(key.into()),
            prefix,
            aad: object_key.as_bytes().to_vec(),
            counter: 0,
            pending: Vec::with_capacity(SEGMENT),
        };
        (s, header)
    }

    fn seal(&mut self, plain: &[u8], last: bool) -> Vec<u8> {
        let n = nonce(&self.prefix, self.counter, last);
        self.counter += 1;
        self.cipher
            .encrypt(
                Nonce::from_slice(&n),
                Payload {
                    msg: plain,
                    aad: &self.aad,
                },
            )
            .unwrap_or_default() // cannot fail for segment-sized inputs
    }

    /// Adds plaintext; returns ciphertext of every segment that is complete and known not
    /// to be the last (one segment is held back until more data or `finish`).
    pub fn push(&mut self, mut data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while !data.is_empty() {
            if self.pending.len() == SEGMENT {
                let seg = std::mem::take(&mut self.pending);
                out.extend(self.seal(&seg, false));
                self.pending.reserve(SEGMENT);
            }
            let take = (SEGMENT - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        out
    }

    /// Seals the held-back segment as the last one.
    pub fn finish(mut self) -> Vec<u8> {
        let seg = std::mem::take(&mut self.pending);
        self.seal(&seg, true)
    }
}

/// Encrypts a whole object at once.
pub fn seal_all(key: &[u8; 32], object_key: &str, plain: &[u8]) -> Vec<u8> {
    let (mut s, mut out) = Sealer::new(key, object_key);
    out.extend(s.push(plain));
    out.extend(s.finish());
    out
}

/// Opens one sealed segment (`counter`-th, `last` if it ends the object).
pub(super) fn open_segment(
    cipher: &Aes256Gcm,
    prefix: &[u8; 7],
    counter: u32,
    last: bool,
    object_key: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, DecryptError> {
    let n = nonce(prefix, counter, last);
    cipher
        .decrypt(
            Nonce::from_slice(&n),
            Payload {
                msg: sealed,
                aad: object_key.as_bytes(),
            },
        )
        .map_err(|_| DecryptError)
}

/// The nonce prefix of a sealed object's header.
pub(super) fn header_prefix(header: &[u8]) -> Result<[u8; 7], DecryptError> {
    if header.len() < HEADER || &header[..4] != MAGIC {
        return Err(DecryptError);
    }
    header[4..HEADER].try_into().map_err(|_| DecryptError)
}

/// A cipher for a data key.
pub(super) fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// Decrypts a whole object.
pub fn open_all(key: &[u8; 32], object_key: &str, sealed: &[u8]) -> Result<Vec<u8>, DecryptError> {
    if sealed.len() < HEADER + TAG {
        return Err(DecryptError);
    }
    let prefix = header_prefix(sealed)?;
    let cipher = cipher(key);
    let mut body = &sealed[HEADER..];
    let mut out = Vec::with_capacity(body.len());
    let mut counter = 0u32;
    loop {
        let seg_len = (SEGMENT + TAG).min(body.len());
        let last = body.len() <= SEGMENT + TAG;
        let plain = open_segment(&cipher, &prefix, counter, last, object_key, &body[..seg_len])?;
        out.extend_from_slice(&plain);
        body = &body[seg_len..];
        counter += 1;
        if last {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_at_segment_boundaries() {
        let key = [9u8; 32];
        for len in [
            0,
            1,
            SEGMENT - 1,
            SEGMENT,
            SEGMENT + 1,
            3 * SEGMENT,
            3 * SEGMENT + 5,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            // Streaming in odd-sized pieces gives the same result as all at once.
            let (mut s, mut sealed) = Sealer::new(&key, "k");
            for piece in plain.chunks(7919) {
                sealed.extend(s.push(piece));
            }
            sealed.extend(s.finish());
            assert_eq!(open_all(&key, "k", &sealed).expect("open"), plain, "len {len}");
        }
    }

    #[test]
    fn wrong_key_other_location_tampering_and_truncation_fail() {
        let key = [1u8; 32];
        let plain = vec![42u8; 2 * SEGMENT + 10];
        let sealed = seal_all(&key, "tenants/a/doc", &plain);
        assert!(open_all(&[2u8; 32], "tenants/a/doc", &sealed).is_err());
        assert!(open_all(&key, "tenants/b/doc", &sealed).is_err());
        let mut t = sealed.clone();
        t[HEADER + 5] ^= 1;
        assert!(open_all(&key, "tenants/a/doc", &t).is_err());
        // Dropping the last segment leaves a non-final segment at the end.
        let cut = HEADER + 2 * (SEGMENT + TAG);
        assert!(open_all(&key, "tenants/a/doc", &sealed[..cut]).is_err());
        assert!(!sealed.windows(64).any(|w| w == &plain[..64]));
    }
}
