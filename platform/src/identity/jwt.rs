//! Access tokens: compact JWS with Ed25519 (`alg: EdDSA`) only. Hand-rolled on purpose: a
//! dozen lines that accept exactly one algorithm leave no `alg: none` or algorithm-confusion
//! door open, which general JWT libraries have had to close again and again.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Which realm a token is for; a token of one realm is refused by the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Tenant users and the `/v1` API.
    Tenant,
    /// Platform operators and `/ops`.
    Operator,
}

impl Audience {
    /// The `aud` claim value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Audience::Tenant => "docket:tenant",
            Audience::Operator => "docket:ops",
        }
    }
}

/// The claims Docket puts in an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Always `docket`.
    pub iss: String,
    /// [`Audience::as_str`].
    pub aud: String,
    /// The user or operator id.
    pub sub: Uuid,
    /// The tenant (absent for operators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<Uuid>,
    /// The role at issue time (absent for operators). Informational: every request
    /// re-reads the user's current role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Token id.
    pub jti: Uuid,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

/// Why a token was refused. Each maps to a stable error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("the token is malformed")]
    Malformed,
    /// Any `alg` but EdDSA (including `none`).
    #[error("the token's algorithm {0:?} is not accepted")]
    Algorithm(String),
    /// No `kid`, or a key id this service never issued.
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    /// Signed by a key rotated out longer ago than the acceptance window.
    #[error("the token was signed by a key that has been rotated out")]
    RetiredKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// Past `exp`.
    #[error("the token has expired")]
    Expired,
    /// Issued for the other realm (operator vs tenant).
    #[error("this kind of token is not accepted here")]
    WrongAudience,
}

impl JwtError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            JwtError::Malformed => "invalid_token",
            JwtError::Algorithm(_) => "unsupported_token_algorithm",
            JwtError::UnknownKey => "unknown_signing_key",
            JwtError::RetiredKey => "signing_key_retired",
            JwtError::BadSignature => "invalid_signature",
            JwtError::Expired => "token_expired",
            JwtError::WrongAudience => "wrong_token_kind",
        }
    }
}

/// How a verifier finds public keys.
#[derive(Debug)]
pub enum KeyLookup {
    /// Usable.
    Valid(VerifyingKey),
    /// Known but rotated out past the window.
    Retired,
    /// Never seen.
    Unknown,
}

/// Signs `claims` with `key`, naming it `kid`.
pub fn sign(kid: &str, key: &SigningKey, claims: &Claims) -> String {
    let header = Header {
        alg: "EdDSA".into(),
        typ: Some("JWT".into()),
        kid: Some(kid.into()),
    };
    let h = B64.encode(serde_json::to_vec(&header).unwrap_or_default());
    let c = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
    let input = format!("{h}.{c}");
    let sig = key.sign(input.as_bytes());
    format!("{input}.{}", B64.encode(sig.to_bytes()))
}

/// The `kid` of a token's header, once the header parses and names EdDSA.
pub fn header_kid(token: &str) -> Result<String, JwtError> {
    let h = token.split('.').next().ok_or(JwtError::Malformed)?;
    let header: Header = serde_json::from_slice(&B64.decode(h).map_err(|_| JwtError::Malformed)?)
        .map_err(|_| JwtError::Malformed)?;
    if header.alg != "EdDSA" {
        return Err(JwtError::Algorithm(header.alg));
    }
    header.kid.ok_or(JwtError::UnknownKey)
}

/// Verifies signature, algorithm, audience and expiry; returns the claims.
pub fn verify(token: &str, key: KeyLookup, audience: Audience, now: i64) -> Result<Claims, JwtError> {
    let parts: Vec<&str> = token.split('.').collect();
    let [h, c, s] = parts[..] else {
        return Err(JwtError::Malformed);
    };
    header_kid(token)?;
    let key = match key {
        KeyLookup::Valid(k) => k,
        KeyLookup::Retired => return Err(JwtError::RetiredKey),
        KeyLookup::Unknown => return Err(JwtError::UnknownKey),
    };
    let sig_bytes: [u8; 64] = B64
        .decode(s)
        .map_err(|_| JwtError::Malformed)?
        .try_into()
        .map_err(|_| JwtError::BadSignature)?;
    key.verify_strict(format!("{h}.{c}").as_bytes(), &Signature::from_bytes(&sig_bytes))
        .map_err(|_| JwtError::BadSignature)?;
    // Claims are only parsed after the signature verified.
    let claims: Claims = serde_json::from_slice(&B64.decode(c).map_err(|_| JwtError::Malformed)?)
        .map_err(|_| JwtError::Malformed)?;
    if claims.iss != "docket" {
        return Err(JwtError::Malformed);
    }
    if claims.aud != audience.as_str() {
        return Err(JwtError::WrongAudience);
    }
    if now >= claims.exp {
        return Err(JwtError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(aud: Audience, exp: i64) -> Claims {
        Claims {
            iss: "docket".into(),
            aud: aud.as_str().into(),
            sub: Uuid::new_v4(),
            tid: Some(Uuid::new_v4()),
            role: Some("member".into()),
            iat: 1000,
            exp,
            jti: Uuid::new_v4(),
        }
    }

    #[test]
    fn round_trip_and_every_refusal() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let c = claims(Audience::Tenant, 2000);
        let t = sign("k1", &key, &c);
        let vk = || KeyLookup::Valid(key.verifying_key());
        assert_eq!(verify(&t, vk(), Audience::Tenant, 1500).expect("valid"), c);
        assert_eq!(verify(&t, vk(), Audience::Tenant, 2000), Err(JwtError::Expired));
        assert_eq!(
            verify(&t, vk(), Audience::Operator, 1500),
            Err(JwtError::WrongAudience)
        );
        assert_eq!(
            verify(
                &t,
                KeyLookup::Valid(other.verifying_key()),
                Audience::Tenant,
                1500
            ),
            Err(JwtError::BadSignature)
        );
        assert_eq!(
            verify(&t, KeyLookup::Retired, Audience::Tenant, 1500),
            Err(JwtError::RetiredKey)
        );
        assert_eq!(
            verify("a.b", vk(), Audience::Tenant, 1500),
            Err(JwtError::Malformed)
        );
        // alg: none, with the original claims and no signature.
        let none = format!(
            "{}.{}.",
            B64.encode(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
            t.split('.').nth(1).expect("claims")
        );
        assert_eq!(
            verify(&none, vk(), Audience::Tenant, 1500),
            Err(JwtError::Algorithm("none".into()))
        );
        // Changing the claims breaks the signature.
        let mut forged = c.clone();
        forged.role = Some("owner".into());
        let parts: Vec<&str> = t.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            B64.encode(serde_json::to_vec(&forged).expect("json")),
            parts[2]
        );
        assert_eq!(
            verify(&tampered, vk(), Audience::Tenant, 1500),
            Err(JwtError::BadSignature)
        );
    }
}
