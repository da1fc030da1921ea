//! Writing the package's files: one object (with its size and SHA-256) or one JSONL file
//! streamed from a query, and the record of each finished file that makes a resumed
//! export skip it.

use super::destination::{Destination, DestinationError, Target, describe};
use super::package::FileEntry;
use super::run::{Transient, transient};
use crate::blobs::{BlobError, BlobStore, SealedWriter};
use crate::db::Db;
use crate::ids::TenantId;
use crate::tenant_keys::DataKey;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

/// What a JSONL file's query binds.
#[derive(Debug, Clone, Copy)]
pub(super) enum Bind {
    /// The snapshot instant.
    Snapshot(DateTime<Utc>),
    /// The audit chain's head.
    Seq(i64),
}

/// A written file and its lines.
pub(super) struct Written {
    pub(super) entry: FileEntry,
    pub(super) rows: i64,
}

/// Records finished files in one transaction (each one's counters move only the first
/// time).
///
/// The commit does not wait for the WAL to reach disk: a record lost in a database crash
/// only means its file is written again by the resumed attempt.
pub(super) async fn record(
    db: &Db,
    tenant: TenantId,
    export: uuid::Uuid,
    files: &[Written],
) -> Result<(), Transient> {
    if files.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin_tenant_redoable(tenant).await?;
    for w in files {
        record_one(&mut tx, tenant, export, w).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn record_one(
    tx: &mut crate::db::TenantTx,
    tenant: TenantId,
    export: uuid::Uuid,
    w: &Written,
) -> Result<(), Transient> {
    let fresh = sqlx::query(
        "INSERT INTO export_files (tenant_id, export_id, path, bytes, sha256, rows) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(export)
    .bind(&w.entry.path)
    .bind(w.entry.bytes)
    .bind(&w.entry.sha256)
    .bind(w.rows)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1;
    if fresh {
        sqlx::query(
            "UPDATE exports SET files_done = files_done + 1, bytes_done = bytes_done + $2 WHERE id = $1",
        )
        .bind(export)
        .bind(w.entry.bytes)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

/// Why a file could not be written.
pub(super) enum Put {
    /// The destination refused (403, 404): the export fails.
    Destination(DestinationError),
    /// Worth a retry (the destination did not answer, the database, storage).
    Transient(Transient),
}

impl From<Transient> for Put {
    fn from(e: Transient) -> Self {
        Put::Transient(e)
    }
}

/// A failed write: a refusal fails the export, anything else is retried.
pub(super) fn refused(e: &object_store::Error) -> Put {
    let d = describe(e);
    match d.code {
        "access_denied" | "no_such_bucket" => Put::Destination(d),
        _ => Put::Transient(Transient(format!("{}: {}", d.code, d.message))),
    }
}

/// A JSONL file or object smaller than this is written with one PUT; a larger one as a
/// multipart upload started once the buffer fills (one request per small file, not three).
const SINGLE_PUT: usize = 5 * 1024 * 1024;

/// A file of the package being written: buffered up to [`SINGLE_PUT`], streamed as a
/// multipart upload past that (at most two parts in flight), hashed as it goes.
pub(super) struct FileWriter<'a> {
    dest: &'a Destination,
    path: String,
    buffer: Vec<u8>,
    upload: Option<Upload>,
    hash: Sha256,
    bytes: i64,
}

enum Upload {
    Bucket(WriteMultipart),
    // Boxed: the sealer holds a cipher and a segment buffer.
    Docket(Box<SealedWriter>),
}

/// Docket's own storage failing is worth a retry (it is not the customer's refusal).
fn storage(e: BlobError) -> Put {
    Put::Transient(transient(e))
}

impl<'a> FileWriter<'a> {
    pub(super) fn new(dest: &'a Destination, path: &str) -> Self {
        Self {
            dest,
            path: path.to_owned(),
            buffer: Vec::new(),
            upload: None,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    pub(super) async fn write(&mut self, data: &[u8]) -> Result<(), Put> {
        self.hash.update(data);
        self.bytes += data.len() as i64;
        match self.upload.as_mut() {
            Some(Upload::Bucket(w)) => {
                w.write(data);
                // At most two parts in flight: memory stays a few parts whatever the size.
                w.wait_for_capacity(2).await.map_err(|e| refused(&e))?;
            }
            Some(Upload::Docket(w)) => w.write(data).await.map_err(storage)?,
            None => {
                self.buffer.extend_from_slice(data);
                if self.buffer.len() >= SINGLE_PUT {
                    let buffered = std::mem::take(&mut self.buffer);
                    let mut upload = match &self.dest.target {
                        Target::Bucket { store, root } => {
                            let up = store
                                .put_multipart(&Destination::bucket_path(root, &self.path))
                                .await
                                .map_err(|e| refused(&e))?;
                            Upload::Bucket(WriteMultipart::new_with_chunk_size(up, SINGLE_PUT))
                        }
                        Target::Docket { blobs, key, root } => Upload::Docket(Box::new(
                            blobs
                                .writer(key, &format!("{root}/{}", self.path))
                                .await
                                .map_err(storage)?,
                        )),
                    };
                    match &mut upload {
                        Upload::Bucket(w) => w.write(&buffered),
                        Upload::Docket(w) => w.write(&buffered).await.map_err(storage)?,
                    }
                    self.upload = Some(upload);
                }
            }
        }
        Ok(())
    }

    pub(super) async fn finish(self, rows: i64) -> Result<Written, Put> {
        match (self.upload, &self.dest.target) {
            (Some(Upload::Bucket(w)), _) => {
                w.finish().await.map_err(|e| refused(&e))?;
            }
            (Some(Upload::Docket(w)), _) => {
                w.finish().await.map_err(storage)?;
            }
            (None, Target::Bucket { store, root }) => {
                store
                    .put(
                        &Destination::bucket_path(root, &self.path),
                        PutPayload::from(self.buffer),
                    )
                    .await
                    .map_err(|e| refused(&e))?;
            }
            (None, Target::Docket { blobs, key, root }) => {
                blobs
                    .put(key, &format!("{root}/{}", self.path), &self.buffer)
                    .await
                    .map_err(storage)?;
            }
        }
        Ok(Written {
            entry: FileEntry {
                path: self.path,
                bytes: self.bytes,
                sha256: hex::encode(self.hash.finalize()),
            },
            rows,
        })
    }
}

/// Writes `bytes` as the file `path`.
pub(super) async fn put_bytes(dest: &Destination, path: &str, bytes: Vec<u8>) -> Result<Written, Put> {
    let mut w = FileWriter::new(dest, path);
    w.write(&bytes).await?;
    w.finish(0).await
}

/// Streams the tenant's stored object `object` (decrypted) into the file `path`; `None` if
/// it does not exist.
pub(super) async fn put_object(
    dest: &Destination,
    path: &str,
    blobs: &BlobStore,
    key: &DataKey,
    object: &str,
) -> Result<Option<Written>, Put> {
    let mut stream = match blobs.get_stream(key, object).await {
        Ok(s) => s,
        Err(BlobError::NotFound) => return Ok(None),
        Err(e) => return Err(storage(e)),
    };
    let mut w = FileWriter::new(dest, path);
    while let Some(piece) = stream.bytes.try_next().await.map_err(storage)? {
        w.write(&piece).await?;
    }
    w.finish(0).await.map(Some)
}

/// Streams the rows of `sql` (one JSON value each) into `path` as JSONL.
pub(super) async fn put_jsonl(
    dest: &Destination,
    db: &Db,
    tenant: TenantId,
    path: &str,
    sql: &'static str,
    bind: Bind,
) -> Result<Written, Put> {
    let mut w = FileWriter::new(dest, path);
    let mut rows = 0i64;
    let mut tx = db
        .begin_tenant(tenant)
        .await
        .map_err(|e| Put::Transient(transient(e)))?;
    {
        let q = sqlx::query_scalar::<_, serde_json::Value>(sqlx::AssertSqlSafe(sql));
        let q = match bind {
            Bind::Snapshot(t) => q.bind(t),
            Bind::Seq(n) => q.bind(n),
        };
        let mut stream = q.fetch(tx.conn());
        while let Some(v) = stream
            .try_next()
            .await
            .map_err(|e| Put::Transient(transient(e)))?
        {
            let mut line = serde_json::to_vec(&v).unwrap_or_default();
            line.push(b'\n');
            rows += 1;
            w.write(&line).await?;
        }
    }
    tx.commit().await.map_err(|e| Put::Transient(transient(e)))?;
    w.finish(rows).await
}
