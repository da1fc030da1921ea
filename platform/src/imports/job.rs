//! The `import` job: unpacks one import's source (archive or bucket listing) into waiting
//! documents. One job per import, on its own queue; it never runs the pipeline itself.

use crate::ids::{ImportId, TenantId};
use crate::jobs::{JobQueue, QueueError};
use apalis_redis::Config;
use serde::{Deserialize, Serialize};

/// Current envelope version. Add fields only with `#[serde(default)]`.
pub const IMPORT_VERSION: u16 = 1;

/// What an `import` job carries: the tenant (never optional) and the import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportJob {
    /// Envelope version.
    #[serde(default = "one")]
    pub v: u16,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The import.
    pub import_id: ImportId,
}

fn one() -> u16 {
    1
}

/// The backend configuration producers and consumers of `import` share.
pub fn config(queue: &JobQueue) -> Config {
    Config::default().queue(format!("{}queue:import", queue.redis().prefix()))
}

/// Pushes an `import` job (after the import's row is committed).
pub async fn push(queue: &JobQueue, job: &ImportJob) -> Result<(), QueueError> {
    let id = crate::jobs::task_id("import", job.import_id.as_uuid(), 0);
    queue.push_task(config(queue), job.clone(), id).await
}

/// The object key of an uploaded archive while it waits to be unpacked.
pub fn archive_key(import: ImportId) -> String {
    format!("imports/{import}/archive.zip")
}
