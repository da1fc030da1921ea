//! The deletion certificate (`docket-deletion-certificate/1`): what was deleted (the
//! subject's ids only hashed), per store the count removed, the residue scan's result, the
//! keys destroyed, how each kind of plaintext was handled, the retention exceptions and the
//! times; signed with the platform's Ed25519 key (the key set export manifests use,
//! published at `/.well-known/docket-keys.json`). `docketctl certificate verify FILE`
//! checks it offline.
//!
//! The file is `{"certificate": {...}, "signature": {alg, kid, public_key, signature}}`;
//! the signature covers [`SIGNING_CONTEXT`] + the certificate's canonical JSON (keys
//! sorted, no whitespace: `audit::canonical`), so any re-encoding of the file verifies
//! and any changed value does not.

use super::residue::Scan;
use crate::exports::package::{self, ManifestSignature, SignatureProblem};
use chrono::{DateTime, Utc};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format's name and version.
pub const FORMAT: &str = "docket-deletion-certificate/1";
/// What the signature covers before the certificate's bytes.
pub const SIGNING_CONTEXT: &[u8] = b"docket-deletion-certificate/1\n";

/// How one kind of plaintext was dealt with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = CertificatePlaintext)]
pub struct Plaintext {
    /// What it is.
    pub data: String,
    /// Where it was.
    pub store: String,
    /// `deleted`, `encrypted_and_deleted`, `erased`, …, with a sentence.
    pub handling: String,
}

/// Data kept on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = CertificateRetained)]
pub struct Retained {
    /// The store.
    pub store: String,
    /// Rows or objects kept that relate to the subject.
    pub count: i64,
    /// Why.
    pub reason: String,
    /// Until when (absent: as long as the chain itself).
    pub until: Option<DateTime<Utc>>,
}

/// The certificate's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = DeletionCertificate)]
pub struct Certificate {
    /// [`FORMAT`].
    pub format: String,
    /// The deletion.
    pub deletion_id: uuid::Uuid,
    /// `document`.
    pub scope: String,
    /// SHA-256 of `kind:id` of everything the deletion names (`tenant`, `document`).
    pub subject: BTreeMap<String, String>,
    /// Asked for.
    pub requested_at: DateTime<Utc>,
    /// First sweep started.
    pub started_at: DateTime<Utc>,
    /// Sweep and scan finished.
    pub finished_at: DateTime<Utc>,
    /// Removed (or redacted) per store.
    pub stores: BTreeMap<String, i64>,
    /// The residue scan: every store searched, and what was found (empty).
    pub residue: Scan,
    /// Keys destroyed, by id (none for a document: the tenant's key still protects its
    /// other data; the document's objects are gone).
    pub keys_destroyed: Vec<String>,
    /// Each kind of plaintext the subject had, and what happened to it.
    pub plaintext: Vec<Plaintext>,
    /// What stays, and why.
    pub retained: Vec<Retained>,
}

/// The signed file.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = SignedDeletionCertificate)]
pub struct SignedCertificate {
    /// The content.
    #[schema(value_type = crate::deletions::certificate::Certificate)]
    pub certificate: serde_json::Value,
    /// Ed25519 over [`SIGNING_CONTEXT`] + the canonical JSON of `certificate`.
    pub signature: ManifestSignature,
}

fn canonical(v: &serde_json::Value) -> Vec<u8> {
    crate::audit::canonical::to_string(v).into_bytes()
}

/// Signs a certificate; returns the file's text.
pub fn sign(cert: &Certificate, kid: &str, key: &SigningKey) -> Result<String, serde_json::Error> {
    let value = serde_json::to_value(cert)?;
    let signature = package::sign_in(SIGNING_CONTEXT, &canonical(&value), kid, key);
    serde_json::to_string_pretty(&SignedCertificate {
        certificate: value,
        signature,
    })
}

/// Checks a certificate file: its format, and its signature against `trusted` keys (or, if
/// none are given, the key it carries: integrity only). Returns the certificate and the id
/// of the key that signed it, or every problem found.
pub fn verify(
    text: &[u8],
    trusted: Option<&BTreeMap<String, VerifyingKey>>,
) -> Result<(Certificate, String), Vec<String>> {
    let signed: SignedCertificate =
        serde_json::from_slice(text).map_err(|e| vec![format!("not a signed deletion certificate: {e}")])?;
    let mut problems = vec![];
    match package::check_signature(
        SIGNING_CONTEXT,
        &canonical(&signed.certificate),
        &signed.signature,
        trusted,
    ) {
        Ok(()) => {}
        Err(SignatureProblem::Untrusted(kid)) => problems.push(format!("key {kid} is not a trusted key")),
        Err(SignatureProblem::Malformed) => problems.push("the signature is malformed".into()),
        Err(SignatureProblem::Mismatch) => {
            problems.push("the signature does not match (the certificate was changed)".into())
        }
    }
    let cert: Option<Certificate> = match serde_json::from_value(signed.certificate) {
        Ok(c) => Some(c),
        Err(e) => {
            problems.push(format!("the certificate's content is not {FORMAT}: {e}"));
            None
        }
    };
    match cert {
        Some(c) if problems.is_empty() && c.format == FORMAT => Ok((c, signed.signature.kid)),
        Some(c) if c.format != FORMAT => {
            problems.push(format!("format {} is not {FORMAT}", c.format));
            Err(problems)
        }
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> Certificate {
        Certificate {
            format: FORMAT.into(),
            deletion_id: uuid::Uuid::new_v4(),
            scope: "document".into(),
            subject: BTreeMap::from([("document".into(), "ab".repeat(32))]),
            requested_at: Utc::now(),
            started_at: Utc::now(),
            finished_at: Utc::now(),
            stores: BTreeMap::from([("postgresql.chunks".into(), 12)]),
            residue: Scan {
                checked: vec!["postgresql.chunks".into()],
                found: vec![],
            },
            keys_destroyed: vec![],
            plaintext: vec![],
            retained: vec![],
        }
    }

    #[test]
    fn a_signed_certificate_verifies_and_any_change_does_not() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let text = sign(&cert(), "k1", &key).expect("sign");
        let trusted = BTreeMap::from([("k1".to_owned(), key.verifying_key())]);
        let (c, kid) = verify(text.as_bytes(), Some(&trusted)).expect("verifies");
        assert_eq!((c.scope.as_str(), kid.as_str()), ("document", "k1"));

        // Re-encoded (compact, keys reordered by jsonb): still verifies.
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert!(verify(v.to_string().as_bytes(), Some(&trusted)).is_ok());

        // One count changed: refused, and named.
        let forged = text.replace("\"postgresql.chunks\": 12", "\"postgresql.chunks\": 13");
        assert_ne!(forged, text);
        let err = verify(forged.as_bytes(), Some(&trusted)).expect_err("forged");
        assert!(err[0].contains("does not match"), "{err:?}");

        // Signed by another key: not trusted.
        let other = sign(&cert(), "k2", &SigningKey::from_bytes(&[8; 32])).expect("sign");
        let err = verify(other.as_bytes(), Some(&trusted)).expect_err("untrusted");
        assert!(err[0].contains("not a trusted key"), "{err:?}");
        // Re-signed under the trusted id with another key: a mismatch.
        let impostor = sign(&cert(), "k1", &SigningKey::from_bytes(&[8; 32])).expect("sign");
        assert!(verify(impostor.as_bytes(), Some(&trusted)).is_err());
        assert!(verify(b"{}", Some(&trusted)).is_err());
    }
}
