//! The whole-tenant sweep of a `delete` job (`platform::deletions::tenant_sweep`): freeze,
//! wait until nothing runs, then vectors (every placement, under the tenant's vector lock:
//! the shared collection's points deleted, the tenant's own shards closed and their files
//! removed), objects, rows, Redis; then the residue scan, and the end: the keys destroyed
//! last with the certificate. A retry resumes (every step is idempotent; counts are kept
//! from the first sweep).

use crate::context::JobContext;
use docket_platform::deletions::document::{SweepError, Target};
use docket_platform::deletions::issue::Issued;
use docket_platform::deletions::{stores, tenant_sweep};

/// Sweeps tenant `t` from every store and ends the deletion.
pub(super) async fn sweep(ctx: &JobContext, t: &Target) -> Result<Issued, SweepError> {
    tenant_sweep::freeze(&ctx.db, t).await?;
    super::delete::wait_idle(|| tenant_sweep::busy(&ctx.db, t)).await?;
    let left = super::delete::sweep_vectors(ctx, t, true).await?;
    tenant_sweep::sweep_objects(&ctx.db, &ctx.blobs, &ctx.auditor, t).await?;
    tenant_sweep::sweep_rows(&ctx.db, &ctx.auditor, t).await?;
    let queued = tenant_sweep::sweep_redis(&ctx.db, &ctx.queue, t).await?;
    if queued.pending > 0 {
        return Err(SweepError::Busy(format!(
            "{} queued tasks of the tenant have not run yet",
            queued.pending
        )));
    }
    let mut scan = tenant_sweep::residue(&ctx.db, &ctx.blobs, &ctx.queue, t).await?;
    for (tier, n) in left {
        scan.add(
            stores::vectors(tier.as_str()),
            n as i64,
            "points of the tenant still stored",
        );
    }
    let days = ctx.config.billing.ledger_retention_days;
    tenant_sweep::finish(
        &ctx.db,
        &super::delete::signing_keys(ctx),
        &ctx.auditor,
        days,
        t,
        scan,
    )
    .await
}
