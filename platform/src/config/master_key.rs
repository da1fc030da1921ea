//! The master key (`kid:base64`) and the rotated-out keys still accepted for opening.

use crate::secret::Secret;
use std::fmt;

/// The master key that wraps other keys. Identified by `kid` so it can rotate.
#[derive(Clone)]
pub struct MasterKey {
    /// Key id, stored next to everything it encrypts.
    pub kid: String,
    /// 32 secret bytes.
    pub key: Secret<[u8; 32]>,
    /// Keys rotated out: still opened (by their id), never used to seal.
    pub previous: Vec<(String, Secret<[u8; 32]>)>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey {{ kid: {:?}, key: [redacted] }}", self.kid)
    }
}

impl MasterKey {
    /// Parses `kid:base64-of-32-bytes`.
    pub fn parse(s: &str) -> Result<Self, String> {
        use base64::Engine;
        let (kid, b64) = s
            .trim()
            .split_once(':')
            .ok_or("expected `kid:base64key` (32 random bytes, base64)")?;
        let valid_kid = !kid.is_empty()
            && kid.len() <= 32
            && kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_kid {
            return Err("the key id must be 1-32 characters of a-z, 0-9, '-' and '_'".into());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| "the key is not valid base64")?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| "the key must be exactly 32 bytes")?;
        Ok(Self {
            kid: kid.to_owned(),
            key: Secret::new(key),
            previous: vec![],
        })
    }

    /// The key with id `kid`, current or previous.
    pub fn by_kid(&self, kid: &str) -> Option<&[u8; 32]> {
        if kid == self.kid {
            return Some(self.key.expose());
        }
        self.previous
            .iter()
            .find(|(k, _)| k == kid)
            .map(|(_, key)| key.expose())
    }
}
