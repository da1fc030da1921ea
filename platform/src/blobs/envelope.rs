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

/// Decrypts a sealed object as its bytes arrive (a streamed GET): feed ciphertext with
/// [`Opener::push`], end with [`Opener::finish`]. Knowing the object's stored length up
/// front tells which segment is the last, so each segment is opened as soon as it is
/// complete: memory is one segment whatever the object's size.
pub struct Opener {
    cipher: Aes256Gcm,
    aad: String,
    prefix: Option<[u8; 7]>,
    segments: u64,
    counter: u64,
    /// Sealed bytes of the segment being received (or the header).
    pending: Vec<u8>,
    last_len: usize,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// Starts opening an object of `sealed_len` stored bytes at `object_key`.
    pub fn new(key: &[u8; 32], object_key: &str, sealed_len: u64) -> Result<Self, DecryptError> {
        let sealed_segment = (SEGMENT + TAG) as u64;
        if sealed_len < (HEADER + TAG) as u64 {
            return Err(DecryptError);
        }
        let body = sealed_len - HEADER as u64;
        let segments = body.div_ceil(sealed_segment).max(1);
        let last_len = body - (segments - 1) * sealed_segment;
        if last_len < TAG as u64 {
            return Err(DecryptError);
        }
        Ok(Self {
            cipher: cipher(key),
            aad: object_key.to_owned(),
            prefix: None,
            segments,
            counter: 0,
            pending: Vec::with_capacity(SEGMENT + TAG),
            last_len: last_len as usize,
        })
    }

    /// The plaintext length of an object of `sealed_len` stored bytes.
    pub fn plain_len(sealed_len: u64) -> u64 {
        let body = sealed_len.saturating_sub(HEADER as u64);
        body.saturating_sub(body.div_ceil((SEGMENT + TAG) as u64).max(1) * TAG as u64)
    }

    /// Adds ciphertext; returns the plaintext of every segment it completes.
    pub fn push(&mut self, mut data: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let want = match self.prefix {
                None => HEADER,
                Some(_) if self.counter >= self.segments => return Err(DecryptError),
                Some(_) if self.counter + 1 == self.segments => self.last_len,
                Some(_) => SEGMENT + TAG,
            };
            let take = (want - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() < want {
                break;
            }
            match self.prefix {
                None => self.prefix = Some(header_prefix(&self.pending)?),
                Some(prefix) => {
                    let counter = u32::try_from(self.counter).map_err(|_| DecryptError)?;
                    let last = self.counter + 1 == self.segments;
                    out.extend(open_segment(
                        &self.cipher,
                        &prefix,
                        counter,
                        last,
                        &self.aad,
                        &self.pending,
                    )?);
                    self.counter += 1;
                }
            }
            self.pending.clear();
        }
        Ok(out)
    }

    /// Checks every segment arrived (a short object is a truncated one).
    pub fn finish(self) -> Result<(), DecryptError> {
        match self.counter == self.segments && self.pending.is_empty() {
            true => Ok(()),
            false => Err(DecryptError),
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
    fn opener_streams_what_open_all_opens() {
        let key = [5u8; 32];
        for len in [0, 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT + 77] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let sealed = seal_all(&key, "tenants/a/x", &plain);
            assert_eq!(Opener::plain_len(sealed.len() as u64), len as u64);
            for piece in [1usize, 4093, SEGMENT + TAG, sealed.len()] {
                let mut o = Opener::new(&key, "tenants/a/x", sealed.len() as u64).expect("opener");
                let mut got = Vec::new();
                for c in sealed.chunks(piece) {
                    got.extend(o.push(c).expect("segment"));
                }
                o.finish().expect("complete");
                assert_eq!(got, plain, "len {len} piece {piece}");
            }
            // Truncated, tampered or moved objects fail.
            let mut o = Opener::new(&key, "tenants/a/x", sealed.len() as u64).expect("opener");
            let _ = o.push(&sealed[..sealed.len() - 1]);
            assert!(o.finish().is_err());
            let mut t = sealed.clone();
            let at = t.len() - 3;
            t[at] ^= 1;
            let mut o = Opener::new(&key, "tenants/a/x", t.len() as u64).expect("opener");
            assert!(o.push(&t).is_err());
            let mut o = Opener::new(&key, "tenants/b/x", sealed.len() as u64).expect("opener");
            assert!(o.push(&sealed).is_err());
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
