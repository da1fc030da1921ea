//! The `invoice` job: bills one tenant for one month. One job per tenant and run, on its own
//! queue; exactly-once comes from the database (see [`super::invoice::bill`]), so a job
//! delivered twice, or queued by two runs, still makes one invoice.

use super::Month;
use crate::ids::TenantId;
use crate::jobs::{JobQueue, QueueError};
use apalis_redis::Config;
use serde::{Deserialize, Serialize};

/// Current envelope version. Add fields only with `#[serde(default)]`.
pub const INVOICE_VERSION: u16 = 1;

/// What an `invoice` job carries: the tenant (never optional), the month and the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceJob {
    /// Envelope version.
    #[serde(default = "one")]
    pub v: u16,
    /// The tenant billed.
    pub tenant_id: TenantId,
    /// The month billed (`YYYY-MM`).
    pub period: Month,
    /// The billing run that queued it.
    pub run_id: uuid::Uuid,
}

fn one() -> u16 {
    1
}

/// The backend configuration producers and consumers of `invoice` share.
pub fn config(queue: &JobQueue) -> Config {
    Config::default().queue(format!("{}queue:invoice", queue.redis().prefix()))
}

/// Pushes an `invoice` job; the task id is derived from the run and the tenant, so a run
/// that pushes again (after a crash) does not queue a second one.
pub async fn push(queue: &JobQueue, job: &InvoiceJob) -> Result<(), QueueError> {
    let id = crate::jobs::task_id(&format!("invoice:{}", job.run_id), job.tenant_id.as_uuid(), 0);
    queue.push_task(config(queue), job.clone(), id).await
}
