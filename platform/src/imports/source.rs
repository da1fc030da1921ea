//! The tenant's own bucket as an import source: what it names, how its credentials are kept
//! (sealed under the master key, bound to the import, erased once the listing is done)
//! and the read-only client built from them.

use crate::config::MasterKey;
use crate::crypto;
use crate::ids::ImportId;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A bucket prefix to import from (stored in `imports.source_detail`; no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Source {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix (empty: the whole bucket).
    #[serde(default)]
    pub prefix: String,
    /// Region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Endpoint of an S3-compatible service (default: AWS).
    #[serde(default)]
    pub endpoint: Option<String>,
}

fn default_region() -> String {
    "us-east-1".into()
}

/// Read-only credentials for the source bucket.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// A source that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Invalid field.
    #[error("{0}")]
    Invalid(String),
    /// The sealed credentials do not open (wrong master key or tampered row).
    #[error("the stored source credentials cannot be opened")]
    Sealed,
    /// The client could not be built.
    #[error("the source bucket cannot be reached: {0}")]
    Client(String),
}

fn context(import: ImportId) -> String {
    format!("import-credentials:{import}")
}

impl S3Source {
    /// Checks the fields. `allow_http` is a deployment setting (tests, private networks):
    /// otherwise only `https://` endpoints are accepted.
    pub fn validate(&self, allow_http: bool) -> Result<(), SourceError> {
        let ok_bucket = (3..=63).contains(&self.bucket.len())
            && self
                .bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !ok_bucket {
            return Err(SourceError::Invalid(
                "`bucket` must be 3-63 characters of a-z, 0-9, `-` and `.`".into(),
            ));
        }
        if self.prefix.len() > 1024 || self.prefix.contains("..") || self.prefix.starts_with('/') {
            return Err(SourceError::Invalid(
                "`prefix` must be a relative key prefix without `..`".into(),
            ));
        }
        if let Some(ep) = &self.endpoint {
            let https = ep.starts_with("https://");
            if !(https || (allow_http && ep.starts_with("http://"))) {
                return Err(SourceError::Invalid("`endpoint` must be an https:// URL".into()));
            }
        }
        Ok(())
    }

    /// A client for the bucket with `creds`.
    pub fn client(
        &self,
        creds: &S3Credentials,
        allow_http: bool,
    ) -> Result<Arc<dyn ObjectStore>, SourceError> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_access_key_id(&creds.access_key_id)
            .with_secret_access_key(&creds.secret_access_key)
            .with_allow_http(allow_http);
        if let Some(ep) = &self.endpoint {
            b = b.with_endpoint(ep).with_virtual_hosted_style_request(false);
        }
        Ok(Arc::new(
            b.build().map_err(|e| SourceError::Client(e.to_string()))?,
        ))
    }
}

impl S3Credentials {
    /// Checks the fields are present.
    pub fn validate(&self) -> Result<(), SourceError> {
        if self.access_key_id.is_empty() || self.secret_access_key.is_empty() {
            return Err(SourceError::Invalid(
                "`access_key_id` and `secret_access_key` are required".into(),
            ));
        }
        Ok(())
    }

    /// Sealed for storage, bound to the import: `kid`, a NUL, then the sealed JSON (the kid
    /// says which master key opens it after a rotation).
    pub fn seal(&self, master: &MasterKey, import: ImportId) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut out = master.kid.as_bytes().to_vec();
        out.push(0);
        out.extend(crypto::seal(master, &context(import), &json));
        out
    }

    /// Opens what [`S3Credentials::seal`] stored.
    pub fn open(master: &MasterKey, import: ImportId, stored: &[u8]) -> Result<Self, SourceError> {
        let split = stored.iter().position(|b| *b == 0).ok_or(SourceError::Sealed)?;
        let kid = std::str::from_utf8(&stored[..split]).map_err(|_| SourceError::Sealed)?;
        let json = crypto::open(master, kid, &context(import), &stored[split + 1..])
            .map_err(|_| SourceError::Sealed)?;
        serde_json::from_slice(&json).map_err(|_| SourceError::Sealed)
    }
}
