//! Writing an export's package (the `export` job's work). The first attempt fixes the
//! snapshot (`snapshot_at`, and the audit chain's head as `audit_seq`): every store is read
//! as of it, so what was added later is not half-included. Each finished file is recorded
//! in `export_files` (path, size, SHA-256) in the tenant's scope; a resumed attempt skips
//! those, so a worker killed mid-export sends no finished file twice, and the manifest,
//! built from the records, is the same as an uninterrupted run's (but its `generated_at`).
//! Tables are streamed row by row into multipart uploads (bounded memory); a document's
//! files are read one at a time (bounded by the largest upload a plan allows).

use super::destination::{Destination, DestinationError, describe};
use super::package::{self, AuditHead, FileEntry, Manifest};
use crate::audit::{Actor, Auditor, Event, GENESIS, Outcome, StoredEvent};
use crate::blobs::{BlobError, BlobStore};
use crate::config::MasterKey;
use crate::db::{Db, DbError, TenantTx};
use crate::documents::{self, vectors};
use crate::identity::keyring::KeyRing;
use crate::ids::{DocumentId, TenantId};
use crate::imports::source::{S3Credentials, S3Source};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};

/// What the job needs.
#[derive(Debug, Clone, Copy)]
pub struct ExportContext<'a> {
    /// Service-role database.
    pub db: &'a Db,
    /// The tenant's stored objects.
    pub blobs: &'a BlobStore,
    /// Opens the sealed credentials and the tenant's data key.
    pub master: &'a MasterKey,
    /// Signs the manifest.
    pub keys: &'a KeyRing,
    /// Audit writer.
    pub auditor: &'a Auditor,
    /// Accept `http://` and private endpoints (tests, private networks).
    pub allow_http: bool,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// The package and its signed manifest are written.
    Done {
        /// SHA-256 of `manifest.json`.
        manifest_sha256: String,
    },
    /// It had ended already, or was cancelled meanwhile.
    Ended,
    /// The destination refused; the export failed with this code.
    Failed(&'static str),
}

/// An attempt failed in a way worth retrying (database, storage, a network blip).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Transient(pub String);

fn transient(e: impl std::fmt::Display) -> Transient {
    Transient(e.to_string())
}

impl From<DbError> for Transient {
    fn from(e: DbError) -> Self {
        transient(e)
    }
}

impl From<sqlx::Error> for Transient {
    fn from(e: sqlx::Error) -> Self {
        transient(e)
    }
}

/// The stores of the package, each a JSONL file: (count key and file stem, the query
/// returning one JSON object per row as of the snapshot `$1`). Secrets never leave:
/// password and key hashes are dropped, refresh tokens are not exported.
const TABLES: [(&str, &str); 5] = [
    ("queries", "SELECT to_jsonb(q) FROM queries q WHERE created_at <= $1 ORDER BY created_at, id"),
    ("usage", "SELECT to_jsonb(u) FROM usage_events u WHERE occurred_at <= $1 ORDER BY occurred_at, id"),
    (
        "invoices",
        "SELECT to_jsonb(i) || jsonb_build_object('lines', coalesce((SELECT jsonb_agg(to_jsonb(l) - 'tenant_id' ORDER BY l.ordinal)
                 FROM invoice_lines l WHERE l.invoice_id = i.id), '[]'::jsonb))
         FROM invoices i WHERE created_at <= $1 ORDER BY period, id",
    ),
    ("users", "SELECT to_jsonb(u) - 'password_hash' FROM users u WHERE created_at <= $1 ORDER BY created_at, id"),
    ("api_keys", "SELECT to_jsonb(k) - 'key_hash' FROM api_keys k WHERE created_at <= $1 ORDER BY created_at, id"),
];

/// Counts of every store at the snapshot, the way the package holds them.
async fn counts(
    tx: &mut TenantTx,
    snapshot: DateTime<Utc>,
    audit_seq: i64,
) -> Result<BTreeMap<String, i64>, Transient> {
    let mut out = BTreeMap::new();
    for (name, sql) in TABLES {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM ({sql}) s")))
            .bind(snapshot)
            .fetch_one(tx.conn())
            .await?;
        out.insert(name.to_owned(), n);
    }
    let docs: i64 = sqlx::query_scalar("SELECT count(*) FROM documents WHERE created_at <= $1")
        .bind(snapshot)
        .fetch_one(tx.conn())
        .await?;
    let chunks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document_id
         WHERE d.created_at <= $1 AND c.created_at <= $1",
    )
    .bind(snapshot)
    .fetch_one(tx.conn())
    .await?;
    out.insert("documents".into(), docs);
    out.insert("chunks".into(), chunks);
    out.insert("audit".into(), audit_seq);
    Ok(out)
}

/// Records a finished file.
async fn record(db: &Db, tenant: TenantId, export: uuid::Uuid, f: &FileEntry) -> Result<(), Transient> {
    let mut tx = db.begin_tenant(tenant).await?;
    sqlx::query(
        "INSERT INTO export_files (tenant_id, export_id, path, bytes, sha256) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(export)
    .bind(&f.path)
    .bind(f.bytes)
    .bind(&f.sha256)
    .execute(tx.conn())
    .await?;
    sqlx::query("UPDATE exports SET files_done = files_done + 1, bytes_done = bytes_done + $2 WHERE id = $1")
        .bind(export)
        .bind(f.bytes)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Why a file could not be written.
enum Put {
    Destination(DestinationError),
    Transient(Transient),
}

impl From<Transient> for Put {
    fn from(e: Transient) -> Self {
        Put::Transient(e)
    }
}

async fn put_bytes(dest: &Destination, path: &str, bytes: Vec<u8>) -> Result<FileEntry, Put> {
    let entry = FileEntry {
        path: path.to_owned(),
        bytes: bytes.len() as i64,
        sha256: package::sha256_hex(&bytes),
    };
    dest.store()
        .put(&dest.path(path), PutPayload::from(bytes))
        .await
        .map_err(|e| Put::Destination(describe(&e)))?;
    Ok(entry)
}

/// Streams the rows of `sql` (one JSON value each) into `path` as JSONL.
async fn put_jsonl(
    dest: &Destination,
    tx: &mut TenantTx,
    path: &str,
    sql: &'static str,
    snapshot: DateTime<Utc>,
) -> Result<FileEntry, Put> {
    let upload = dest
        .store()
        .put_multipart(&dest.path(path))
        .await
        .map_err(|e| Put::Destination(describe(&e)))?;
    let mut w = WriteMultipart::new(upload);
    let (mut hash, mut bytes) = (Sha256::new(), 0i64);
    let mut rows = sqlx::query_scalar::<_, serde_json::Value>(sqlx::AssertSqlSafe(sql))
        .bind(snapshot)
        .fetch(tx.conn());
    while let Some(v) = rows.try_next().await.map_err(|e| Put::Transient(transient(e)))? {
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        hash.update(&line);
        bytes += line.len() as i64;
        w.write(&line);
        // At most two parts in flight: memory stays a few parts whatever the table's size.
        w.wait_for_capacity(2)
            .await
            .map_err(|e| Put::Destination(describe(&e)))?;
    }
    drop(rows);
    w.finish().await.map_err(|e| Put::Destination(describe(&e)))?;
    Ok(FileEntry {
        path: path.to_owned(),
        bytes,
        sha256: hex::encode(hash.finalize()),
    })
}

/// Runs (or resumes) export `id` of `tenant`.
pub async fn run(cx: ExportContext<'_>, tenant: TenantId, id: uuid::Uuid) -> Result<Finished, Transient> {
    // Start, or resume: fix the snapshot once.
    let mut tx = cx.db.begin_tenant(tenant).await?;
    let row: Option<(String, serde_json::Value, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT status, destination, credentials FROM exports WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
    let Some((status, destination, sealed)) = row else {
        return Ok(Finished::Ended);
    };
    if status != "queued" && status != "running" {
        return Ok(Finished::Ended);
    }
    if status == "queued" {
        let head: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM audit_events")
            .fetch_one(tx.conn())
            .await?;
        sqlx::query(
            "UPDATE exports SET status = 'running', started_at = now(), snapshot_at = now(), audit_seq = $2,
                                attempts = attempts + 1 WHERE id = $1",
        )
        .bind(id)
        .bind(head)
        .execute(tx.conn())
        .await?;
        let ev =
            Event::new("exports.started", Outcome::Allowed, Actor::System).target(format!("export:{id}"));
        cx.auditor.tenant(&mut tx, ev).await.map_err(transient)?;
    } else {
        sqlx::query("UPDATE exports SET attempts = attempts + 1 WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await?;
    }
    let (snapshot, audit_seq): (DateTime<Utc>, i64) =
        sqlx::query_as("SELECT snapshot_at, audit_seq FROM exports WHERE id = $1")
            .bind(id)
            .fetch_one(tx.conn())
            .await?;
    let key = crate::tenant_keys::data_key(&mut tx, cx.master)
        .await
        .map_err(transient)?;
    tx.commit().await?;

    let s3: Result<S3Source, _> = serde_json::from_value(destination);
    let creds = sealed
        .as_deref()
        .map(|s| S3Credentials::open_for(cx.master, &super::credentials_context(id), s));
    let dest = match (s3, creds) {
        (Ok(s3), Some(Ok(creds))) => Destination::open(&s3, &creds, id, cx.allow_http).await,
        _ => Err(DestinationError {
            code: "destination_credentials_invalid",
            message: "the export's stored credentials cannot be opened".into(),
        }),
    };
    let dest = match dest {
        Ok(d) => d,
        Err(e) => return fail(cx, tenant, id, &e).await,
    };

    let mut tx = cx.db.begin_tenant(tenant).await?;
    let docs: Vec<DocumentId> =
        sqlx::query_scalar("SELECT id FROM documents WHERE created_at <= $1 ORDER BY id")
            .bind(snapshot)
            .fetch_all(tx.conn())
            .await?;
    let done: HashSet<String> = sqlx::query_scalar("SELECT path FROM export_files WHERE export_id = $1")
        .bind(id)
        .fetch_all(tx.conn())
        .await?
        .into_iter()
        .collect();
    sqlx::query("UPDATE exports SET files_total = $2 WHERE id = $1")
        .bind(id)
        .bind((docs.len() * 6 + TABLES.len() + 1) as i32)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;

    let mut model: Option<serde_json::Value> = None;
    for d in &docs {
        if cancelled(cx.db, tenant, id).await? {
            return Ok(Finished::Ended);
        }
        let base = format!("documents/{d}");
        let blobs: [(&str, String); 4] = [
            ("original", documents::original_key(*d)),
            ("text.json", documents::text_key(*d)),
            ("vectors.bin", vectors::vectors_key(*d)),
            ("vectors.json", vectors::manifest_key(*d)),
        ];
        for (name, object) in blobs {
            let path = format!("{base}/{name}");
            if done.contains(&path) {
                continue;
            }
            let bytes = match cx.blobs.get(&key, &object).await {
                Ok(b) => b,
                // Not every document has every file (a failed parse has no text).
                Err(BlobError::NotFound) => continue,
                Err(e) => return Err(transient(e)),
            };
            if name == "vectors.json" && model.is_none() {
                model = serde_json::from_slice(&bytes).ok();
            }
            match put_bytes(&dest, &path, bytes).await {
                Ok(f) => record(cx.db, tenant, id, &f).await?,
                Err(Put::Destination(e)) => return fail(cx, tenant, id, &e).await,
                Err(Put::Transient(e)) => return Err(e),
            }
        }
        for (name, sql) in [
            (
                "metadata.json",
                "SELECT to_jsonb(d) FROM documents d WHERE id = $1",
            ),
            (
                "chunks.jsonl",
                "SELECT to_jsonb(c) - 'tenant_id' FROM chunks c WHERE document_id = $1 AND created_at <= $2 ORDER BY ordinal",
            ),
        ] {
            let path = format!("{base}/{name}");
            if done.contains(&path) {
                continue;
            }
            let mut tx = cx.db.begin_tenant(tenant).await?;
            let rows: Vec<serde_json::Value> = match name {
                "metadata.json" => sqlx::query_scalar(sql).bind(d).fetch_all(tx.conn()).await?,
                _ => {
                    sqlx::query_scalar(sql)
                        .bind(d)
                        .bind(snapshot)
                        .fetch_all(tx.conn())
                        .await?
                }
            };
            tx.commit().await?;
            let bytes = match name {
                "metadata.json" => serde_json::to_vec_pretty(&rows.first()).unwrap_or_default(),
                _ => rows
                    .iter()
                    .flat_map(|r| {
                        let mut l = serde_json::to_vec(r).unwrap_or_default();
                        l.push(b'\n');
                        l
                    })
                    .collect(),
            };
            match put_bytes(&dest, &path, bytes).await {
                Ok(f) => record(cx.db, tenant, id, &f).await?,
                Err(Put::Destination(e)) => return fail(cx, tenant, id, &e).await,
                Err(Put::Transient(e)) => return Err(e),
            }
        }
    }
    for (name, sql) in TABLES {
        let path = format!("{name}.jsonl");
        if done.contains(&path) {
            continue;
        }
        let mut tx = cx.db.begin_tenant(tenant).await?;
        let put = put_jsonl(&dest, &mut tx, &path, sql, snapshot).await;
        tx.commit().await?;
        match put {
            Ok(f) => record(cx.db, tenant, id, &f).await?,
            Err(Put::Destination(e)) => return fail(cx, tenant, id, &e).await,
            Err(Put::Transient(e)) => return Err(e),
        }
    }
    if !done.contains("audit.jsonl") {
        let mut tx = cx.db.begin_tenant(tenant).await?;
        let events: Vec<StoredEvent> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM audit_events WHERE seq <= $1 ORDER BY seq",
            crate::audit::COLS
        )))
        .bind(audit_seq)
        .fetch_all(tx.conn())
        .await?;
        tx.commit().await?;
        let bytes: Vec<u8> = events
            .iter()
            .flat_map(|e| {
                let mut l = serde_json::to_vec(e).unwrap_or_default();
                l.push(b'\n');
                l
            })
            .collect();
        match put_bytes(&dest, "audit.jsonl", bytes).await {
            Ok(f) => record(cx.db, tenant, id, &f).await?,
            Err(Put::Destination(e)) => return fail(cx, tenant, id, &e).await,
            Err(Put::Transient(e)) => return Err(e),
        }
    }
    if cancelled(cx.db, tenant, id).await? {
        return Ok(Finished::Ended);
    }

    // The manifest, from the records: the same for a resumed run as for an uninterrupted one.
    let mut tx = cx.db.begin_tenant(tenant).await?;
    let files: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT path, bytes, sha256 FROM export_files WHERE export_id = $1 ORDER BY path")
            .bind(id)
            .fetch_all(tx.conn())
            .await?;
    let counts = counts(&mut tx, snapshot, audit_seq).await?;
    let head: Option<String> = sqlx::query_scalar("SELECT hash FROM audit_events WHERE seq = $1")
        .bind(audit_seq)
        .fetch_optional(tx.conn())
        .await?;
    tx.commit().await?;
    let embeddings = match &model {
        Some(m) => serde_json::json!({"model": m["model"], "dimension": m["dimension"],
                                       "format": "vectors.bin: little-endian f32, one row per chunk in ordinal order"}),
        None => serde_json::json!(null),
    };
    let manifest = Manifest {
        format: package::FORMAT.into(),
        export_id: id,
        tenant_id: tenant.as_uuid(),
        snapshot_at: snapshot,
        generated_at: Utc::now(),
        counts,
        embeddings,
        audit_head: AuditHead {
            seq: audit_seq,
            hash: head.unwrap_or_else(|| GENESIS.to_owned()),
        },
        files: files
            .into_iter()
            .map(|(path, bytes, sha256)| FileEntry { path, bytes, sha256 })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    let manifest_sha256 = package::sha256_hex(&bytes);
    let (kid, signing) = cx.keys.signer().await.map_err(transient)?;
    let signature = serde_json::to_vec_pretty(&package::sign(&bytes, &kid, &signing)).unwrap_or_default();
    for (path, b) in [(package::MANIFEST, bytes), (package::SIGNATURE, signature)] {
        if let Err(p) = put_bytes(&dest, path, b).await {
            return match p {
                Put::Destination(e) => fail(cx, tenant, id, &e).await,
                Put::Transient(e) => Err(e),
            };
        }
    }
    let mut tx = cx.db.begin_tenant(tenant).await?;
    let (files_done, bytes_done): (i32, i64) = sqlx::query_as(
        "UPDATE exports SET status = 'done', credentials = NULL, finished_at = now(), manifest_sha256 = $2,
                            files_total = files_done
         WHERE id = $1 AND status = 'running' RETURNING files_done, bytes_done",
    )
    .bind(id)
    .bind(&manifest_sha256)
    .fetch_optional(tx.conn())
    .await?
    .unwrap_or_default();
    let ev = Event::new("exports.finished", Outcome::Allowed, Actor::System)
        .target(format!("export:{id}"))
        .detail("files", files_done)
        .detail("bytes", bytes_done)
        .detail("manifest_sha256", manifest_sha256.clone());
    cx.auditor.tenant(&mut tx, ev).await.map_err(transient)?;
    tx.commit().await?;
    Ok(Finished::Done { manifest_sha256 })
}

async fn cancelled(db: &Db, tenant: TenantId, id: uuid::Uuid) -> Result<bool, Transient> {
    let mut tx = db.begin_tenant(tenant).await?;
    let s: Option<String> = sqlx::query_scalar("SELECT status FROM exports WHERE id = $1")
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(s.as_deref() != Some("running"))
}

/// Fails the export for good with the destination's code; its credentials are erased.
async fn fail(
    cx: ExportContext<'_>,
    tenant: TenantId,
    id: uuid::Uuid,
    e: &DestinationError,
) -> Result<Finished, Transient> {
    let mut tx = cx.db.begin_tenant(tenant).await?;
    let n = sqlx::query(
        "UPDATE exports SET status = 'failed', credentials = NULL, finished_at = now(), error_code = $2, error_message = $3
         WHERE id = $1 AND status IN ('queued', 'running')",
    )
    .bind(id)
    .bind(e.code)
    .bind(&e.message)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n == 1 {
        let ev = Event::new("exports.failed", Outcome::Failed, Actor::System)
            .target(format!("export:{id}"))
            .reason(e.code);
        cx.auditor.tenant(&mut tx, ev).await.map_err(transient)?;
    }
    tx.commit().await?;
    Ok(Finished::Failed(e.code))
}
