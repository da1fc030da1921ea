//! A download package as one tar archive (`docket-export-{id}/…`, the same files as a
//! bucket export), streamed: each file is decrypted from the tenant's storage as it is
//! sent, so memory is one segment per download whatever the package's size. The length
//! is known before the first byte (every size is recorded), so the response carries a
//! `Content-Length`; a stored file whose length differs from its record ends the stream
//! with an error rather than a silently different archive.

use super::package;
use crate::blobs::{BlobError, BlobStore, envelope::DecryptError};
use crate::db::{DbError, TenantTx};
use crate::tenant_keys::DataKey;
use bytes::Bytes;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use std::sync::Arc;

/// Tar's block.
const BLOCK: u64 = 512;

/// A package ready to stream.
pub struct Archive {
    /// The file name to offer (`docket-export-{id}.tar`).
    pub name: String,
    /// Bytes the body yields.
    pub len: u64,
    /// The archive.
    pub body: BoxStream<'static, Result<Bytes, BlobError>>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("name", &self.name)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Why a package cannot be streamed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading the records.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Reading the stored files.
    #[error(transparent)]
    Blob(#[from] BlobError),
}

impl From<sqlx::Error> for ArchiveError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

fn header(path: &str, size: u64, mtime: u64) -> Result<Bytes, BlobError> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).map_err(|_| BlobError::BadKey(path.to_owned()))?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(Bytes::copy_from_slice(h.as_bytes()))
}

/// The archive of export `export`'s package (the caller checked it is a done download
/// package of the key's tenant; `tx` is in that tenant's scope).
pub async fn open(
    tx: &mut TenantTx,
    blobs: &BlobStore,
    key: Arc<DataKey>,
    export: uuid::Uuid,
    mtime: u64,
) -> Result<Archive, ArchiveError> {
    let folder = super::package_folder(export);
    let mut files: Vec<(String, u64)> = sqlx::query_as::<_, (String, i64)>(
        "SELECT path, bytes FROM export_files WHERE export_id = $1 ORDER BY path",
    )
    .bind(export)
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .map(|(p, b)| (p, b.max(0) as u64))
    .collect();
    for name in [package::MANIFEST, package::SIGNATURE] {
        let len = blobs.plain_len(&key, &format!("{folder}/{name}")).await?;
        files.push((name.to_owned(), len));
    }
    let len = files
        .iter()
        .map(|(_, size)| BLOCK + size + padding(*size))
        .sum::<u64>()
        + 2 * BLOCK;
    let top = format!("docket-export-{export}");
    let blobs = blobs.clone();
    let entries = stream::iter(files).then(move |(path, size)| {
        let (blobs, key, folder, top) = (blobs.clone(), key.clone(), folder.clone(), top.clone());
        async move {
            let head = header(&format!("{top}/{path}"), size, mtime)?;
            let file = blobs.get_stream(&key, &format!("{folder}/{path}")).await?;
            if file.len != size {
                return Err(BlobError::Decrypt(DecryptError));
            }
            let pad = Bytes::from(vec![0u8; padding(size) as usize]);
            Ok::<_, BlobError>(
                stream::once(async move { Ok(head) })
                    .chain(file.bytes)
                    .chain(stream::once(async move { Ok(pad) })),
            )
        }
    });
    let end = stream::once(async { Ok(Bytes::from(vec![0u8; 2 * BLOCK as usize])) });
    Ok(Archive {
        name: format!("docket-export-{export}.tar"),
        len,
        body: entries.try_flatten().chain(end).boxed(),
    })
}
