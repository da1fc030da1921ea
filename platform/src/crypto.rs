//! Small cryptographic helpers: sealing secrets under the master key, token hashing,
//! keyed pseudonyms and constant-time comparison.

use crate::config::MasterKey;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A sealed secret could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Sealed under a master key this process does not have.
    #[error("secret was sealed with master key {0:?}, which is not configured")]
    UnknownMasterKey(String),
    /// Wrong key, wrong context or tampered ciphertext.
    #[error("secret could not be decrypted (wrong key or tampered)")]
    Decrypt,
}

/// Encrypts `plaintext` under the master key with AES-256-GCM. `context` is authenticated
/// but not stored (e.g. `signing-key:{kid}`), so a sealed value cannot be swapped between
/// rows. Output: 12-byte nonce followed by the ciphertext.
pub fn seal(master: &MasterKey, context: &str, plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(master.key.expose().into());
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: context.as_bytes(),
            },
        )
        .unwrap_or_default(); // AES-GCM encryption cannot fail for in-memory inputs this size.
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    out
}

/// Decrypts a value made by [`seal`] with the same master key and context.
pub fn open(
    master: &MasterKey,
    master_kid: &str,
    context: &str,
    sealed: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let key = master
        .by_kid(master_kid)
        .ok_or_else(|| CryptoError::UnknownMasterKey(master_kid.to_owned()))?;
    if sealed.len() < 12 + 16 {
        return Err(CryptoError::Decrypt);
    }
    let cipher = Aes256Gcm::new(key.into());
    let (nonce, ct) = sealed.split_at(12);
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ct,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| CryptoError::Decrypt)
}

/// `n` random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

/// Random URL-safe text with `n` bytes of entropy.
pub fn random_token(n_bytes: usize) -> String {
    let mut b = vec![0u8; n_bytes];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Lowercase hex HMAC-SHA-256 of `data` under `key`.
pub fn hmac_hex(key: &[u8], data: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| {
        // HMAC accepts keys of any length; this branch is unreachable.
        <Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]).expect("fixed-size key")
    });
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, byte: u8) -> MasterKey {
        use base64::Engine;
        MasterKey::parse(&format!(
            "{kid}:{}",
            base64::engine::general_purpose::STANDARD.encode([byte; 32])
        ))
        .expect("key")
    }

    #[test]
    fn sealed_secrets_open_only_with_the_same_key_and_context() {
        let k = key("k1", 7);
        let sealed = seal(&k, "ctx", b"secret");
        assert_eq!(open(&k, "k1", "ctx", &sealed).expect("open"), b"secret");
        assert!(matches!(
            open(&k, "k1", "other", &sealed),
            Err(CryptoError::Decrypt)
        ));
        assert!(matches!(
            open(&key("k1", 8), "k1", "ctx", &sealed),
            Err(CryptoError::Decrypt)
        ));
        assert!(matches!(
            open(&k, "k0", "ctx", &sealed),
            Err(CryptoError::UnknownMasterKey(_))
        ));
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(open(&k, "k1", "ctx", &tampered).is_err());
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn a_rotated_master_key_still_opens_what_it_sealed() {
        let old = key("k1", 7);
        let sealed = seal(&old, "ctx", b"tenant data key");
        let mut new = key("k2", 9);
        assert!(matches!(
            open(&new, "k1", "ctx", &sealed),
            Err(CryptoError::UnknownMasterKey(_))
        ));
        new.previous.push(("k1".into(), old.key.clone()));
        assert_eq!(
            open(&new, "k1", "ctx", &sealed).expect("open"),
            b"tenant data key"
        );
        // New seals use the current key.
        let resealed = seal(&new, "ctx", b"x");
        assert!(open(&old, "k2", "ctx", &resealed).is_err());
        assert_eq!(open(&new, "k2", "ctx", &resealed).expect("open"), b"x");
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
