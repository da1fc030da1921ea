//! The tenant's own bucket as an import source: what it names, how its credentials are kept
//! (sealed under the master key, bound to the import, erased once the listing is done)
//! and the read-only client built from them.

use crate::config::MasterKey;
use crate::crypto;
use crate::ids::ImportId;
use crate::netguard::{self, CheckedEndpoint, EndpointError, PinnedConnector};
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
    /// The endpoint is not one Docket may connect to.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
}

impl SourceError {
    /// Machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            SourceError::Invalid(_) => "invalid_source",
            SourceError::Sealed => "source_credentials_invalid",
            SourceError::Client(_) => "source_unreachable",
            SourceError::Endpoint(e) => e.code(),
        }
    }
}

/// The HTTP status a failed call got, if it got one. Listing errors reach us as
/// `Generic` (object_store maps statuses to variants only for some calls) and its status
/// type is not public, so the status is read from its error text
/// ("…non-2xx status code: 403 Forbidden…").
fn http_status(e: &object_store::Error) -> Option<u16> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if let Some(at) = text.find("status code: ") {
            let digits: String = text[at + 13..].chars().take(3).collect();
            if let Ok(n) = digits.parse() {
                return Some(n);
            }
        }
        cur = err.source();
    }
    None
}

/// Whether `region` is a plausible region name: it becomes part of the AWS host name and
/// of every request's signature, so it may not carry dots, slashes or anything else.
fn valid_region(region: &str) -> bool {
    (1..=32).contains(&region.len())
        && region.starts_with(|c: char| c.is_ascii_lowercase())
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The tenant-safe account of a failed call to the source bucket: a code and a sentence,
/// never the client's own text (which names internal URLs and retry settings). The detail
/// is logged.
pub fn describe(e: &object_store::Error) -> (&'static str, String) {
    tracing::warn!(error = %e, "source bucket call failed");
    let status = match e {
        object_store::Error::NotFound { .. } => Some(404),
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            Some(403)
        }
        _ => http_status(e),
    };
    match status {
        Some(404) => (
            "no_such_bucket",
            "the bucket or prefix does not exist at the endpoint".into(),
        ),
        Some(401 | 403) => (
            "access_denied",
            "the bucket refused the credentials (they need list and read access)".into(),
        ),
        _ => (
            "source_unreachable",
            "the bucket did not answer as an S3-compatible service".into(),
        ),
    }
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
        if !valid_region(&self.region) {
            return Err(SourceError::Invalid(
                "`region` must be 1-32 characters of a-z, 0-9 and `-`, starting with a letter".into(),
            ));
        }
        if let Some(ep) = &self.endpoint {
            netguard::parse(ep, allow_http)?;
        }
        Ok(())
    }

    /// Resolves and checks the endpoint (public addresses only unless `allow_http`): done
    /// when the import is requested and again when the client is built.
    pub async fn check_endpoint(&self, allow_http: bool) -> Result<Option<CheckedEndpoint>, SourceError> {
        match &self.endpoint {
            Some(ep) => Ok(Some(netguard::check(ep, allow_http).await?)),
            None => Ok(None),
        }
    }

    /// A client for the bucket with `creds`, connecting only to the endpoint's checked
    /// addresses and following no redirects.
    pub async fn client(
        &self,
        creds: &S3Credentials,
        allow_http: bool,
    ) -> Result<Arc<dyn ObjectStore>, SourceError> {
        self.validate(allow_http)?;
        let checked = self.check_endpoint(allow_http).await?;
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_access_key_id(&creds.access_key_id)
            .with_secret_access_key(&creds.secret_access_key)
            .with_allow_http(allow_http)
            // The body is not hashed into the signature: an export would hash every byte
            // twice. Integrity is the transport's (TLS) and, end to end, the manifest's
            // SHA-256 of every file, which the customer verifies.
            .with_unsigned_payload(true);
        if let (Some(ep), Some(checked)) = (&self.endpoint, checked) {
            b = b
                .with_endpoint(ep)
                .with_virtual_hosted_style_request(false)
                .with_http_connector(PinnedConnector::new(checked));
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
        self.seal_for(master, &context(import))
    }

    /// Sealed for storage, bound to `context` (what the credentials are for, e.g.
    /// `export-credentials:{id}`): they open only for the same context.
    pub fn seal_for(&self, master: &MasterKey, context: &str) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut out = master.kid.as_bytes().to_vec();
        out.push(0);
        out.extend(crypto::seal(master, context, &json));
        out
    }

    /// Opens what [`S3Credentials::seal`] stored.
    pub fn open(master: &MasterKey, import: ImportId, stored: &[u8]) -> Result<Self, SourceError> {
        Self::open_for(master, &context(import), stored)
    }

    /// Opens what [`S3Credentials::seal_for`] stored for `context`.
    pub fn open_for(master: &MasterKey, context: &str, stored: &[u8]) -> Result<Self, SourceError> {
        let split = stored.iter().position(|b| *b == 0).ok_or(SourceError::Sealed)?;
        let kid = std::str::from_utf8(&stored[..split]).map_err(|_| SourceError::Sealed)?;
        let json =
            crypto::open(master, kid, context, &stored[split + 1..]).map_err(|_| SourceError::Sealed)?;
        serde_json::from_slice(&json).map_err(|_| SourceError::Sealed)
    }
}
