//! Writing the package's files: one object (with its size and SHA-256) or one JSONL file
//! streamed from a query, and the record of each finished file that makes a resumed
//! export skip it.

use super::destination::{Destination, DestinationError, describe};
use super::package::{self, FileEntry};
use super::run::{Transient, transient};
use crate::db::Db;
use crate::ids::{DocumentId, TenantId};
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
    /// A document and the snapshot.
    Document(DocumentId, DateTime<Utc>),
}

/// A written file and its lines.
pub(super) struct Written {
    pub(super) entry: FileEntry,
    pub(super) rows: i64,
}

/// Records a finished file (its counters move only the first time).
///
/// The commit does not wait for the WAL to reach disk: a record lost in a database crash
/// only means its file is written again by the resumed attempt.
pub(super) async fn record(
    db: &Db,
    tenant: TenantId,
    export: uuid::Uuid,
    w: &Written,
) -> Result<(), Transient> {
    let mut tx = db.begin_tenant_redoable(tenant).await?;
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
    tx.commit().await?;
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

pub(super) async fn put_bytes(dest: &Destination, path: &str, bytes: Vec<u8>) -> Result<Written, Put> {
    let entry = FileEntry {
        path: path.to_owned(),
        bytes: bytes.len() as i64,
        sha256: package::sha256_hex(&bytes),
    };
    dest.store()
        .put(&dest.path(path), PutPayload::from(bytes))
        .await
        .map_err(|e| refused(&e))?;
    Ok(Written { entry, rows: 0 })
}

/// A JSONL file smaller than this is written with one PUT; a larger one as a multipart
/// upload started once the buffer fills (one request per small file, not three).
const SINGLE_PUT: usize = 5 * 1024 * 1024;

/// Streams the rows of `sql` (one JSON value each) into `path` as JSONL.
pub(super) async fn put_jsonl(
    dest: &Destination,
    db: &Db,
    tenant: TenantId,
    path: &str,
    sql: &'static str,
    bind: Bind,
) -> Result<Written, Put> {
    let mut multipart: Option<WriteMultipart> = None;
    let mut buffer: Vec<u8> = Vec::new();
    let (mut hash, mut bytes, mut rows) = (Sha256::new(), 0i64, 0i64);
    let mut tx = db
        .begin_tenant(tenant)
        .await
        .map_err(|e| Put::Transient(transient(e)))?;
    {
        let q = sqlx::query_scalar::<_, serde_json::Value>(sqlx::AssertSqlSafe(sql));
        let q = match bind {
            Bind::Snapshot(t) => q.bind(t),
            Bind::Seq(n) => q.bind(n),
            Bind::Document(d, t) => q.bind(d).bind(t),
        };
        let mut stream = q.fetch(tx.conn());
        while let Some(v) = stream
            .try_next()
            .await
            .map_err(|e| Put::Transient(transient(e)))?
        {
            let mut line = serde_json::to_vec(&v).unwrap_or_default();
            line.push(b'\n');
            hash.update(&line);
            bytes += line.len() as i64;
            rows += 1;
            match multipart.as_mut() {
                Some(w) => {
                    w.write(&line);
                    // At most two parts in flight: memory stays a few parts whatever the size.
                    w.wait_for_capacity(2).await.map_err(|e| refused(&e))?;
                }
                None => {
                    buffer.extend_from_slice(&line);
                    if buffer.len() >= SINGLE_PUT {
                        let upload = dest
                            .store()
                            .put_multipart(&dest.path(path))
                            .await
                            .map_err(|e| refused(&e))?;
                        let mut w = WriteMultipart::new(upload);
                        w.write(&std::mem::take(&mut buffer));
                        multipart = Some(w);
                    }
                }
            }
        }
    }
    tx.commit().await.map_err(|e| Put::Transient(transient(e)))?;
    match multipart {
        Some(w) => {
            w.finish().await.map_err(|e| refused(&e))?;
        }
        None => {
            dest.store()
                .put(&dest.path(path), PutPayload::from(buffer))
                .await
                .map_err(|e| refused(&e))?;
        }
    }
    Ok(Written {
        entry: FileEntry {
            path: path.to_owned(),
            bytes,
            sha256: hex::encode(hash.finalize()),
        },
        rows,
    })
}
