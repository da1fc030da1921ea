//! The `export` job: writes one export's package. One job per export, on its own queue;
//! a resumed or repeated delivery continues from the files already written.

use crate::ids::TenantId;
use crate::jobs::{JobQueue, QueueError};
use apalis_redis::Config;
use serde::{Deserialize, Serialize};

/// Current envelope version. Add fields only with `#[serde(default)]`.
pub const EXPORT_VERSION: u16 = 1;

/// What an `export` job carries: the tenant (never optional) and the export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportJob {
    /// Envelope version.
    #[serde(default = "one")]
    pub v: u16,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The export.
    pub export_id: uuid::Uuid,
    /// Delete the export's download package instead of writing it (expired, or the export
    /// failed or was cancelled): see `exports::purge`.
    #[serde(default)]
    pub purge: bool,
}

fn one() -> u16 {
    1
}

/// The backend configuration producers and consumers of `export` share.
pub fn config(queue: &JobQueue) -> Config {
    Config::default().queue(format!("{}queue:export", queue.redis().prefix()))
}

/// Pushes an `export` job (after the export's row is committed).
pub async fn push(queue: &JobQueue, job: &ExportJob) -> Result<(), QueueError> {
    let id = crate::jobs::task_id("export", job.export_id, 0);
    queue.push_task(config(queue), job.clone(), id).await
}

/// Queues again every export still `queued` or `running` whose last start is older than
/// `quiet` (its queue entry may be lost: Redis restarted, a push failed after commit). A
/// duplicate delivery is harmless (the export's lease); the task id names the attempt, so
/// sweeping again before the next attempt queues nothing new. Returns how many.
pub async fn requeue_stale(
    control: &crate::db::ControlDb,
    queue: &JobQueue,
    now: chrono::DateTime<chrono::Utc>,
    quiet: chrono::Duration,
) -> Result<usize, QueueError> {
    let stale: Vec<(uuid::Uuid, TenantId, i32)> = sqlx::query_as(
        "SELECT id, tenant_id, attempts FROM exports
         WHERE status IN ('queued', 'running') AND coalesce(started_at, created_at) < $1 LIMIT 1000",
    )
    .bind(now - quiet)
    .fetch_all(control.pool())
    .await
    .map_err(|e| QueueError::Db(e.into()))?;
    for (export_id, tenant_id, attempts) in &stale {
        let job = ExportJob {
            v: EXPORT_VERSION,
            tenant_id: *tenant_id,
            export_id: *export_id,
            purge: false,
        };
        let id = crate::jobs::task_id("export", *export_id, *attempts);
        queue.push_task(config(queue), job, id).await?;
    }
    Ok(stale.len())
}
