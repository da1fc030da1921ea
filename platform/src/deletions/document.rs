//! The steps of a document deletion, in the order the `delete` job runs them (the vectors,
//! which need the vector store, are the worker's): begin an attempt, wait until nothing
//! works on the document, withdraw download packages that hold it, delete its objects,
//! delete or redact its rows in one transaction, drop its finished jobs' payloads from the
//! queue. Every step is idempotent; each store's count is recorded once, so a resumed
//! deletion reports what the first attempt removed.

use super::{add_swept, record_swept, stores};
use crate::audit::{Actor, Auditor, Event, Outcome};
use crate::blobs::BlobStore;
use crate::db::{Db, DbError, TenantTx};
use crate::ids::{DocumentId, TenantId};
use crate::jobs::{JobQueue, finished};

/// Attempts (crashes included) before a deletion fails for good.
pub const MAX_ATTEMPTS: i32 = 20;

/// A `running` job record younger than this may still be at work (a job attempt times out
/// after ten minutes; an older record belongs to a worker that died).
pub const RUNNING_FOR_AT_MOST_SECS: i64 = 660;

/// A step failed in a way worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Object storage.
    #[error(transparent)]
    Blobs(#[from] crate::blobs::BlobError),
    /// Redis.
    #[error("redis: {0}")]
    Redis(String),
    /// The audit trail.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// The vector store.
    #[error("vector store: {0}")]
    Vectors(String),
    /// The certificate could not be signed.
    #[error("signing: {0}")]
    Signing(String),
    /// Something still works on the document, or still holds it (retry later).
    #[error("{0}")]
    Busy(String),
}

impl From<sqlx::Error> for SweepError {
    fn from(e: sqlx::Error) -> Self {
        SweepError::Db(e.into())
    }
}

/// A document deletion being carried out.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The deletion.
    pub deletion: uuid::Uuid,
    /// The tenant.
    pub tenant: TenantId,
    /// The document.
    pub document: DocumentId,
}

/// What a start found.
#[derive(Debug, Clone, Copy)]
pub enum Begin {
    /// Sweep a document (again).
    Sweep(Target),
    /// Sweep the whole tenant (again): `Target::document` is unused (the nil id).
    Tenant(Target),
    /// Nothing to do: it has ended (a duplicate delivery), or just failed for good.
    Ended,
}

/// Starts an attempt: counts it, audits the first start, fails the deletion after
/// [`MAX_ATTEMPTS`].
pub async fn begin(
    db: &Db,
    auditor: &Auditor,
    tenant: TenantId,
    id: uuid::Uuid,
) -> Result<Begin, SweepError> {
    let mut tx = db.begin_tenant(tenant).await?;
    // Whether any attempt started before (`attempts` is given back by waits: not a sign).
    let first: Option<bool> =
        sqlx::query_scalar("SELECT started_at IS NULL FROM deletions WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
    let row: Option<(Option<uuid::Uuid>, i32, String)> = sqlx::query_as(
        "UPDATE deletions SET status = 'running', attempts = attempts + 1, updated_at = now(),
                started_at = coalesce(started_at, now())
         WHERE id = $1 AND status IN ('queued', 'running')
         RETURNING target_id, attempts, scope",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    let (Some((Some(subject), attempts, scope)), Some(first)) = (row, first) else {
        return Ok(Begin::Ended);
    };
    let whole_tenant = scope == super::DeletionScope::Tenant.as_str();
    let target = format!("deletion:{id}");
    if attempts > MAX_ATTEMPTS {
        let msg = format!(
            "gave up after {MAX_ATTEMPTS} attempts; the {scope} stays deleting (an operator looks; ask again)"
        );
        sqlx::query(
            "UPDATE deletions SET status = 'failed', error_code = 'too_many_attempts', error_message = $2,
                    finished_at = now(), updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(&msg)
        .execute(tx.conn())
        .await?;
        let ev = Event::new("deletions.failed", Outcome::Failed, Actor::System)
            .target(target)
            .reason("too_many_attempts");
        auditor.tenant(&mut tx, ev).await?;
        tx.commit().await?;
        return Ok(Begin::Ended);
    }
    if first {
        let ev = Event::new("deletions.started", Outcome::Allowed, Actor::System)
            .target(target)
            .detail("scope", scope);
        auditor.tenant(&mut tx, ev).await?;
    }
    tx.commit().await?;
    if whole_tenant {
        return Ok(Begin::Tenant(Target {
            deletion: id,
            tenant,
            document: DocumentId(uuid::Uuid::nil()),
        }));
    }
    Ok(Begin::Sweep(Target {
        deletion: id,
        tenant,
        document: DocumentId(subject),
    }))
}

/// Gives back the attempt `begin` counted: this one only found the document busy (a stage
/// or export still running, queued tasks not run yet), which is waiting, not failing. An
/// attempt that crashes never gets here, so crashes still count.
pub async fn was_busy(db: &Db, t: &Target) -> Result<(), SweepError> {
    let mut tx = db.begin_tenant(t.tenant).await?;
    sqlx::query(
        "UPDATE deletions SET attempts = greatest(attempts - 1, 0) WHERE id = $1 AND status = 'running'",
    )
    .bind(t.deletion)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Remembers (once) up to three of the document's chunks that no other document of the
/// tenant shares, by SHA-256: the residue scan looks for them again after the sweep.
pub async fn ensure_samples(db: &Db, t: &Target) -> Result<(), SweepError> {
    let mut tx = db.begin_tenant(t.tenant).await?;
    sqlx::query(
        "UPDATE deletions SET samples = ARRAY(
             SELECT c.sha256 FROM chunks c WHERE c.document_id = $2
               AND NOT EXISTS (SELECT 1 FROM chunks o WHERE o.sha256 = c.sha256 AND o.document_id <> $2)
             ORDER BY c.ordinal LIMIT 3)
         WHERE id = $1 AND samples = '{}'",
    )
    .bind(t.deletion)
    .bind(t.document)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Why the sweep cannot start yet, if it cannot: a pipeline stage still runs on the
/// document (it started before the document was marked deleting; one that starts after
/// sees the mark and stops), or an export is being written (it may be reading it).
pub async fn busy(db: &Db, t: &Target) -> Result<Option<String>, SweepError> {
    let mut tx = db.begin_tenant(t.tenant).await?;
    let stage: Option<String> = sqlx::query_scalar(
        "SELECT kind FROM jobs WHERE target_id = $1 AND status = 'running'
           AND updated_at > now() - make_interval(secs => $2) LIMIT 1",
    )
    .bind(t.document)
    .bind(RUNNING_FOR_AT_MOST_SECS as f64)
    .fetch_optional(tx.conn())
    .await?;
    let export: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM exports WHERE status IN ('queued', 'running') LIMIT 1")
            .fetch_optional(tx.conn())
            .await?;
    tx.commit().await?;
    Ok(match (stage, export) {
        (Some(kind), _) => Some(format!("a {kind} job is still running on the document")),
        (None, Some(e)) => Some(format!(
            "export {e} is being written and may be reading the document"
        )),
        (None, None) => None,
    })
}

/// Records a store's count (once) and audits it, in `tx`.
pub(super) async fn swept(
    tx: &mut TenantTx,
    auditor: &Auditor,
    t: &Target,
    store: &str,
    removed: i64,
) -> Result<(), SweepError> {
    if record_swept(tx, t.deletion, store, removed).await? {
        let ev = Event::new("deletions.store_swept", Outcome::Allowed, Actor::System)
            .target(format!("deletion:{}", t.deletion))
            .detail("store", store)
            .detail("removed", removed);
        auditor.tenant(tx, ev).await?;
    }
    Ok(())
}

/// Records a count swept outside the database (vectors, objects, the queue).
pub async fn record(
    db: &Db,
    auditor: &Auditor,
    t: &Target,
    store: &str,
    removed: i64,
) -> Result<(), SweepError> {
    let mut tx = db.begin_tenant(t.tenant).await?;
    swept(&mut tx, auditor, t, store, removed).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes every download package (in our storage) that holds the document: a copy of
/// it. Packages written to the customer's own bucket are the customer's (the certificate
/// says so). Their objects are counted and recorded before any goes (a resumed sweep
/// finds only the packages left, and keeps the first count).
pub async fn withdraw_packages(
    db: &Db,
    blobs: &BlobStore,
    auditor: &Auditor,
    t: &Target,
) -> Result<(), SweepError> {
    let mut tx = db.begin_tenant(t.tenant).await?;
    let packages: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT e.id FROM exports e JOIN export_files f ON f.export_id = e.id
         WHERE e.kind = 'download' AND e.package_deleted_at IS NULL
           AND f.path LIKE 'documents/' || $1::text || '/%'",
    )
    .bind(t.document)
    .fetch_all(tx.conn())
    .await?;
    tx.commit().await?;
    let mut objects = 0;
    for export in &packages {
        objects += blobs
            .list(t.tenant, &crate::exports::package_folder(*export))
            .await?
            .len() as i64;
    }
    record(db, auditor, t, stores::PACKAGES, objects).await?;
    for export in packages {
        blobs
            .delete_prefix(t.tenant, &crate::exports::package_folder(export))
            .await?;
        let mut tx = db.begin_tenant(t.tenant).await?;
        sqlx::query("UPDATE exports SET package_deleted_at = now() WHERE id = $1")
            .bind(export)
            .execute(tx.conn())
            .await?;
        let ev = Event::new("exports.package_deleted", Outcome::Allowed, Actor::System)
            .target(format!("export:{export}"))
            .reason("document_deleted");
        auditor.tenant(&mut tx, ev).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Deletes the document's objects (original, extracted text, vectors), counted and
/// recorded before they go.
pub async fn sweep_objects(
    db: &Db,
    blobs: &BlobStore,
    auditor: &Auditor,
    t: &Target,
) -> Result<(), SweepError> {
    let objects = blobs.list(t.tenant, &folder(t.document)).await?.len() as i64;
    record(db, auditor, t, stores::OBJECTS, objects).await?;
    blobs.delete_prefix(t.tenant, &folder(t.document)).await?;
    Ok(())
}

/// The document's folder in object storage.
pub fn folder(d: DocumentId) -> String {
    format!("documents/{d}")
}

/// Deletes or redacts every row of the document in one transaction, with each store's
/// count: answers that quoted it lose their answer and citations (the question stays, with
/// the flag `source_deleted`), and it leaves every question's scope (a question scoped to
/// it alone keeps a scope that matches nothing, the nil id: an empty scope would mean the
/// whole tenant); export file records of it go, cached vectors only it used go, its job
/// records, chunks (and so its lexical entries) and its row go.
pub async fn sweep_rows(db: &Db, auditor: &Auditor, t: &Target) -> Result<(), SweepError> {
    let d = t.document;
    let mut tx = db.begin_tenant(t.tenant).await?;
    let cited = "citations @> jsonb_build_array(jsonb_build_object('document_id', $1::text))";
    let queries = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE queries SET
            answer = CASE WHEN {cited} THEN NULL ELSE answer END,
            flags = CASE WHEN {cited} AND NOT 'source_deleted' = ANY(flags) THEN array_append(flags, 'source_deleted') ELSE flags END,
            citations = CASE WHEN {cited} THEN '[]'::jsonb ELSE citations END,
            document_ids = CASE WHEN document_ids = ARRAY[$1]::uuid[]
                                THEN ARRAY['00000000-0000-0000-0000-000000000000']::uuid[]
                                ELSE array_remove(document_ids, $1) END
         WHERE {cited} OR $1 = ANY(document_ids)"
    )))
    .bind(d)
    .execute(tx.conn())
    .await?
    .rows_affected();
    let export_files =
        sqlx::query("DELETE FROM export_files WHERE path LIKE 'documents/' || $1::text || '/%'")
            .bind(d)
            .execute(tx.conn())
            .await?
            .rows_affected();
    let cache = sqlx::query(
        "DELETE FROM embedding_cache e WHERE e.sha256 IN (SELECT sha256 FROM chunks WHERE document_id = $1)
           AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.sha256 = e.sha256 AND c.document_id <> $1)",
    )
    .bind(d)
    .execute(tx.conn())
    .await?
    .rows_affected();
    let jobs = sqlx::query("DELETE FROM jobs WHERE target_id = $1")
        .bind(d)
        .execute(tx.conn())
        .await?
        .rows_affected();
    let chunks = sqlx::query("DELETE FROM chunks WHERE document_id = $1")
        .bind(d)
        .execute(tx.conn())
        .await?
        .rows_affected();
    // An imported document leaves its import's count (its progress still adds up).
    sqlx::query(
        "UPDATE imports SET deleted_documents = deleted_documents + 1
         WHERE id = (SELECT import_id FROM documents WHERE id = $1)",
    )
    .bind(d)
    .execute(tx.conn())
    .await?;
    let documents = sqlx::query("DELETE FROM documents WHERE id = $1")
        .bind(d)
        .execute(tx.conn())
        .await?
        .rows_affected();
    for (store, n) in [
        (stores::QUERIES, queries),
        (stores::EXPORT_FILES, export_files),
        (stores::EMBEDDING_CACHE, cache),
        (stores::JOBS, jobs),
        (stores::CHUNKS, chunks),
        (stores::LEXICAL, chunks),
        (stores::DOCUMENTS, documents),
    ] {
        swept(&mut tx, auditor, t, store, n as i64).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// What the queue still holds of a subject.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueSweep {
    /// Payloads of finished tasks removed.
    pub removed: i64,
    /// Tasks naming it not finished yet (queued, scheduled for a retry, in flight).
    pub pending: i64,
}

/// Removes the payloads (and their metadata) of finished tasks that name `needle` from
/// every queue of this deployment (`jobs::finished`: apalis-redis keeps them until a
/// vacuum, and stage payloads carry the tenant and document ids). Tasks not finished are
/// left for their workers (a stage of a deleted document stops at once) and counted.
pub async fn sweep_queue(queue: &JobQueue, needle: &str) -> Result<QueueSweep, SweepError> {
    let n = needle.as_bytes();
    let done = finished::forget_finished(queue, &|v| finished::contains(v, n), std::time::Duration::ZERO)
        .await
        .map_err(|e| SweepError::Redis(e.to_string()))?;
    Ok(QueueSweep {
        removed: done.removed,
        pending: done.kept,
    })
}

/// Removes the queue payloads of the document's finished tasks ([`sweep_queue`]) and adds
/// them to the deletion's count at once (the attempt may still have to wait for tasks not
/// run yet: what it removed stays counted).
pub async fn sweep_document_queue(db: &Db, queue: &JobQueue, t: &Target) -> Result<QueueSweep, SweepError> {
    let swept = sweep_queue(queue, &t.document.to_string()).await?;
    let mut tx = db.begin_tenant(t.tenant).await?;
    add_swept(&mut tx, t.deletion, stores::QUEUE, swept.removed).await?;
    tx.commit().await?;
    Ok(swept)
}
