//! Where a package is written: the customer's bucket (a client that connects only to the
//! endpoint's checked public addresses, the import rules, and the probe that proves the
//! credentials can write there before any tenant data leaves), or Docket's own storage for
//! a download package (every file sealed with the tenant's data key under its prefix).

use crate::blobs::BlobStore;
use crate::imports::source::{self, S3Credentials, S3Source, SourceError};
use crate::tenant_keys::DataKey;
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

/// An open destination (see the module docs).
#[derive(Debug, Clone)]
pub struct Destination {
    pub(super) target: Target,
}

/// The two places a package goes.
#[derive(Debug, Clone)]
pub(super) enum Target {
    /// The customer's bucket: the client and the package's prefix in it.
    Bucket {
        store: Arc<dyn ObjectStore>,
        root: String,
    },
    /// Docket's storage: the tenant's objects under `exports/{id}/`, sealed with its key.
    Docket {
        blobs: BlobStore,
        key: Arc<DataKey>,
        root: String,
    },
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
        Ok(Self {
            target: Target::Bucket { store, root },
        })
    }

    /// A download package of export `export` in Docket's storage, sealed with `key`.
    pub fn docket(blobs: BlobStore, key: Arc<DataKey>, export: uuid::Uuid) -> Self {
        Self {
            target: Target::Docket {
                blobs,
                key,
                root: super::package_folder(export),
            },
        }
    }

    /// The object path of a package file in the customer's bucket.
    pub(super) fn bucket_path(root: &str, relative: &str) -> Path {
        Path::from(format!("{root}/{relative}"))
    }

    /// Where the package is, for people (`prefix/docket-export-…/`, or `exports/{id}`
    /// inside the tenant's prefix of Docket's storage).
    pub fn root(&self) -> &str {
        match &self.target {
            Target::Bucket { root, .. } | Target::Docket { root, .. } => root,
        }
    }

    /// Writes a small probe object and removes it: the bucket exists, answers, and takes
    /// writes with these credentials (Docket's own storage needs no probe).
    pub async fn probe(&self) -> Result<(), DestinationError> {
        let Target::Bucket { store, root } = &self.target else {
            return Ok(());
        };
        let path = Self::bucket_path(root, ".docket-probe");
        store
            .put(&path, PutPayload::from_static(b"docket export probe"))
            .await
            .map_err(|e| describe(&e))?;
        store.delete(&path).await.map_err(|e| describe(&e))?;
        Ok(())
    }
}
