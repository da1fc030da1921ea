//! The tenant-visible record of a job: one row per (target, kind) in `jobs`, written by the
//! layer around every handler so that timeouts, panics and crashes end up recorded too.

use crate::db::{DbError, TenantTx};
use crate::ids::{DocumentId, JobId};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A job row as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct JobRecord {
    /// Id.
    pub id: JobId,
    /// Job kind (`parse`, `chunk`, …).
    pub kind: String,
    /// What it works on.
    pub target_id: Option<uuid::Uuid>,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    /// Attempts started so far (including ones whose worker died).
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Failure code.
    pub error_code: Option<String>,
    /// Failure sentence.
    pub error_message: Option<String>,
    /// Request that caused it.
    pub request_id: Option<String>,
    /// Queued.
    pub created_at: DateTime<Utc>,
    /// First start.
    pub started_at: Option<DateTime<Utc>>,
    /// End.
    pub finished_at: Option<DateTime<Utc>>,
}

const COLS: &str = "id, kind, target_id, status, attempts, max_attempts, error_code, error_message, request_id, \
                    created_at, started_at, finished_at";

/// Creates (or re-queues, with fresh attempts and the next generation) the job row of
/// `kind` for a document; returns its id and generation.
pub async fn enqueue_row(
    tx: &mut TenantTx,
    kind: &str,
    document: DocumentId,
    request_id: Option<&str>,
    actor: &str,
    max_attempts: i32,
) -> Result<(JobId, i32), DbError> {
    let tenant = tx.tenant_id();
    Ok(sqlx::query_as(
        "INSERT INTO jobs (tenant_id, kind, target_id, request_id, actor, max_attempts)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant_id, target_id, kind) DO UPDATE
           SET status = 'queued', attempts = 0, repushes = 0, generation = jobs.generation + 1,
               error_code = NULL, error_message = NULL, finished_at = NULL, updated_at = now()
         RETURNING id, generation",
    )
    .bind(tenant)
    .bind(kind)
    .bind(document)
    .bind(request_id)
    .bind(actor)
    .bind(max_attempts)
    .fetch_one(tx.conn())
    .await?)
}

/// What a start found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Run it; this is attempt `n`.
    Run(i32),
    /// Already finished (a re-delivered duplicate): do nothing.
    AlreadyDone,
    /// Attempts exhausted (e.g. it keeps killing its worker): give up.
    Exhausted(i32),
    /// No such row (the document was deleted).
    Missing,
}

/// Marks a job running and counts the attempt. Our own count, because a worker that dies
/// mid-job does not count as an attempt in the queue.
pub async fn start(tx: &mut TenantTx, job: JobId, worker: &str) -> Result<Start, DbError> {
    let row: Option<(String, i32, i32)> =
        sqlx::query_as("SELECT status, attempts, max_attempts FROM jobs WHERE id = $1 FOR UPDATE")
            .bind(job)
            .fetch_optional(tx.conn())
            .await?;
    let Some((status, attempts, max)) = row else {
        return Ok(Start::Missing);
    };
    if status == "succeeded" || status == "failed" || status == "cancelled" {
        return Ok(Start::AlreadyDone);
    }
    if attempts >= max {
        return Ok(Start::Exhausted(attempts));
    }
    sqlx::query(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = COALESCE(started_at, now()),
                worker = $2, updated_at = now() WHERE id = $1",
    )
    .bind(job)
    .bind(worker)
    .execute(tx.conn())
    .await?;
    Ok(Start::Run(attempts + 1))
}

/// Marks success. Idempotent: a job that closed its own record with its last write keeps
/// that finish time when the guard closes it again.
pub async fn succeed(tx: &mut TenantTx, job: JobId) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE jobs SET status = 'succeeded', finished_at = now(), updated_at = now() \
         WHERE id = $1 AND status <> 'succeeded'",
    )
    .bind(job)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Records a failure: `final` ends the job as `failed`; otherwise it goes back to `queued`
/// for a retry.
pub async fn fail(
    tx: &mut TenantTx,
    job: JobId,
    code: &str,
    message: &str,
    is_final: bool,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE jobs SET status = CASE WHEN $4 THEN 'failed' ELSE 'queued' END, error_code = $2, error_message = $3,
                finished_at = CASE WHEN $4 THEN now() END, updated_at = now() WHERE id = $1",
    )
    .bind(job)
    .bind(code)
    .bind(message)
    .bind(is_final)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// One job by id.
pub async fn get(tx: &mut TenantTx, job: JobId) -> Result<Option<JobRecord>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM jobs WHERE id = $1"
    )))
    .bind(job)
    .fetch_optional(tx.conn())
    .await?)
}

/// Every stage's job of a document, in pipeline order.
pub async fn for_document(tx: &mut TenantTx, document: DocumentId) -> Result<Vec<JobRecord>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM jobs WHERE target_id = $1
         ORDER BY array_position(ARRAY['parse','chunk','embed','index'], kind), created_at"
    )))
    .bind(document)
    .fetch_all(tx.conn())
    .await?)
}
