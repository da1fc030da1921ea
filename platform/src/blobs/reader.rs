//! Random access to a sealed object without holding it: `Read + Seek` over the plaintext,
//! fetching a block of segments at a time with ranged reads and decrypting it. Memory is
//! one block ([`BLOCK_SEGMENTS`] × 256 KiB) whatever the object's size, and no plaintext
//! touches a disk. Made for zip archives (read the directory at the end, then entries in
//! order), which need `Seek`.
//!
//! `Read` is blocking (it is what the zip reader needs): use it on a blocking thread; each
//! block is fetched through the runtime handle captured at open.

use super::envelope::{self, DecryptError, HEADER, SEGMENT, TAG};
use super::{BlobError, BlobKey, BlobStore};
use crate::tenant_keys::DataKey;
use aes_gcm::Aes256Gcm;
use object_store::ObjectStoreExt;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

/// Segments fetched and decrypted per ranged read (4 MiB of plaintext).
pub const BLOCK_SEGMENTS: u64 = 16;

const SEALED_SEGMENT: u64 = (SEGMENT + TAG) as u64;

/// A sealed object opened for reading (see the module docs).
pub struct SealedReader {
    store: BlobStore,
    path: BlobKey,
    cipher: Aes256Gcm,
    prefix: [u8; 7],
    sealed_len: u64,
    segments: u64,
    plain_len: u64,
    pos: u64,
    /// Plaintext offset of `block`, and the block itself.
    block_at: u64,
    block: Vec<u8>,
    runtime: tokio::runtime::Handle,
    /// Set when a fetch failed (the store, not the object): callers that see an I/O error
    /// through a wrapper (a zip reader) can tell "retry later" from "damaged".
    fault: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for SealedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedReader")
            .field("path", &self.path.as_str())
            .field("plain_len", &self.plain_len)
            .finish_non_exhaustive()
    }
}

impl BlobStore {
    /// Opens an object of the key's tenant for ranged, decrypting reads. Call from the
    /// runtime; read from a blocking thread.
    pub async fn open_reader(&self, key: &DataKey, relative: &str) -> Result<SealedReader, BlobError> {
        let path = BlobKey::for_tenant(key.tenant(), relative)?;
        let meta = match self.inner.head(&path.0).await {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => return Err(BlobError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let sealed_len = meta.size;
        if sealed_len < (HEADER + TAG) as u64 {
            return Err(DecryptError.into());
        }
        let header = self.inner.get_range(&path.0, 0..HEADER as u64).await?;
        let prefix = envelope::header_prefix(&header)?;
        let body = sealed_len - HEADER as u64;
        let segments = body.div_ceil(SEALED_SEGMENT).max(1);
        // Every segment carries a tag; a last segment shorter than one is a damaged object.
        if body - (segments - 1) * SEALED_SEGMENT < TAG as u64 {
            return Err(DecryptError.into());
        }
        Ok(SealedReader {
            store: self.clone(),
            cipher: envelope::cipher(key.bytes()),
            prefix,
            sealed_len,
            segments,
            plain_len: body - segments * TAG as u64,
            pos: 0,
            block_at: 0,
            block: Vec::new(),
            runtime: tokio::runtime::Handle::current(),
            fault: Arc::default(),
            path,
        })
    }
}

impl SealedReader {
    /// Plaintext length.
    pub fn len(&self) -> u64 {
        self.plain_len
    }

    /// Whether the object holds no plaintext.
    pub fn is_empty(&self) -> bool {
        self.plain_len == 0
    }

    /// Where a failed fetch is reported (see the field); shared, so it can be read after the
    /// reader has moved into a wrapper.
    pub fn fault(&self) -> Arc<Mutex<Option<String>>> {
        self.fault.clone()
    }

    /// Fetches and decrypts the block holding plaintext offset `at`.
    fn load(&mut self, at: u64) -> std::io::Result<()> {
        let first = at / SEGMENT as u64;
        let count = BLOCK_SEGMENTS.min(self.segments - first);
        let start = HEADER as u64 + first * SEALED_SEGMENT;
        let end = (start + count * SEALED_SEGMENT).min(self.sealed_len);
        let fetch = self.store.inner.get_range(&self.path.0, start..end);
        let sealed = match self.runtime.block_on(fetch) {
            Ok(b) => b,
            Err(e) => {
                let msg = e.to_string();
                if let Ok(mut f) = self.fault.lock() {
                    *f = Some(msg.clone());
                }
                return Err(std::io::Error::other(msg));
            }
        };
        let mut plain = Vec::with_capacity(count as usize * SEGMENT);
        for (i, seg) in sealed.chunks(SEALED_SEGMENT as usize).enumerate() {
            let n = first + i as u64;
            let counter = u32::try_from(n).map_err(std::io::Error::other)?;
            let last = n + 1 == self.segments;
            let opened =
                envelope::open_segment(&self.cipher, &self.prefix, counter, last, self.path.as_str(), seg)
                    .map_err(std::io::Error::other)?;
            plain.extend_from_slice(&opened);
        }
        self.block_at = first * SEGMENT as u64;
        self.block = plain;
        Ok(())
    }
}

impl Read for SealedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.plain_len || buf.is_empty() {
            return Ok(0);
        }
        let cached = self.block_at..self.block_at + self.block.len() as u64;
        if !cached.contains(&self.pos) {
            self.load(self.pos)?;
        }
        let from = (self.pos - self.block_at) as usize;
        let n = buf.len().min(self.block.len() - from);
        buf[..n].copy_from_slice(&self.block[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SealedReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.plain_len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = target;
        Ok(target)
    }
}
