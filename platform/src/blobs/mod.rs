//! Object storage behind a wrapper that only ever builds keys under
//! `tenants/{tenant_id}/…`: a caller cannot name another tenant's object, nor escape the
//! prefix with `..` or an absolute key. Every object is encrypted with its tenant's data
//! key ([`envelope`]); what lands on disk or in the bucket is unreadable without it.

pub mod envelope;
mod reader;
mod stream;

pub use reader::SealedReader;
pub use stream::{SealedStream, SealedWriter};

use crate::config::ObjectStoreConfig;
use crate::ids::TenantId;
use crate::tenant_keys::DataKey;
use bytes::Bytes;
use futures::{Stream, StreamExt};
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
    /// The object does not decrypt with the given key.
    #[error(transparent)]
    Decrypt(#[from] envelope::DecryptError),
    /// A streamed upload went past its limit (the partial object was removed).
    #[error("the upload is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The incoming stream failed (client went away).
    #[error("the upload stream failed: {0}")]
    Source(String),
}

/// What a streamed upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Plaintext bytes.
    pub size: u64,
    /// Hex SHA-256 of the plaintext.
    pub sha256: String,
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

    /// Encrypts and writes a whole object of the key's tenant.
    pub async fn put(&self, key: &DataKey, relative: &str, data: &[u8]) -> Result<(), BlobError> {
        let path = BlobKey::for_tenant(key.tenant(), relative)?;
        let sealed = envelope::seal_all(key.bytes(), path.as_str(), data);
        self.inner.put(&path.0, PutPayload::from(sealed)).await?;
        Ok(())
    }

    /// Encrypts and writes a stream as it arrives (multipart upload, bounded memory),
    /// hashing the plaintext. Past `limit` bytes the upload is aborted and nothing stays.
    pub async fn put_stream<S, E>(
        &self,
        key: &DataKey,
        relative: &str,
        mut stream: S,
        limit: u64,
    ) -> Result<Stored, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let mut writer = self.writer(key, relative).await?;
        let failure = loop {
            match stream.next().await {
                None => break None,
                Some(Err(e)) => break Some(BlobError::Source(e.to_string())),
                Some(Ok(chunk)) => {
                    if writer.size() + chunk.len() as u64 > limit {
                        break Some(BlobError::TooLarge { limit });
                    }
                    if let Err(e) = writer.write(&chunk).await {
                        break Some(e);
                    }
                }
            }
        };
        if let Some(e) = failure {
            writer.abort().await;
            return Err(e);
        }
        writer.finish().await
    }

    /// Reads and decrypts an object of the key's tenant.
    pub async fn get(&self, key: &DataKey, relative: &str) -> Result<Vec<u8>, BlobError> {
        let path = BlobKey::for_tenant(key.tenant(), relative)?;
        let sealed = self.get_sealed(key.tenant(), relative).await?;
        Ok(envelope::open_all(key.bytes(), path.as_str(), &sealed)?)
    }

    /// The stored (encrypted) bytes of an object, as they sit on disk or in the bucket.
    pub async fn get_sealed(&self, tenant: TenantId, relative: &str) -> Result<Vec<u8>, BlobError> {
        let path = BlobKey::for_tenant(tenant, relative)?;
        match self.inner.get(&path.0).await {
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

    /// Deletes every object of `tenant` under the folder `relative`; returns how many.
    pub async fn delete_prefix(&self, tenant: TenantId, relative: &str) -> Result<u64, BlobError> {
        self.delete_under(&BlobKey::for_tenant(tenant, relative)?.0).await
    }

    async fn delete_under(&self, folder: &Path) -> Result<u64, BlobError> {
        let mut listed = self.inner.list(Some(folder));
        let mut n = 0;
        while let Some(meta) = listed.next().await {
            match self.inner.delete(&meta?.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => n += 1,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// Every object of `tenant` under the folder `relative`, as paths relative to the
    /// tenant's prefix (what deletions' residue scans list).
    pub async fn list(&self, tenant: TenantId, relative: &str) -> Result<Vec<String>, BlobError> {
        self.list_under(tenant, &BlobKey::for_tenant(tenant, relative)?.0)
            .await
    }

    async fn list_under(&self, tenant: TenantId, folder: &Path) -> Result<Vec<String>, BlobError> {
        let root = format!("tenants/{tenant}/");
        let mut listed = self.inner.list(Some(folder));
        let mut out = vec![];
        while let Some(meta) = listed.next().await {
            let path = meta?.location.to_string();
            out.push(path.strip_prefix(&root).unwrap_or(&path).to_owned());
        }
        Ok(out)
    }

    /// Every object of `tenant`, wherever under its prefix (a whole-tenant deletion's count
    /// and residue scan), as paths relative to the prefix.
    pub async fn list_all(&self, tenant: TenantId) -> Result<Vec<String>, BlobError> {
        self.list_under(tenant, &Path::from(format!("tenants/{tenant}")))
            .await
    }

    /// Deletes every object of `tenant` (a whole-tenant deletion); returns how many.
    pub async fn delete_all(&self, tenant: TenantId) -> Result<u64, BlobError> {
        self.delete_under(&Path::from(format!("tenants/{tenant}"))).await
    }

    /// Writes `bytes` at `platform/{relative}`: outside every tenant's prefix and not
    /// encrypted (what goes there is signed and holds no tenant content: audit checkpoints).
    pub async fn put_platform(&self, relative: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        self.inner
            .put(
                &Path::from(format!("platform/{relative}")),
                PutPayload::from(bytes),
            )
            .await?;
        Ok(())
    }

    /// The object at `platform/{relative}`, if any.
    pub async fn get_platform(&self, relative: &str) -> Result<Option<Bytes>, BlobError> {
        match self.inner.get(&Path::from(format!("platform/{relative}"))).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The objects under `platform/{relative}`, as paths relative to `platform/`.
    pub async fn list_platform(&self, relative: &str) -> Result<Vec<String>, BlobError> {
        let mut listed = self.inner.list(Some(&Path::from(format!("platform/{relative}"))));
        let mut out = vec![];
        while let Some(meta) = listed.next().await {
            let path = meta?.location.to_string();
            out.push(path.strip_prefix("platform/").unwrap_or(&path).to_owned());
        }
        Ok(out)
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
    use futures::TryStreamExt;
    use sha2::{Digest, Sha256};

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
    async fn local_store_encrypts_round_trips_and_isolates_tenants() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::from_config(&ObjectStoreConfig::Local {
            dir: dir.path().into(),
        })
        .expect("open");
        let (a, b) = (TenantId::new_random(), TenantId::new_random());
        let ka = DataKey::from_bytes_for_tests(a, [1; 32]);
        let kb = DataKey::from_bytes_for_tests(b, [2; 32]);
        store
            .put(&ka, "doc/1", b"alpha contract text")
            .await
            .expect("put");
        assert_eq!(
            store.get(&ka, "doc/1").await.expect("get"),
            b"alpha contract text"
        );
        assert!(matches!(store.get(&kb, "doc/1").await, Err(BlobError::NotFound)));
        let on_disk = std::fs::read(dir.path().join(format!("tenants/{a}/doc/1"))).expect("file");
        assert!(!on_disk.windows(5).any(|w| w == b"alpha"), "stored encrypted");
        // The right path with the wrong key fails.
        let wrong = DataKey::from_bytes_for_tests(a, [3; 32]);
        assert!(matches!(
            store.get(&wrong, "doc/1").await,
            Err(BlobError::Decrypt(_))
        ));
        store.health().await.expect("healthy");
        store.delete(a, "doc/1").await.expect("delete");
        assert!(matches!(store.get(&ka, "doc/1").await, Err(BlobError::NotFound)));
    }

    #[tokio::test]
    async fn streamed_reads_decrypt_and_folders_delete_within_the_tenant() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::from_config(&ObjectStoreConfig::Local {
            dir: dir.path().into(),
        })
        .expect("open");
        let (a, b) = (TenantId::new_random(), TenantId::new_random());
        let (ka, kb) = (
            DataKey::from_bytes_for_tests(a, [3u8; 32]),
            DataKey::from_bytes_for_tests(b, [4u8; 32]),
        );
        let body: Vec<u8> = (0..700_000u32).map(|i| (i % 241) as u8).collect();
        let mut w = store.writer(&ka, "exports/x/big").await.expect("writer");
        for piece in body.chunks(100_003) {
            w.write(piece).await.expect("write");
        }
        let stored = w.finish().await.expect("finish");
        assert_eq!(stored.sha256, hex::encode(Sha256::digest(&body)));
        let s = store.get_stream(&ka, "exports/x/big").await.expect("stream");
        assert_eq!(s.len, body.len() as u64);
        let got: Vec<Bytes> = s.bytes.try_collect().await.expect("plaintext");
        assert_eq!(got.concat(), body);
        // Another tenant's key does not open it; its folder is its own.
        store.put(&kb, "exports/x/big", b"other").await.expect("put b");
        store
            .put(&ka, "exports/x/small", b"small")
            .await
            .expect("put small");
        assert_eq!(store.delete_prefix(a, "exports/x").await.expect("delete"), 2);
        assert!(matches!(
            store.get_stream(&ka, "exports/x/big").await,
            Err(BlobError::NotFound)
        ));
        assert_eq!(store.get(&kb, "exports/x/big").await.expect("b stays"), b"other");
    }

    #[tokio::test]
    async fn streams_are_limited_hashed_and_cleaned_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::from_config(&ObjectStoreConfig::Local {
            dir: dir.path().into(),
        })
        .expect("open");
        let k = DataKey::from_bytes_for_tests(TenantId::new_random(), [7; 32]);
        let pieces: Vec<Result<Bytes, String>> =
            (0..40).map(|i| Ok(Bytes::from(vec![i as u8; 100_000]))).collect();
        let all: Vec<u8> = (0..40).flat_map(|i| vec![i as u8; 100_000]).collect();
        let stored = store
            .put_stream(&k, "big", futures::stream::iter(pieces.clone()), 10_000_000)
            .await
            .expect("stream");
        assert_eq!(stored.size, 4_000_000);
        assert_eq!(stored.sha256, hex::encode(Sha256::digest(&all)));
        assert_eq!(store.get(&k, "big").await.expect("get"), all);
        let err = store
            .put_stream(&k, "too-big", futures::stream::iter(pieces), 1_000_000)
            .await
            .expect_err("limit");
        assert!(matches!(err, BlobError::TooLarge { limit: 1_000_000 }));
        assert!(
            matches!(store.get(&k, "too-big").await, Err(BlobError::NotFound)),
            "nothing left behind"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sealed_object_reads_and_seeks_by_ranges() {
        use std::io::{Read, Seek, SeekFrom};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::from_config(&ObjectStoreConfig::Local {
            dir: dir.path().into(),
        })
        .expect("open");
        let k = DataKey::from_bytes_for_tests(TenantId::new_random(), [5; 32]);
        // Several blocks, ending inside a segment; and the edge cases of length.
        let seg = envelope::SEGMENT;
        let block = reader::BLOCK_SEGMENTS as usize * seg;
        for len in [0, 1, seg, 2 * block + 3 * seg + 17] {
            let plain: Vec<u8> = (0..len).map(|i| (i.wrapping_mul(31) % 251) as u8).collect();
            store.put(&k, "zip", &plain).await.expect("put");
            let mut r = store.open_reader(&k, "zip").await.expect("open");
            assert_eq!(r.len(), len as u64);
            let expected = plain.clone();
            tokio::task::spawn_blocking(move || {
                let mut all = vec![];
                r.read_to_end(&mut all).expect("read");
                assert_eq!(all, expected, "len {len}");
                if len > 2 * block {
                    // Backwards across a block boundary, then from the end.
                    for at in [len - 50, block + 1, block - 1, 3] {
                        r.seek(SeekFrom::Start(at as u64)).expect("seek");
                        let mut b = [0u8; 40];
                        let n = r.read(&mut b).expect("read");
                        assert!(n > 0);
                        assert_eq!(&b[..n], &expected[at..at + n], "at {at}");
                    }
                    r.seek(SeekFrom::End(-2)).expect("seek");
                    let mut tail = vec![];
                    r.read_to_end(&mut tail).expect("read");
                    assert_eq!(tail, expected[len - 2..]);
                }
            })
            .await
            .expect("blocking");
        }
        // Cut at a segment boundary, or damaged: reads fail instead of returning less.
        let path = dir.path().join(format!("tenants/{}/zip", k.tenant()));
        let sealed = std::fs::read(&path).expect("sealed");
        let cut = envelope::HEADER + 2 * (seg + 16);
        std::fs::write(&path, &sealed[..cut]).expect("cut");
        let mut r = store.open_reader(&k, "zip").await.expect("open");
        let failed = tokio::task::spawn_blocking(move || r.read_to_end(&mut vec![]).is_err())
            .await
            .expect("blocking");
        assert!(failed, "a truncated object must not read as a shorter one");
        let wrong = DataKey::from_bytes_for_tests(k.tenant(), [6; 32]);
        std::fs::write(&path, &sealed).expect("restore");
        let mut r = store.open_reader(&wrong, "zip").await.expect("open");
        let failed = tokio::task::spawn_blocking(move || r.read(&mut [0u8; 8]).is_err())
            .await
            .expect("blocking");
        assert!(failed, "the wrong key reads nothing");
    }
}
