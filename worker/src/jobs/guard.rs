//! The layer around every job handler: records the job's status, attempts, timings and
//! error in PostgreSQL (so timeouts and panics are recorded too), enforces our own attempt
//! cap (a job that crashes its worker does not count as an attempt in the queue), retries
//! transient errors with exponential backoff and ends permanent ones at once. Bulk-lane jobs
//! wait while interactive ones run in the same process.

use crate::context::JobContext;
use apalis::prelude::{AbortError, BoxDynError};
use docket_platform::documents;
use docket_platform::jobs::record::{self, Start};
use docket_platform::jobs::{JobEnvelope, Lane};
use futures::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// How a job attempt ended badly.
#[derive(Debug)]
pub enum JobError {
    /// Worth retrying (database, storage or queue trouble).
    Transient(String),
    /// Retrying cannot help (corrupt file, unsupported content): fail the document now.
    Permanent {
        /// Machine-readable code.
        code: &'static str,
        /// A sentence for the user.
        message: String,
    },
}

impl JobError {
    /// A transient error from anything displayable.
    pub fn transient(e: impl std::fmt::Display) -> Self {
        JobError::Transient(e.to_string())
    }
}

fn backoff(attempt: i32) -> Duration {
    // 0.5 s, 1 s, 2 s, 4 s … capped at 30 s; the queue adds its own `attempt` seconds.
    Duration::from_millis(500u64.saturating_mul(1 << (attempt - 1).clamp(0, 6))).min(Duration::from_secs(30))
}

async fn finish_failed(
    ctx: &JobContext,
    env: &JobEnvelope,
    code: &str,
    message: &str,
) -> Result<(), BoxDynError> {
    let mut tx = ctx.db.begin_tenant(env.tenant_id).await?;
    // A failed re-chunking leaves the document ready at its old chunking version (a later
    // `docketctl reindex` tries again); only a first processing fails the document.
    if !env.reindex {
        documents::fail(&mut tx, env.document_id, code, message).await?;
    }
    record::fail(&mut tx, env.job_id, code, message, true).await?;
    tx.commit().await?;
    tracing::warn!(job = %env.job_id, kind = env.kind.as_str(), code, "job failed permanently");
    Ok(())
}

/// Marks the document as being at `stage`: `processing`, except while it is re-chunked
/// (a reindexed document stays `ready` and answers from its current chunks meanwhile).
pub async fn progress(
    tx: &mut docket_platform::db::TenantTx,
    env: &JobEnvelope,
    stage: &str,
) -> Result<(), JobError> {
    if env.reindex {
        return Ok(());
    }
    documents::set_progress(tx, env.document_id, "processing", stage)
        .await
        .map_err(JobError::transient)
}

/// Runs `work` as one attempt of `env`. Returns what apalis needs: `Ok`, a plain error
/// (the queue re-runs it) or an `AbortError` (never again).
pub async fn guarded<F, Fut>(ctx: &JobContext, env: &JobEnvelope, work: F) -> Result<(), BoxDynError>
where
    F: FnOnce(i32) -> Fut,
    Fut: Future<Output = Result<(), JobError>>,
{
    let _interactive = match env.lane {
        Lane::Interactive => Some(ctx.interactive_started()),
        Lane::Bulk => {
            ctx.yield_to_interactive().await;
            None
        }
    };
    let mut tx = ctx.db.begin_tenant(env.tenant_id).await?;
    let start = record::start(&mut tx, env.job_id, &ctx.config.worker_name).await?;
    tx.commit().await?;
    if matches!(start, Start::Run(_)) {
        // Checked after the start is recorded: a deletion marks the document first and then
        // waits for stages recorded as running, so a stage is either seen by it or sees the mark.
        let mut tx = ctx.db.begin_tenant(env.tenant_id).await?;
        if documents::is_deleted(&mut tx, env.document_id).await? {
            record::fail(
                &mut tx,
                env.job_id,
                "document_deleted",
                "the document is being deleted",
                true,
            )
            .await?;
            tx.commit().await?;
            tracing::info!(job = %env.job_id, kind = env.kind.as_str(), "document being deleted; stage skipped");
            return Ok(());
        }
        tx.commit().await?;
    }
    let attempt = match start {
        Start::Run(n) => n,
        Start::AlreadyDone => return Ok(()),
        Start::Missing => return Err(AbortError::new("the job's record no longer exists").into()),
        Start::Exhausted(n) => {
            let msg = format!("gave up after {n} attempts: the job kept crashing or timing out");
            finish_failed(ctx, env, "too_many_attempts", &msg).await?;
            return Err(AbortError::new(msg).into());
        }
    };
    let run = AssertUnwindSafe(work(attempt)).catch_unwind();
    let outcome = match tokio::time::timeout(ctx.job_timeout, run).await {
        Err(_) => Err(JobError::Transient(format!(
            "the attempt timed out after {}s",
            ctx.job_timeout.as_secs()
        ))),
        Ok(Err(_panic)) => Err(JobError::Permanent {
            code: "internal_error",
            message: "processing crashed on this document; it has been reported".into(),
        }),
        Ok(Ok(r)) => r,
    };
    let max = ctx.config.ingest.job_max_attempts as i32;
    match outcome {
        Ok(()) => {
            let mut tx = ctx.db.begin_tenant(env.tenant_id).await?;
            record::succeed(&mut tx, env.job_id).await?;
            tx.commit().await?;
            Ok(())
        }
        Err(JobError::Permanent { code, message }) => {
            finish_failed(ctx, env, code, &message).await?;
            Err(AbortError::new(message).into())
        }
        Err(JobError::Transient(message)) if attempt >= max => {
            let msg = format!("gave up after {attempt} attempts: {message}");
            finish_failed(ctx, env, "too_many_attempts", &msg).await?;
            Err(AbortError::new(msg).into())
        }
        Err(JobError::Transient(message)) => {
            tracing::warn!(job = %env.job_id, attempt, error = %message, "job attempt failed; will retry");
            let mut tx = ctx.db.begin_tenant(env.tenant_id).await?;
            record::fail(&mut tx, env.job_id, "retrying", &message, false).await?;
            tx.commit().await?;
            tokio::time::sleep(backoff(attempt)).await;
            Err(message.into())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let b: Vec<u64> = (1..=9).map(|a| super::backoff(a).as_millis() as u64).collect();
        assert_eq!(b, vec![500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    }
}
