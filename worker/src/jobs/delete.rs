//! `delete`: carries out one deletion (`platform::deletions`), holding the deletion's
//! lease; a whole tenant's is `delete_tenant.rs`. A document's: Waits until no stage works on the document, then sweeps the vectors
//! (every placement, under the tenant's vector lock, counted to zero), download packages
//! holding it, its objects, its rows (one transaction), its finished jobs' queue payloads;
//! then scans every store again and issues the signed certificate, or ends as
//! `residue_found`. A retry (busy, a store unreachable) resumes: every step is idempotent
//! and each store's count is kept from the first sweep. Runs where the vector store is.

use super::index::placement_of;
use crate::context::{Ctx, JobContext};
use apalis::prelude::{BoxDynError, Data};
use docket_platform::deletions::document::{self, Begin, SweepError, Target};
use docket_platform::deletions::issue::{self, Issued};
use docket_platform::deletions::job::DeleteJob;
use docket_platform::deletions::{residue, stores};
use docket_platform::identity::keyring::KeyRing;
use docket_platform::tenants::IsolationTier;
use docket_rag::vectors::{TenantScope, VectorIndex};
use std::time::{Duration, Instant};

/// How long one attempt waits for the document's stages to finish before it hands the
/// job back to the queue (which retries it).
const WAIT_IDLE: Duration = Duration::from_secs(60);

/// The apalis handler.
pub async fn handle(job: DeleteJob, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    let ctx: Ctx = (*ctx).clone();
    let key = format!("deletion:{}", job.deletion_id);
    match docket_platform::db::leased(&ctx.db, &key, None, async { run(&ctx, &job).await.map(Some) }).await {
        Ok(Some(Some(Issued::Certificate(sha)))) => {
            tracing::info!(deletion = %job.deletion_id, certificate_sha256 = %sha, "deletion done");
            Ok(())
        }
        Ok(Some(Some(Issued::Residue(n)))) => {
            tracing::error!(deletion = %job.deletion_id, stores = n, "deletion found residue; operators alerted");
            Ok(())
        }
        // Ended already, or another delivery holds the lease (it finishes the work).
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(deletion = %job.deletion_id, error = %e, "deletion attempt did not finish; retrying");
            Err(e.to_string().into())
        }
    }
}

async fn run(ctx: &JobContext, job: &DeleteJob) -> Result<Option<Issued>, SweepError> {
    let (t, whole_tenant) =
        match document::begin(&ctx.db, &ctx.auditor, job.tenant_id, job.deletion_id).await? {
            Begin::Sweep(t) => (t, false),
            Begin::Tenant(t) => (t, true),
            Begin::Ended => return Ok(None),
        };
    let swept = match whole_tenant {
        true => super::delete_tenant::sweep(ctx, &t).await,
        false => sweep(ctx, &t).await,
    };
    match swept {
        Err(SweepError::Busy(reason)) => {
            document::was_busy(&ctx.db, &t).await?;
            Err(SweepError::Busy(reason))
        }
        other => other.map(Some),
    }
}

async fn sweep(ctx: &JobContext, t: &Target) -> Result<Issued, SweepError> {
    let t = *t;
    document::ensure_samples(&ctx.db, &t).await?;
    wait_idle(|| document::busy(&ctx.db, &t)).await?;

    let residue_vectors = sweep_vectors(ctx, &t, false).await?;
    document::withdraw_packages(&ctx.db, &ctx.blobs, &ctx.auditor, &t).await?;
    document::sweep_objects(&ctx.db, &ctx.blobs, &ctx.auditor, &t).await?;
    document::sweep_rows(&ctx.db, &ctx.auditor, &t).await?;
    let queued = document::sweep_document_queue(&ctx.db, &ctx.queue, &t).await?;
    if queued.pending > 0 {
        // Stages queued before the deletion: each stops at once when it runs (its record is
        // gone), and the next attempt removes its payload.
        return Err(SweepError::Busy(format!(
            "{} queued tasks of the document have not run yet",
            queued.pending
        )));
    }

    let (samples, requested): (Vec<String>, chrono::DateTime<chrono::Utc>) = {
        let mut tx = ctx.db.begin_tenant(t.tenant).await?;
        let s = sqlx::query_as("SELECT samples, created_at FROM deletions WHERE id = $1")
            .bind(t.deletion)
            .fetch_one(tx.conn())
            .await?;
        tx.commit().await?;
        s
    };
    let mut scan = residue::document(
        &ctx.db, &ctx.blobs, &ctx.queue, t.tenant, t.document, &samples, requested,
    )
    .await?;
    for (tier, left) in residue_vectors {
        scan.add(
            stores::vectors(tier.as_str()),
            left as i64,
            "points of the document still stored",
        );
    }
    let days = ctx.config.billing.ledger_retention_days;
    issue::finish(&ctx.db, &signing_keys(ctx), &ctx.auditor, days, &t, scan).await
}

/// Waits until `busy` says nothing works on the subject any more; after [`WAIT_IDLE`] the
/// attempt hands the job back to the queue (`Busy`, which gives the attempt back).
pub(super) async fn wait_idle<F, Fut>(busy: F) -> Result<(), SweepError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>, SweepError>>,
{
    let started = Instant::now();
    while let Some(reason) = busy().await? {
        if started.elapsed() > WAIT_IDLE {
            return Err(SweepError::Busy(reason));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// The platform's signing keys (certificates are signed with the active one).
pub(super) fn signing_keys(ctx: &JobContext) -> KeyRing {
    KeyRing::new(
        ctx.db.clone(),
        ctx.config.master_key.clone(),
        ctx.config.auth.key_rotation_window,
    )
}

/// Deletes the document's points (or, `whole_tenant`, all the tenant's points, its own
/// shards' files with them) in every placement (not only the tenant's current one: a tier
/// move may have left some behind), under the tenant's vector lock so no index job writes
/// meanwhile; records what each held; returns what each still holds after (zero).
pub(super) async fn sweep_vectors(
    ctx: &JobContext,
    t: &Target,
    whole_tenant: bool,
) -> Result<Vec<(IsolationTier, usize)>, SweepError> {
    let store = ctx
        .vectors
        .clone()
        .ok_or_else(|| SweepError::Vectors("this worker does not hold the vector store".into()))?;
    let engine = |e: docket_rag::vectors::VectorError| SweepError::Vectors(e.to_string());
    let _held = ctx
        .lock_tenant_vectors(t.tenant.as_uuid())
        .await
        .map_err(SweepError::from)?;
    let mut left = vec![];
    for tier in [
        IsolationTier::Shared,
        IsolationTier::Dedicated,
        IsolationTier::Isolated,
    ] {
        let scope = TenantScope::new(t.tenant.as_uuid(), placement_of(tier));
        let d = (!whole_tenant).then(|| t.document.as_uuid());
        // Counted and recorded before they go: a resumed sweep keeps this first count.
        let before = store.count(scope, d).await.map_err(engine)?;
        document::record(
            &ctx.db,
            &ctx.auditor,
            t,
            &stores::vectors(tier.as_str()),
            before as i64,
        )
        .await?;
        match d {
            Some(d) if before > 0 => store.delete_document(scope, d).await.map_err(engine)?,
            Some(_) => {}
            // Always: a tenant's own shard with no points left still has its files.
            None => store.delete_tenant(scope).await.map_err(engine)?,
        }
        left.push((tier, store.count(scope, d).await.map_err(engine)?));
    }
    Ok(left)
}
