//! `access_review`: builds, signs and issues one tenant's review of one quarter
//! (`platform::access_reviews::issue`). Exactly once whatever the queue does: the review's
//! row is held while the report is built, and a delivery that finds it issued does nothing.

use crate::context::Ctx;
use apalis::prelude::{AbortError, Attempt, BoxDynError, Data};
use docket_platform::access_reviews::issue::{self, Issued, Services};
use docket_platform::access_reviews::job::AccessReviewJob;
use docket_platform::identity::keyring::KeyRing;

/// The apalis handler.
pub async fn handle(job: AccessReviewJob, ctx: Data<Ctx>, delivery: Attempt) -> Result<(), BoxDynError> {
    let ctx: Ctx = (*ctx).clone();
    let keys = KeyRing::new(
        ctx.db.clone(),
        ctx.config.master_key.clone(),
        ctx.config.auth.key_rotation_window,
    );
    let services = Services {
        db: &ctx.db,
        keys: &keys,
        auditor: &ctx.auditor,
    };
    match issue::issue(services, job.tenant_id, job.review_id).await {
        Ok(Issued::Issued(findings)) => {
            tracing::info!(tenant = %job.tenant_id, review = %job.review_id, findings, "access review issued");
            Ok(())
        }
        Ok(Issued::GaveUp) => {
            tracing::error!(tenant = %job.tenant_id, review = %job.review_id, "access review gave up: attempts used up");
            Ok(())
        }
        Ok(Issued::Already | Issued::Missing) => Ok(()),
        // The review's own count (crashes included) decides in `issue`; the queue's count
        // only stops a delivery that keeps failing without crashing.
        Err(e) if delivery.current() >= issue::MAX_ATTEMPTS as usize => {
            tracing::error!(tenant = %job.tenant_id, review = %job.review_id, error = %e, "access review gave up");
            issue::fail(&ctx.db, job.tenant_id, job.review_id, &e.to_string()).await?;
            Err(AbortError::new(e).into())
        }
        Err(e) => {
            tracing::warn!(tenant = %job.tenant_id, review = %job.review_id, error = %e, "access review attempt failed; retrying");
            Err(e.into())
        }
    }
}
