//! Which reviews are due: one per tenant and quarter, for every tenant that existed in the
//! quarter. The calendar asks for the last [`CATCH_UP_QUARTERS`] quarters on every step (so
//! a quarter missed while everything was down is made on start), an operator for one
//! quarter (`docketctl access-review run`). Rows are made once (unique per tenant and
//! quarter); a review still queued, or running without a sign of life, is pushed again under
//! a task id naming its attempt, so repeated steps queue nothing twice.

use super::{Quarter, job};
use crate::db::ControlDb;
use crate::ids::TenantId;
use crate::jobs::{JobQueue, QueueError};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Quarters the calendar looks back.
pub const CATCH_UP_QUARTERS: usize = 4;
/// Jobs pushed per quarter and call (the queue stays bounded; the next step pushes more).
const PUSH_BATCH: i64 = 1_000;
/// A running review untouched this long lost its worker: pushed again.
const STALE_SECS: i64 = 900;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The quarter reviewed.
    pub quarter: Quarter,
    /// Only this tenant.
    pub only: Option<TenantId>,
    /// Who asked (`scheduler`, `docketctl`).
    pub requested_by: String,
    /// Queue failed reviews of the quarter again with a fresh attempt count (operators; the
    /// calendar leaves them).
    pub retry_failed: bool,
}

/// What a run did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RunReport {
    /// The quarter.
    pub quarter: String,
    /// Reviews made now.
    pub made: u64,
    /// Jobs pushed (new, still queued, or stale).
    pub queued: usize,
}

/// Makes the quarter's missing reviews and pushes the ones waiting for a worker.
pub async fn run(
    control: &ControlDb,
    queue: &JobQueue,
    req: &RunRequest,
    now: DateTime<Utc>,
) -> Result<RunReport, QueueError> {
    let db = |e: sqlx::Error| QueueError::Db(e.into());
    let (q, start, end) = (req.quarter.to_string(), req.quarter.start(), req.quarter.end());
    let made = sqlx::query(
        "INSERT INTO access_reviews (id, tenant_id, quarter, period_start, period_end, requested_by)
         SELECT gen_random_uuid(), t.id, $1, $2, $3, $4 FROM tenants t
         WHERE t.status IN ('active', 'suspended') AND t.created_at < $3 AND ($5::uuid IS NULL OR t.id = $5)
           -- Every calendar step asks: tenants already reviewed are skipped by the unique
           -- index, not by a failed insert each.
           AND NOT EXISTS (SELECT 1 FROM access_reviews r WHERE r.tenant_id = t.id AND r.quarter = $1)
         ON CONFLICT (tenant_id, quarter) DO NOTHING",
    )
    .bind(&q)
    .bind(start)
    .bind(end)
    .bind(&req.requested_by)
    .bind(req.only)
    .execute(control.pool())
    .await
    .map_err(db)?
    .rows_affected();
    if req.retry_failed {
        sqlx::query(
            "UPDATE access_reviews SET status = 'queued', attempts = 0, error_message = NULL, updated_at = now()
             WHERE quarter = $1 AND status = 'failed' AND ($2::uuid IS NULL OR tenant_id = $2)",
        )
        .bind(&q)
        .bind(req.only)
        .execute(control.pool())
        .await
        .map_err(db)?;
    }
    let waiting: Vec<(uuid::Uuid, TenantId, i32)> = sqlx::query_as(
        "SELECT r.id, r.tenant_id, r.attempts FROM access_reviews r JOIN tenants t ON t.id = r.tenant_id
         WHERE r.quarter = $1 AND ($2::uuid IS NULL OR r.tenant_id = $2)
           AND t.status IN ('active', 'suspended')
           AND (r.status = 'queued' OR (r.status = 'running' AND r.updated_at < $3))
         ORDER BY r.created_at LIMIT $4",
    )
    .bind(&q)
    .bind(req.only)
    .bind(now - chrono::Duration::seconds(STALE_SECS))
    .bind(PUSH_BATCH)
    .fetch_all(control.pool())
    .await
    .map_err(db)?;
    for (id, tenant, attempts) in &waiting {
        job::push(queue, *tenant, *id, *attempts).await?;
    }
    Ok(RunReport {
        quarter: q,
        made,
        queued: waiting.len(),
    })
}

/// The calendar's step: the last [`CATCH_UP_QUARTERS`] quarters before `now`'s.
pub async fn due(
    control: &ControlDb,
    queue: &JobQueue,
    now: DateTime<Utc>,
) -> Result<Vec<RunReport>, QueueError> {
    let mut q = Quarter::of(now);
    let mut out = vec![];
    for _ in 0..CATCH_UP_QUARTERS {
        q = q.previous();
        let req = RunRequest {
            quarter: q,
            only: None,
            requested_by: "scheduler".into(),
            retry_failed: false,
        };
        out.push(run(control, queue, &req, now).await?);
    }
    Ok(out)
}
