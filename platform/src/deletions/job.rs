//! The `delete` job: one deletion, on its own queue, run by a worker that holds the vector
//! store (vectors are part of the sweep). Idempotent: a repeated or resumed delivery
//! continues from what is already swept, and a finished deletion is never redone (one
//! certificate).

use crate::ids::TenantId;
use crate::jobs::{JobQueue, QueueError};
use apalis_redis::Config;
use serde::{Deserialize, Serialize};

/// Current envelope version. Add fields only with `#[serde(default)]`.
pub const DELETE_VERSION: u16 = 1;

/// What a `delete` job carries: the tenant (never optional) and the deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteJob {
    /// Envelope version.
    #[serde(default = "one")]
    pub v: u16,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The deletion.
    pub deletion_id: uuid::Uuid,
}

fn one() -> u16 {
    1
}

/// The backend configuration producers and consumers of `delete` share.
pub fn config(queue: &JobQueue) -> Config {
    Config::default().queue(format!("{}queue:delete", queue.redis().prefix()))
}

/// Pushes a `delete` job (after the deletion's row is committed) as delivery `round`: the
/// request pushes round 0, the calendar the epoch second of the deletion's last change, so
/// each re-queue is a new task even while the queue still holds a dead one.
pub async fn push(queue: &JobQueue, job: &DeleteJob, round: i64) -> Result<(), QueueError> {
    let id = crate::jobs::task_id("delete", job.deletion_id, round as i32);
    queue.push_task(config(queue), job.clone(), id).await
}

/// Queues again every deletion queued or running whose last change is older than `quiet`
/// (its queue entry may be lost: Redis restarted, the queue gave up retrying it). A
/// duplicate delivery is harmless (the deletion's lease). Returns how many.
pub async fn requeue_stale(
    control: &crate::db::ControlDb,
    queue: &JobQueue,
    now: chrono::DateTime<chrono::Utc>,
    quiet: chrono::Duration,
) -> Result<usize, QueueError> {
    let stale = super::stale(control, now, quiet).await?;
    for (deletion_id, tenant_id, changed) in &stale {
        let job = DeleteJob {
            v: DELETE_VERSION,
            tenant_id: *tenant_id,
            deletion_id: *deletion_id,
        };
        // Never 0 (the request's round); seconds fit an i32 until 2038, then wrap, which
        // still differs from one re-queue to the next.
        push(queue, &job, changed.timestamp().max(1)).await?;
    }
    Ok(stale.len())
}
