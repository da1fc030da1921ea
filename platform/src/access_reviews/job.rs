//! The `access_review` job: builds and issues one tenant's review of one quarter. One job
//! per review, on its own queue; exactly-once comes from the review's row (locked while the
//! report is built, issued once: see [`super::issue`]), so a job delivered twice still
//! issues one report.

use crate::ids::TenantId;
use crate::jobs::{JobQueue, QueueError};
use apalis_redis::Config;
use serde::{Deserialize, Serialize};

/// Current envelope version. Add fields only with `#[serde(default)]`.
pub const ACCESS_REVIEW_VERSION: u16 = 1;

/// What an `access_review` job carries: the tenant (never optional) and the review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessReviewJob {
    /// Envelope version.
    #[serde(default = "one")]
    pub v: u16,
    /// The tenant reviewed.
    pub tenant_id: TenantId,
    /// The review.
    pub review_id: uuid::Uuid,
}

fn one() -> u16 {
    1
}

/// The backend configuration producers and consumers of `access_review` share.
pub fn config(queue: &JobQueue) -> Config {
    Config::default().queue(format!("{}queue:access_review", queue.redis().prefix()))
}

/// Pushes the job of `review` for its `attempts`-th try: the task id names the try, so
/// pushing again before it starts queues nothing new.
pub async fn push(
    queue: &JobQueue,
    tenant: TenantId,
    review: uuid::Uuid,
    attempts: i32,
) -> Result<(), QueueError> {
    let job = AccessReviewJob {
        v: ACCESS_REVIEW_VERSION,
        tenant_id: tenant,
        review_id: review,
    };
    let id = crate::jobs::task_id("access_review", review, attempts);
    queue.push_task(config(queue), job, id).await
}
