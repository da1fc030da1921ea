//! Sealed objects in pieces: a writer that encrypts and uploads as data arrives
//! (multipart, at most two parts in flight) and a stream that decrypts ranged reads one
//! block at a time. Memory is a few parts or one segment whatever the object's size.

use super::envelope::{Opener, Sealer};
use super::{BlobError, BlobKey, BlobStore, Stored};
use crate::tenant_keys::DataKey;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::{ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

/// Bytes per uploaded part.
const PART: usize = 5 * 1024 * 1024;
/// Stored bytes per ranged read of a streamed GET: 16 sealed segments (4 MiB of plaintext).
const READ_BLOCK: u64 = 16 * (super::envelope::SEGMENT + super::envelope::TAG) as u64;

/// An object of one tenant being written (see [`BlobStore::writer`]).
pub struct SealedWriter {
    writer: WriteMultipart,
    sealer: Sealer,
    size: u64,
    hasher: Sha256,
}

impl std::fmt::Debug for SealedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedWriter")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A sealed object opened for a streamed read: its plaintext length and its bytes.
pub struct SealedStream {
    /// Plaintext bytes the stream yields.
    pub len: u64,
    /// The plaintext, decrypted segment by segment; an error ends it (damaged, store).
    pub bytes: BoxStream<'static, Result<Bytes, BlobError>>,
}

impl std::fmt::Debug for SealedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedStream")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl BlobStore {
    /// Starts writing an object of the key's tenant: encrypted and uploaded as it is
    /// written; nothing is visible until [`SealedWriter::finish`].
    pub async fn writer(&self, key: &DataKey, relative: &str) -> Result<SealedWriter, BlobError> {
        let path = BlobKey::for_tenant(key.tenant(), relative)?;
        let upload = self.inner.put_multipart(&path.0).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let (sealer, header) = Sealer::new(key.bytes(), path.as_str());
        writer.write(&header);
        Ok(SealedWriter {
            writer,
            sealer,
            size: 0,
            hasher: Sha256::new(),
        })
    }

    /// Reads an object of the key's tenant as a stream of plaintext (a HEAD, then ranged
    /// reads of 4 MiB decrypted one at a time; a tampered or truncated object ends the
    /// stream with an error).
    pub async fn get_stream(&self, key: &DataKey, relative: &str) -> Result<SealedStream, BlobError> {
        let path = BlobKey::for_tenant(key.tenant(), relative)?;
        let sealed_len = match self.inner.head(&path.0).await {
            Ok(m) => m.size,
            Err(object_store::Error::NotFound { .. }) => return Err(BlobError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let opener = Opener::new(key.bytes(), path.as_str(), sealed_len)?;
        // Ranged reads of a few MiB each: one request (or one file read) per block, where a
        // plain GET's stream comes in small pieces (8 KiB each from a local folder, each a
        // blocking task).
        let (store, at) = (self.inner.clone(), 0u64);
        let bytes = futures::stream::try_unfold(
            (store, path, at, Some(opener)),
            move |(store, path, at, mut opener)| async move {
                let Some(o) = opener.as_mut() else {
                    return Ok(None);
                };
                if at >= sealed_len {
                    opener.take().map(Opener::finish).transpose()?;
                    return Ok(None);
                }
                let end = (at + READ_BLOCK).min(sealed_len);
                let sealed = store.get_range(&path.0, at..end).await?;
                let plain = Bytes::from(o.push(&sealed)?);
                Ok(Some((plain, (store, path, end, opener))))
            },
        );
        Ok(SealedStream {
            len: Opener::plain_len(sealed_len),
            bytes: bytes.boxed(),
        })
    }
}

impl SealedWriter {
    /// Adds plaintext (waits while two parts are in flight: back-pressure).
    pub async fn write(&mut self, data: &[u8]) -> Result<(), BlobError> {
        self.size += data.len() as u64;
        self.hasher.update(data);
        self.writer.write(&self.sealer.push(data));
        self.writer.wait_for_capacity(2).await?;
        Ok(())
    }

    /// Plaintext bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Completes the object; returns its plaintext size and SHA-256.
    pub async fn finish(mut self) -> Result<Stored, BlobError> {
        self.writer.write(&self.sealer.finish());
        self.writer.finish().await?;
        Ok(Stored {
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }

    /// Abandons the object (nothing stays).
    pub async fn abort(self) {
        let _ = self.writer.abort().await;
    }
}

impl BlobStore {
    /// The plaintext length of an object of the key's tenant (one HEAD).
    pub async fn plain_len(&self, key: &DataKey, relative: &str) -> Result<u64, BlobError> {
        let path = BlobKey::for_tenant(key.tenant(), relative)?;
        match self.inner.head(&path.0).await {
            Ok(m) => Ok(Opener::plain_len(m.size)),
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::NotFound),
            Err(e) => Err(e.into()),
        }
    }
}
