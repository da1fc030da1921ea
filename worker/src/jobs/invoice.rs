//! `invoice`: bills one tenant for one month (`platform::billing::invoice::bill`) in the
//! tenant's scope, then, with Stripe configured, pushes the invoice there
//! (`platform::billing::push`). Exactly once whatever the queue does: a job delivered again
//! after its worker died, or queued by a second run, finds the invoice (and the Stripe
//! objects already made) and carries on from there.

use crate::context::Ctx;
use apalis::prelude::{AbortError, Attempt, BoxDynError, Data};
use docket_platform::billing::BillingError;
use docket_platform::billing::corrections;
use docket_platform::billing::invoice::{self, Billed};
use docket_platform::billing::job::InvoiceJob;
use docket_platform::billing::push::{self, PushError};

/// Deliveries before the job gives up computing (the calendar queues it again later).
const MAX_ATTEMPTS: usize = 5;
/// Deliveries spent retrying an unavailable Stripe (apalis waits `attempt` seconds between
/// them: about a minute in all); the calendar resumes the push later.
const MAX_STRIPE_ATTEMPTS: usize = 12;

/// The apalis handler.
pub async fn handle(job: InvoiceJob, ctx: Data<Ctx>, delivery: Attempt) -> Result<(), BoxDynError> {
    let ctx: Ctx = (*ctx).clone();
    let attempt = delivery.current();
    let id = match bill(&ctx, &job).await {
        Ok(Billed::Created(id) | Billed::Existing(id)) => id,
        Ok(Billed::NotActive) => return Ok(()),
        // Nothing will make these succeed on a retry: recorded, so the calendar stops
        // re-running the month until an operator's run tries again.
        Err(BillingError::Compute(c)) => {
            tracing::error!(tenant = %job.tenant_id, period = %job.period, error = %c, "invoice cannot be computed");
            let mut tx = ctx.db.begin_tenant(job.tenant_id).await?;
            corrections::record_failure(&mut tx, &ctx.auditor, job.period, &c).await?;
            tx.commit().await?;
            return Err(AbortError::new(c).into());
        }
        Err(e @ (BillingError::Invalid(_) | BillingError::NotOver(_))) => {
            tracing::error!(tenant = %job.tenant_id, period = %job.period, error = %e, "invoice cannot be computed");
            return Err(AbortError::new(e).into());
        }
        Err(e) if attempt >= MAX_ATTEMPTS => {
            tracing::error!(tenant = %job.tenant_id, period = %job.period, error = %e, "invoice job gave up");
            return Err(AbortError::new(e).into());
        }
        Err(e) => {
            tracing::warn!(tenant = %job.tenant_id, period = %job.period, error = %e, "invoice attempt failed; retrying");
            return Err(e.into());
        }
    };
    let Some(stripe) = ctx.stripe.as_ref() else {
        return Ok(());
    };
    match push::push(&ctx.db, stripe, &ctx.auditor, job.tenant_id, id).await {
        Ok(pushed) => {
            tracing::info!(tenant = %job.tenant_id, period = %job.period, ?pushed, "invoice in Stripe");
            Ok(())
        }
        Err(e) => {
            let retry = match &e {
                PushError::Stripe(s) => s.retryable(),
                PushError::Billing(_) => true,
            };
            let give_up = !retry;
            if let Err(rec) =
                push::record_failure(&ctx.db, &ctx.auditor, job.tenant_id, id, &e, give_up).await
            {
                tracing::warn!(error = %rec, "could not record the failed Stripe push");
            }
            match (retry, attempt >= MAX_STRIPE_ATTEMPTS) {
                (true, false) => {
                    tracing::warn!(tenant = %job.tenant_id, error = %e, "Stripe push failed; retrying");
                    Err(e.into())
                }
                // Left `retrying`: the calendar queues it again after a quiet period.
                (true, true) => {
                    tracing::warn!(tenant = %job.tenant_id, error = %e, "Stripe still failing; the calendar resumes the push later");
                    Err(AbortError::new(e).into())
                }
                (false, _) => {
                    tracing::error!(tenant = %job.tenant_id, error = %e, "Stripe refused the invoice; an operator must look");
                    Err(AbortError::new(e).into())
                }
            }
        }
    }
}

async fn bill(ctx: &Ctx, job: &InvoiceJob) -> Result<Billed, BillingError> {
    let mut tx = ctx.db.begin_tenant(job.tenant_id).await?;
    let billed = invoice::bill(&mut tx, &ctx.auditor, job.period, ctx.stripe.is_some()).await?;
    if matches!(billed, Billed::Created(_)) {
        corrections::clear_failure(&mut tx, job.period).await?;
    }
    tx.commit().await?;
    Ok(billed)
}
