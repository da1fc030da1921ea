//! What an import's status page and `/metrics` report: totals by state, throughput and
//! ETA, failures (paginated), and stalled jobs — a job running far longer than its stage
//! usually takes, which is different from a document queued behind others.

use super::Import;
use crate::db::{ControlDb, DbError, TenantTx};
use crate::ids::ImportId;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A job counts as stalled after this long at least, whatever its stage's norm.
pub const STALL_FLOOR_SECS: f64 = 120.0;
/// …or after this many times its stage's median duration (last day), if longer.
pub const STALL_FACTOR: f64 = 10.0;

/// Counts of an import's entries by state.
#[derive(Debug, Clone, Copy, Default, Serialize, sqlx::FromRow, PartialEq, Eq)]
pub struct Counts {
    /// Documents waiting in PostgreSQL for the feeder.
    pub waiting: i64,
    /// Documents admitted to the queue, not yet started.
    pub in_queue: i64,
    /// Documents in the pipeline.
    pub processing: i64,
    /// Documents ready.
    pub ready: i64,
    /// Documents that failed in the pipeline.
    pub failed_documents: i64,
    /// Documents cancelled before they started.
    pub cancelled: i64,
    /// Entries that never became documents (type, size, emptiness).
    pub failed_entries: i64,
    /// Pages parsed so far.
    pub pages: i64,
    /// Chunks of ready documents.
    pub chunks: i64,
    /// Documents whose current job is stalled.
    pub stalled: i64,
    /// Documents deleted since, or being deleted.
    pub deleted: i64,
}

/// Counts for one import.
pub async fn counts(tx: &mut TenantTx, id: ImportId) -> Result<Counts, DbError> {
    Ok(sqlx::query_as(
        "WITH norms AS (
           SELECT kind, GREATEST($2, $3 * percentile_cont(0.5) WITHIN GROUP
                    (ORDER BY extract(epoch FROM finished_at - started_at))) AS secs
           FROM jobs WHERE status = 'succeeded' AND finished_at > now() - interval '1 day' GROUP BY kind)
         SELECT
           count(*) FILTER (WHERE d.feed_state = 'waiting') AS waiting,
           count(*) FILTER (WHERE d.status = 'queued' AND d.feed_state IN ('admitted', 'pushed')) AS in_queue,
           count(*) FILTER (WHERE d.status = 'processing') AS processing,
           count(*) FILTER (WHERE d.status = 'ready') AS ready,
           count(*) FILTER (WHERE d.status = 'failed') AS failed_documents,
           count(*) FILTER (WHERE d.status = 'cancelled') AS cancelled,
           (SELECT count(*) FROM import_failures f WHERE f.import_id = $1) AS failed_entries,
           COALESCE(sum(d.pages), 0)::bigint AS pages,
           COALESCE(sum(d.chunks) FILTER (WHERE d.status = 'ready'), 0)::bigint AS chunks,
           count(*) FILTER (WHERE EXISTS (
             SELECT 1 FROM jobs j LEFT JOIN norms n ON n.kind = j.kind
             WHERE j.target_id = d.id AND j.status = 'running'
               AND j.updated_at < now() - make_interval(secs => COALESCE(n.secs, $2)))) AS stalled,
           count(*) FILTER (WHERE d.status = 'deleting')
             + (SELECT deleted_documents FROM imports WHERE id = $1) AS deleted
         FROM documents d WHERE d.import_id = $1",
    )
    .bind(id)
    .bind(STALL_FLOOR_SECS)
    .bind(STALL_FACTOR)
    .fetch_one(tx.conn())
    .await?)
}

/// One failure as the API lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = ImportFailure)]
pub struct Failure {
    /// Entry position in the source (the pagination cursor).
    pub entry: i32,
    /// Its name in the source.
    pub filename: String,
    /// Machine-readable code.
    pub code: String,
    /// A sentence.
    pub message: String,
}

/// Failures (entries and documents) after entry `after`, in entry order.
pub async fn failures(
    tx: &mut TenantTx,
    id: ImportId,
    after: Option<i32>,
    limit: i64,
) -> Result<Vec<Failure>, DbError> {
    Ok(sqlx::query_as(
        "SELECT entry, filename, code, message FROM (
           SELECT entry, filename, code, message FROM import_failures WHERE import_id = $1
           UNION ALL
           SELECT import_entry, filename, COALESCE(error_code, 'failed'), COALESCE(error_message, '')
           FROM documents WHERE import_id = $1 AND status = 'failed') f
         WHERE $2::int IS NULL OR entry > $2 ORDER BY entry LIMIT $3",
    )
    .bind(id)
    .bind(after)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?)
}

/// The report of an import.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = ImportProgress)]
pub struct Report {
    /// Entries found (grows while a bucket is listed).
    pub total: i64,
    /// Not started yet: waiting for the feeder or in the queue (or not unpacked yet).
    pub queued: i64,
    /// In the pipeline.
    pub processing: i64,
    /// Ready to ask about.
    pub ready: i64,
    /// Failed entries and documents.
    pub failed: i64,
    /// Entries the tenant already had.
    pub duplicates: i64,
    /// Cancelled before starting.
    pub cancelled: i64,
    /// Deleted since they were imported (or being deleted).
    pub deleted: i64,
    /// Documents whose current job runs far longer than its stage's norm.
    pub stalled: i64,
    /// Pages parsed.
    pub pages: i64,
    /// Chunks indexed.
    pub chunks: i64,
    /// Seconds until the rest is done at the rate so far (`None` before the first finishes).
    pub eta_seconds: Option<i64>,
    /// Documents per minute so far.
    pub documents_per_minute: f64,
}

/// Builds the report from the row and its counts at `now`.
pub fn report(import: &Import, c: &Counts, now: DateTime<Utc>) -> Report {
    let total = i64::from(import.total);
    let duplicates = i64::from(import.duplicates);
    let documents =
        c.waiting + c.in_queue + c.processing + c.ready + c.failed_documents + c.cancelled + c.deleted;
    // Entries not unpacked (yet) are queued while the import goes on; once it is cancelled
    // they never will be (cancelled), once its source failed they cannot be (failed). So
    // the parts always add up to the total.
    let not_unpacked = (total - documents - c.failed_entries - duplicates).max(0);
    let (mut queued, mut failed, mut cancelled) = (
        c.waiting + c.in_queue,
        c.failed_documents + c.failed_entries,
        c.cancelled,
    );
    match import.status.as_str() {
        "cancelled" => cancelled += not_unpacked,
        "failed" => failed += not_unpacked,
        _ => queued += not_unpacked,
    }
    let elapsed = (now - import.started_at).num_milliseconds().max(1) as f64 / 1000.0;
    let finished = (c.ready + c.failed_documents) as f64;
    let rate = finished / elapsed;
    let remaining = (queued + c.processing) as f64;
    let eta_seconds = if remaining == 0.0 {
        Some(0)
    } else if rate > 0.0 {
        Some((remaining / rate).ceil() as i64)
    } else {
        None
    };
    Report {
        total,
        queued,
        processing: c.processing,
        ready: c.ready,
        failed,
        duplicates,
        cancelled,
        deleted: c.deleted,
        stalled: c.stalled,
        pages: c.pages,
        chunks: c.chunks,
        eta_seconds,
        documents_per_minute: (rate * 60.0 * 10.0).round() / 10.0,
    }
}

/// Stalled jobs per kind across tenants (control plane, for `/metrics`).
pub async fn stalled_by_kind(control: &ControlDb) -> Result<Vec<(String, i64)>, DbError> {
    Ok(sqlx::query_as(
        "WITH norms AS (
           SELECT kind, GREATEST($1, $2 * percentile_cont(0.5) WITHIN GROUP
                    (ORDER BY extract(epoch FROM finished_at - started_at))) AS secs
           FROM jobs WHERE status = 'succeeded' AND finished_at > now() - interval '1 day' GROUP BY kind)
         SELECT k.kind, count(j.id) FROM unnest(ARRAY['parse','chunk','embed','index']) AS k(kind)
         LEFT JOIN norms n ON n.kind = k.kind
         LEFT JOIN jobs j ON j.kind = k.kind AND j.status = 'running'
           AND j.updated_at < now() - make_interval(secs => COALESCE(n.secs, $1))
         GROUP BY k.kind ORDER BY k.kind",
    )
    .bind(STALL_FLOOR_SECS)
    .bind(STALL_FACTOR)
    .fetch_all(control.pool())
    .await?)
}

/// Imported documents waiting in PostgreSQL and in the pipeline, across tenants.
pub async fn feed_totals(control: &ControlDb) -> Result<(i64, i64), DbError> {
    Ok(sqlx::query_as(
        "SELECT count(*) FILTER (WHERE feed_state = 'waiting'),
                count(*) FILTER (WHERE feed_state IN ('admitted', 'pushed') AND status IN ('queued', 'processing'))
         FROM documents WHERE feed_state IS NOT NULL",
    )
    .fetch_one(control.pool())
    .await?)
}
