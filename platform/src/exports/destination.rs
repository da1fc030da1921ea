//! The customer's bucket as an export destination: a client that connects only to the
//! endpoint's checked public addresses (the import rules), the package's place in it, and
//! the probe that proves the credentials can write there before any tenant data leaves.

use crate::imports::source::{self, S3Credentials, S3Source, SourceError};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;

/// A destination that cannot be used: a machine-readable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DestinationError {
    /// `invalid_destination`, `destination_unreachable`, `access_denied`, `no_such_bucket`,
    /// or the endpoint rule's code (`endpoint_not_allowed`, …).
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl From<SourceError> for DestinationError {
    fn from(e: SourceError) -> Self {
        let code = match &e {
            SourceError::Invalid(_) => "invalid_destination",
            SourceError::Sealed => "destination_credentials_invalid",
            SourceError::Client(_) => "destination_unreachable",
            SourceError::Endpoint(ep) => ep.code(),
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}

/// The tenant-safe account of a failed write (never the client's own text).
pub fn describe(e: &object_store::Error) -> DestinationError {
    let (code, _) = source::describe(e);
    let (code, message) = match code {
        "no_such_bucket" => ("no_such_bucket", "the bucket does not exist at the endpoint"),
        "access_denied" => (
            "access_denied",
            "the bucket refused the credentials (they need write access)",
        ),
        _ => (
            "destination_unreachable",
            "the bucket did not answer as an S3-compatible service",
        ),
    };
    DestinationError {
        code,
        message: message.into(),
    }
}

/// An open destination: the client and the package's prefix in the bucket.
#[derive(Debug, Clone)]
pub struct Destination {
    store: Arc<dyn ObjectStore>,
    root: String,
}

impl Destination {
    /// Connects to `s3` with `creds`; the package goes under `{prefix}/docket-export-{id}/`.
    pub async fn open(
        s3: &S3Source,
        creds: &S3Credentials,
        export: uuid::Uuid,
        allow_http: bool,
    ) -> Result<Self, DestinationError> {
        creds.validate()?;
        let store = s3.client(creds, allow_http).await?;
        let prefix = s3.prefix.trim_matches('/');
        let root = match prefix.is_empty() {
            true => format!("docket-export-{export}"),
            false => format!("{prefix}/docket-export-{export}"),
        };
        Ok(Self { store, root })
    }

    /// The object path of a package file.
    pub fn path(&self, relative: &str) -> Path {
        Path::from(format!("{}/{relative}", self.root))
    }

    /// The client.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Where the package is, for people (`prefix/docket-export-…/`).
    pub fn root(&self) -> &str {
        &self.root
    }

    /// Writes a small probe object and removes it: the bucket exists, answers, and takes
    /// writes with these credentials.
    pub async fn probe(&self) -> Result<(), DestinationError> {
        let path = self.path(".docket-probe");
        self.store
            .put(&path, PutPayload::from_static(b"docket export probe"))
            .await
            .map_err(|e| describe(&e))?;
        self.store.delete(&path).await.map_err(|e| describe(&e))?;
        Ok(())
    }
}
