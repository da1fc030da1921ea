//! Object storage behind a wrapper that only ever builds keys under
//! `tenants/{tenant_id}/…`: a caller cannot name another tenant's object, nor escape the
//! prefix with `..` or an absolute key.

use crate::config::ObjectStoreConfig;
use crate::ids::TenantId;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;

/// An object-storage operation failed or was refused.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The relative key is not allowed (traversal, absolute, empty segment, odd characters).
    #[error("object key {0:?} refused: keys are relative paths of [A-Za-z0-9._-] segments, without '..'")]
    BadKey(String),
    /// The object does not exist.
    #[error("object not found")]
    NotFound,
    /// The backend failed.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// The local folder could not be created.
    #[error("object store folder: {0}")]
    Io(#[from] std::io::Error),
}

/// A key inside one tenant's prefix; constructible only through [`BlobKey::for_tenant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobKey(Path);

impl BlobKey {
    /// `tenants/{tenant}/{relative}` after validating `relative`.
    pub fn for_tenant(tenant: TenantId, relative: &str) -> Result<Self, BlobError> {
        let bad = || BlobError::BadKey(relative.to_owned());
        if relative.is_empty() || relative.len() > 512 || relative.starts_with('/') {
            return Err(bad());
        }
        for seg in relative.split('/') {
            let ok_chars = seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if seg.is_empty() || seg == "." || seg == ".." || !ok_chars {
                return Err(bad());
            }
        }
        Ok(Self(Path::from(format!("tenants/{tenant}/{relative}"))))
    }

    /// The full key as stored.
    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }
}

/// Tenant-scoped object storage.
#[derive(Debug, Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
}

impl BlobStore {
    /// Opens the configured backend (creating the local folder if needed).
    pub fn from_config(cfg: &ObjectStoreConfig) -> Result<Self, BlobError> {
        let inner: Arc<dyn ObjectStore> = match cfg {
            ObjectStoreConfig::Local { dir } => {
                std::fs::create_dir_all(dir)?;
                Arc::new(LocalFileSystem::new_with_prefix(dir)?)
            }
            ObjectStoreConfig::S3(s3) => {
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region)
                    .with_access_key_id(&s3.access_key_id)
                    .with_secret_access_key(s3.secret_access_key.expose())
                    .with_allow_http(s3.allow_http);
                if let Some(ep) = &s3.endpoint {
                    b = b.with_endpoint(ep).with_virtual_hosted_style_request(false);
                }
                Arc::new(b.build()?)
            }
        };
        Ok(Self { inner })
    }

    /// Writes an object of `tenant`.
    pub async fn put(&self, tenant: TenantId, relative: &str, data: Vec<u8>) -> Result<(), BlobError> {
        let key = BlobKey::for_tenant(tenant, relative)?;
        self.inner.put(&key.0, PutPayload::from(data)).await?;
        Ok(())
    }

    /// Reads an object of `tenant`.
    pub async fn get(&self, tenant: TenantId, relative: &str) -> Result<Vec<u8>, BlobError> {
        let key = BlobKey::for_tenant(tenant, relative)?;
        match self.inner.get(&key.0).await {
            Ok(r) => Ok(r.bytes().await?.to_vec()),
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes an object of `tenant` (absent is fine).
    pub async fn delete(&self, tenant: TenantId, relative: &str) -> Result<(), BlobError> {
        let key = BlobKey::for_tenant(tenant, relative)?;
        match self.inner.delete(&key.0).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Write, read back and delete a probe object outside every tenant prefix (readiness).
    pub async fn health(&self) -> Result<(), BlobError> {
        let key = Path::from(format!("platform/health/{}", uuid::Uuid::new_v4()));
        self.inner.put(&key, PutPayload::from_static(b"ok")).await?;
        self.inner.head(&key).await?;
        self.inner.delete(&key).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_inside_the_tenant_prefix() {
        let t = TenantId::new_random();
        let k = BlobKey::for_tenant(t, "documents/abc/original").expect("valid");
        assert_eq!(k.as_str(), format!("tenants/{t}/documents/abc/original"));
        for bad in [
            "",
            "/etc/passwd",
            "../other",
            "a/../../b",
            "a//b",
            "a/./b",
            "a\\b",
            "a b",
            "tenants/x/%2e%2e",
        ] {
            assert!(BlobKey::for_tenant(t, bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[tokio::test]
    async fn local_store_round_trips_and_isolates_tenants() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::from_config(&ObjectStoreConfig::Local {
            dir: dir.path().into(),
        })
        .expect("open");
        let (a, b) = (TenantId::new_random(), TenantId::new_random());
        store.put(a, "doc/1", b"alpha".to_vec()).await.expect("put");
        assert_eq!(store.get(a, "doc/1").await.expect("get"), b"alpha");
        assert!(matches!(store.get(b, "doc/1").await, Err(BlobError::NotFound)));
        assert!(dir.path().join(format!("tenants/{a}/doc/1")).exists());
        store.health().await.expect("healthy");
        store.delete(a, "doc/1").await.expect("delete");
        assert!(matches!(store.get(a, "doc/1").await, Err(BlobError::NotFound)));
    }
}
