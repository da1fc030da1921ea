//! Corrections and failures around an invoice: an operator's adjustment waiting for the
//! tenant's next invoice (`invoice_adjustments`), and a month that cannot be computed
//! (`invoice_failures`), which the calendar leaves alone until an operator retries it.

use super::BillingError;
use super::compute::{self, Month};
use crate::audit::{Actor, Auditor, Event, Outcome};
use crate::db::TenantTx;

/// Records that the tenant's `month` cannot be computed (inside its scope), with its audit
/// event the first time: the calendar stops re-running it; an operator's run tries again.
pub async fn record_failure(
    tx: &mut TenantTx,
    auditor: &Auditor,
    month: Month,
    e: &compute::ComputeError,
) -> Result<(), BillingError> {
    let fresh = sqlx::query(
        "INSERT INTO invoice_failures (tenant_id, period, code, message) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, period) DO UPDATE SET code = EXCLUDED.code, message = EXCLUDED.message
         RETURNING (xmax = 0)",
    )
    .bind(tx.tenant_id())
    .bind(month.first_day())
    .bind(e.code())
    .bind(e.to_string())
    .fetch_one(tx.conn())
    .await
    .map(|r| sqlx::Row::get::<bool, _>(&r, 0))?;
    if fresh {
        let ev = Event::new("billing.invoice_failed", Outcome::Failed, Actor::System)
            .detail("period", month.to_string())
            .reason(e.code())
            .detail("message", e.to_string());
        auditor.tenant(tx, ev).await?;
    }
    Ok(())
}

/// Clears a recorded failure once the month is invoiced.
pub async fn clear_failure(tx: &mut TenantTx, month: Month) -> Result<(), BillingError> {
    sqlx::query("DELETE FROM invoice_failures WHERE period = $1")
        .bind(month.first_day())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// An operator's correction for the tenant's next invoice.
#[derive(Debug, Clone)]
pub struct NewAdjustment {
    /// Minor units; negative for a credit. Not zero.
    pub amount_cents: i64,
    /// The invoice line's text (1–200 characters).
    pub description: String,
    /// Why (1–500 characters, kept in the audit trail).
    pub reason: String,
}

/// Records an adjustment for the next invoice of the tenant of `tx` (the caller audits and
/// commits). The error is a sentence for the operator.
pub async fn add_adjustment(
    tx: &mut TenantTx,
    a: &NewAdjustment,
    created_by: &str,
) -> Result<uuid::Uuid, BillingError> {
    if a.amount_cents == 0 || a.amount_cents.abs() > 100_000_000_000 {
        return Err(BillingError::Invalid(
            "the amount must be a non-zero number of cents (negative for a credit)".into(),
        ));
    }
    if !(1..=200).contains(&a.description.trim().chars().count())
        || !(1..=500).contains(&a.reason.trim().chars().count())
    {
        return Err(BillingError::Invalid(
            "a description of 1-200 characters and a reason of 1-500 are required".into(),
        ));
    }
    let id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO invoice_adjustments (id, tenant_id, amount_cents, description, reason, created_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(tx.tenant_id())
    .bind(a.amount_cents)
    .bind(a.description.trim())
    .bind(a.reason.trim())
    .bind(created_by)
    .execute(tx.conn())
    .await?;
    Ok(id)
}
