//! Writing an export's package (the `export` job's work). One delivery at a time holds the
//! export's lease (a session advisory lock). The first attempt fixes the snapshot
//! (`snapshot_at`, and the audit chain's head as `audit_seq`): rows created after it are
//! left out. Each finished file is recorded in `export_files` (path, size, SHA-256, lines)
//! in the tenant's scope; a resumed attempt skips those, so a worker killed mid-export
//! sends no finished file twice, and the manifest, built from the records (its counts are
//! the records' lines), is the same as an uninterrupted run's but for `generated_at`.
//! Every JSONL file is streamed row by row (one PUT up to 5 MiB, a multipart upload past
//! that: bounded memory); a
//! document's stored files are read one at a time, four documents at once (bounded by the
//! largest upload a plan allows). A destination that refuses (403, 404) fails the export;
//! one that does not answer is retried.

use super::ExportKind;
use super::destination::{Destination, DestinationError};
use super::package::{self, AuditHead, FileEntry, Manifest};
use super::write::{Bind, Put, put_bytes, put_jsonl, put_object, record};
use crate::audit::{Actor, Auditor, Event, GENESIS, Outcome};
use crate::blobs::BlobStore;
use crate::config::MasterKey;
use crate::db::{Db, DbError};
use crate::documents::{self, vectors};
use crate::identity::keyring::KeyRing;
use crate::ids::{DocumentId, TenantId};
use crate::imports::source::{S3Credentials, S3Source};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

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

pub(super) fn transient(e: impl std::fmt::Display) -> Transient {
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

/// Attempts (crashes included) before an export fails for good.
pub const MAX_ATTEMPTS: i32 = 5;
/// Documents written at once.
const PARALLEL_DOCUMENTS: usize = 4;

/// The stores of the package, each a JSONL file: (file stem and count key, the query
/// returning one JSON object per row as of the snapshot `$1`). Secrets never leave:
/// password and key hashes are dropped, refresh tokens are not exported. A document being
/// deleted is left out (its deletion waits for exports already running).
const TABLES: [(&str, &str); 9] = [
    (
        "documents",
        "SELECT to_jsonb(d) FROM documents d WHERE created_at <= $1 AND status <> 'deleting' ORDER BY id",
    ),
    (
        "chunks",
        "SELECT to_jsonb(c) - 'tenant_id' FROM chunks c
         WHERE created_at <= $1
           AND document_id IN (SELECT id FROM documents WHERE created_at <= $1 AND status <> 'deleting')
         ORDER BY document_id, ordinal",
    ),
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
    ("consents", "SELECT to_jsonb(c) - 'tenant_id' FROM consents c WHERE decided_at <= $1 ORDER BY seq"),
    (
        "access_reviews",
        "SELECT (to_jsonb(r) - 'tenant_id') || jsonb_build_object('decisions', coalesce((SELECT jsonb_agg(to_jsonb(d) - 'tenant_id' ORDER BY d.decided_at, d.finding_id)
                 FROM access_review_decisions d WHERE d.review_id = r.id AND d.decided_at <= $1), '[]'::jsonb))
         FROM access_reviews r WHERE created_at <= $1 ORDER BY quarter, id",
    ),
];

/// The audit chain up to the head, as the verifier reads it (`audit::StoredEvent`).
const AUDIT: &str = "SELECT to_jsonb(a) - 'tenant_id' FROM audit_events a WHERE seq <= $1 ORDER BY seq";

/// Where a run stands once it holds the lease.
struct Started {
    snapshot: DateTime<Utc>,
    audit_seq: i64,
    key: Arc<crate::tenant_keys::DataKey>,
    dest: Destination,
    kind: ExportKind,
}

/// Runs (or resumes) export `id` of `tenant`, holding its lease for the whole run: a
/// second delivery of the same export while one runs does nothing.
pub async fn run(cx: ExportContext<'_>, tenant: TenantId, id: uuid::Uuid) -> Result<Finished, Transient> {
    leased(cx.db, id, Finished::Ended, run_leased(cx, tenant, id)).await
}

/// Runs `work` holding export `id`'s lease, or returns `busy` at once if another
/// delivery holds it.
pub(super) async fn leased<T>(
    db: &Db,
    id: uuid::Uuid,
    busy: T,
    work: impl std::future::Future<Output = Result<T, Transient>>,
) -> Result<T, Transient> {
    crate::db::leased(db, &format!("export:{id}"), busy, work).await
}

/// status, destination, sealed credentials, attempts, kind.
type StartRow = (String, serde_json::Value, Option<Vec<u8>>, i32, String);

async fn start(
    cx: ExportContext<'_>,
    tenant: TenantId,
    id: uuid::Uuid,
) -> Result<Result<Started, Finished>, Transient> {
    let mut tx = cx.db.begin_tenant(tenant).await?;
    let row: Option<StartRow> = sqlx::query_as(
        "SELECT status, destination, credentials, attempts, kind FROM exports WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    let Some((status, destination, sealed, attempts, kind)) = row else {
        return Ok(Err(Finished::Ended));
    };
    if status != "queued" && status != "running" {
        return Ok(Err(Finished::Ended));
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
    let key = Arc::new(
        crate::tenant_keys::data_key(&mut tx, cx.master)
            .await
            .map_err(transient)?,
    );
    let kind = ExportKind::parse(&kind);
    tx.commit().await?;
    // Crashes count: an export that kills its worker every time stops here.
    if attempts + 1 > MAX_ATTEMPTS {
        let e = DestinationError {
            code: "export_failed",
            message: format!("the export did not finish in {MAX_ATTEMPTS} attempts; request it again"),
        };
        return Ok(Err(fail(cx, tenant, id, &e).await?));
    }
    let s3: Result<S3Source, _> = serde_json::from_value(destination);
    let creds = sealed
        .as_deref()
        .map(|s| S3Credentials::open_for(cx.master, &super::credentials_context(id), s));
    let dest = match (kind, s3, creds) {
        (ExportKind::Download, _, _) => Ok(Destination::docket(cx.blobs.clone(), key.clone(), id)),
        (ExportKind::Bucket, Ok(s3), Some(Ok(creds))) => {
            Destination::open(&s3, &creds, id, cx.allow_http).await
        }
        _ => Err(DestinationError {
            code: "destination_credentials_invalid",
            message: "the export's stored credentials cannot be opened".into(),
        }),
    };
    match dest {
        Ok(dest) => Ok(Ok(Started {
            snapshot,
            audit_seq,
            key,
            dest,
            kind,
        })),
        Err(e) => Ok(Err(fail(cx, tenant, id, &e).await?)),
    }
}

/// Writes one document's stored files that are not recorded yet (its row and chunks are in
/// `documents.jsonl` and `chunks.jsonl`). The original (the large one) is recorded as soon
/// as it is written, the others together once all are: a worker killed mid-document sends
/// again at most that document's small files.
async fn document(
    cx: ExportContext<'_>,
    tenant: TenantId,
    id: uuid::Uuid,
    st: &Started,
    done: &HashSet<String>,
    d: DocumentId,
) -> Result<(), Put> {
    let base = format!("documents/{d}");
    let blobs: [(&str, String); 4] = [
        ("original", documents::original_key(d)),
        ("text.json", documents::text_key(d)),
        ("vectors.bin", vectors::vectors_key(d)),
        ("vectors.json", vectors::manifest_key(d)),
    ];
    let mut written = Vec::new();
    for (name, object) in blobs {
        let path = format!("{base}/{name}");
        if done.contains(&path) {
            continue;
        }
        // Not every document has every file (a failed parse has no text).
        let Some(w) = put_object(&st.dest, &path, cx.blobs, &st.key, &object).await? else {
            continue;
        };
        match name {
            "original" => record(cx.db, tenant, id, &[w]).await?,
            _ => written.push(w),
        }
    }
    record(cx.db, tenant, id, &written).await?;
    Ok(())
}

async fn run_leased(cx: ExportContext<'_>, tenant: TenantId, id: uuid::Uuid) -> Result<Finished, Transient> {
    let st = match start(cx, tenant, id).await? {
        Ok(s) => s,
        Err(finished) => return Ok(finished),
    };
    let mut tx = cx.db.begin_tenant(tenant).await?;
    let docs: Vec<DocumentId> = sqlx::query_scalar(
        "SELECT id FROM documents WHERE created_at <= $1 AND status <> 'deleting' ORDER BY id",
    )
    .bind(st.snapshot)
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
        .bind((docs.len() * 4 + TABLES.len() + 1) as i32)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;

    let (st_ref, done_ref) = (&st, &done);
    let mut writes = futures::stream::iter(docs.iter().copied())
        .map(|d| async move { document(cx, tenant, id, st_ref, done_ref, d).await })
        .buffer_unordered(PARALLEL_DOCUMENTS);
    let mut written = 0usize;
    while let Some(r) = writes.next().await {
        match r {
            Ok(()) => {}
            Err(Put::Destination(e)) => return fail(cx, tenant, id, &e).await,
            Err(Put::Transient(e)) => return Err(e),
        }
        written += 1;
        if written.is_multiple_of(16) && cancelled(cx.db, tenant, id).await? {
            return Ok(Finished::Ended);
        }
    }
    drop(writes);
    let tables = TABLES
        .iter()
        .map(|(name, sql)| (*name, *sql, Bind::Snapshot(st.snapshot)))
        .chain([("audit", AUDIT, Bind::Seq(st.audit_seq))]);
    for (name, sql, bind) in tables {
        let path = format!("{name}.jsonl");
        if done.contains(&path) {
            continue;
        }
        match put_jsonl(&st.dest, cx.db, tenant, &path, sql, bind).await {
            Ok(w) => record(cx.db, tenant, id, &[w]).await?,
            Err(Put::Destination(e)) => return fail(cx, tenant, id, &e).await,
            Err(Put::Transient(e)) => return Err(e),
        }
    }
    if cancelled(cx.db, tenant, id).await? {
        return Ok(Finished::Ended);
    }
    manifest(cx, tenant, id, &st, &docs).await
}

/// The manifest, from the records: the same for a resumed run as for an uninterrupted one.
async fn manifest(
    cx: ExportContext<'_>,
    tenant: TenantId,
    id: uuid::Uuid,
    st: &Started,
    docs: &[DocumentId],
) -> Result<Finished, Transient> {
    let mut tx = cx.db.begin_tenant(tenant).await?;
    let files: Vec<(String, i64, String, i64)> = sqlx::query_as(
        "SELECT path, bytes, sha256, rows FROM export_files WHERE export_id = $1 ORDER BY path",
    )
    .bind(id)
    .fetch_all(tx.conn())
    .await?;
    let head: Option<String> = sqlx::query_scalar("SELECT hash FROM audit_events WHERE seq = $1")
        .bind(st.audit_seq)
        .fetch_optional(tx.conn())
        .await?;
    tx.commit().await?;
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for (path, _, _, rows) in &files {
        // The stores are the JSONL files at the root (documents, chunks, queries, …).
        if let Some(store) = path.strip_suffix(".jsonl").filter(|p| !p.contains('/')) {
            *counts.entry(store.to_owned()).or_default() += rows;
        }
    }
    // The embedding model, from the first document that has vectors (read even when its
    // files were written by an earlier attempt).
    let mut embeddings = serde_json::Value::Null;
    for d in docs
        .iter()
        .filter(|d| files.iter().any(|f| f.0 == format!("documents/{d}/vectors.json")))
    {
        if let Ok(b) = cx.blobs.get(&st.key, &vectors::manifest_key(*d)).await
            && let Ok(m) = serde_json::from_slice::<serde_json::Value>(&b)
        {
            embeddings = serde_json::json!({"model": m["model"], "dimension": m["dimension"],
                                            "format": "vectors.bin: little-endian f32, one row per chunk in ordinal order"});
            break;
        }
    }
    let manifest = Manifest {
        format: package::FORMAT.into(),
        export_id: id,
        tenant_id: tenant.as_uuid(),
        snapshot_at: st.snapshot,
        generated_at: Utc::now(),
        counts,
        embeddings,
        audit_head: AuditHead {
            seq: st.audit_seq,
            hash: head.unwrap_or_else(|| GENESIS.to_owned()),
        },
        files: files
            .into_iter()
            .map(|(path, bytes, sha256, _)| FileEntry { path, bytes, sha256 })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    let manifest_sha256 = package::sha256_hex(&bytes);
    let (kid, signing) = cx.keys.signer().await.map_err(transient)?;
    let signature = serde_json::to_vec_pretty(&package::sign(&bytes, &kid, &signing)).unwrap_or_default();
    for (path, b) in [(package::MANIFEST, bytes), (package::SIGNATURE, signature)] {
        match put_bytes(&st.dest, path, b).await {
            Ok(_) => {}
            Err(Put::Destination(e)) => return fail(cx, tenant, id, &e).await,
            Err(Put::Transient(e)) => return Err(e),
        }
    }
    let mut tx = cx.db.begin_tenant(tenant).await?;
    // A download package is kept for the retention period, then deleted (`purge`).
    let retention = match st.kind {
        ExportKind::Download => Some(chrono::Duration::days(super::DOWNLOAD_RETENTION_DAYS)),
        ExportKind::Bucket => None,
    };
    let ended: Option<(i32, i64)> = sqlx::query_as(
        "UPDATE exports SET status = 'done', credentials = NULL, finished_at = now(), manifest_sha256 = $2,
                            files_total = files_done, package_expires_at = now() + $3
         WHERE id = $1 AND status = 'running' RETURNING files_done, bytes_done",
    )
    .bind(id)
    .bind(&manifest_sha256)
    .bind(retention)
    .fetch_optional(tx.conn())
    .await?;
    // Cancelled meanwhile: not finished, nothing to record.
    let Some((files_done, bytes_done)) = ended else {
        return Ok(Finished::Ended);
    };
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

/// Fails the export for good with `e`'s code; its credentials are erased.
pub async fn fail(
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
