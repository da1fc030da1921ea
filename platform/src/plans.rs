//! Operator changes to a tenant's limits: its plan and temporary rate overrides. Shared by
//! `docketctl` and the `/ops` API so both validate and audit the same way. Each change
//! applies on the tenant's next request (entitlements are read per request) and is written
//! to the tenant's and the platform's audit chains.

use crate::audit::{Actor, AuditError, Auditor, Event, Outcome};
use crate::db::{ControlDb, DbError};
use crate::ids::TenantId;
use crate::ratelimit::EndpointClass;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Longest an override or a switch can last (the database's interval has limits).
pub const MAX_EXPIRY: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why a change was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PlanAdminError {
    /// The request is invalid; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// No such tenant.
    #[error("no such tenant")]
    NoTenant,
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Audit.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<sqlx::Error> for PlanAdminError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

/// Moves `tenant` to `plan`; returns the previous plan.
pub async fn change_plan(
    control: &ControlDb,
    auditor: &Auditor,
    actor: Actor,
    tenant: TenantId,
    plan: &str,
) -> Result<String, PlanAdminError> {
    let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM plans WHERE id = $1)")
        .bind(plan)
        .fetch_one(control.pool())
        .await?;
    if !known {
        return Err(PlanAdminError::Invalid(format!(
            "no plan {plan:?} (plans: free, team, business, enterprise, or an operator's own)"
        )));
    }
    // The plan row as the control role; its audit events commit with it.
    let mut tx = control.pool().begin().await?;
    let from: Option<String> = sqlx::query_scalar(
        "UPDATE tenants t SET plan_id = $2, updated_at = now() FROM tenants old
         WHERE t.id = $1 AND old.id = t.id RETURNING old.plan_id",
    )
    .bind(tenant)
    .bind(plan)
    .fetch_optional(&mut *tx)
    .await?;
    let from = from.ok_or(PlanAdminError::NoTenant)?;
    let ev = Event::new("tenant.plan_change", Outcome::Allowed, actor)
        .target(format!("tenant:{tenant}"))
        .detail("from", from.clone())
        .detail("to", plan);
    auditor.commit_operator_change(tx, tenant, ev).await?;
    Ok(from)
}

/// A temporary rate limit for one tenant and class.
#[derive(Debug, Clone)]
pub struct RateOverride {
    /// Endpoint class: query, upload, read or admin.
    pub class: String,
    /// Sustained requests per minute.
    pub per_minute: u32,
    /// Burst.
    pub burst: u32,
    /// How long it lasts.
    pub expires_in: Duration,
    /// Why (kept in the audit trail).
    pub reason: String,
}

impl RateOverride {
    /// Validates every field; the error is a sentence for the operator.
    pub fn validate(&self) -> Result<EndpointClass, PlanAdminError> {
        let bad = |m: &str| Err(PlanAdminError::Invalid(m.into()));
        let Some(class) = EndpointClass::parse(&self.class) else {
            return Err(PlanAdminError::Invalid(format!(
                "unknown endpoint class {:?}: expected query, upload, read or admin",
                self.class
            )));
        };
        if !(1..=1_000_000).contains(&self.per_minute) || !(1..=1_000_000).contains(&self.burst) {
            return bad("per_minute and burst must be at least 1 and at most 1000000");
        }
        if !crate::safety::is_printable_line(&self.reason, 500) {
            return bad("a reason of 1-500 printable characters is required (it goes into the audit trail)");
        }
        if !(Duration::from_secs(1)..=MAX_EXPIRY).contains(&self.expires_in) {
            return bad("the expiry must be from 1 second to one year away");
        }
        Ok(class)
    }
}

/// Sets (or replaces) a temporary rate limit; returns when it expires.
pub async fn set_rate_override(
    control: &ControlDb,
    auditor: &Auditor,
    actor: Actor,
    tenant: TenantId,
    o: &RateOverride,
) -> Result<DateTime<Utc>, PlanAdminError> {
    let class = o.validate()?;
    // Inside the tenant's scope (the service role's rights, so the row policy checks the
    // tenant again), with its audit events.
    let mut tx = control.begin_tenant(tenant).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)")
        .bind(tenant)
        .fetch_one(tx.conn())
        .await?;
    if !exists {
        return Err(PlanAdminError::NoTenant);
    }
    let expires_at: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO rate_overrides (tenant_id, class, per_minute, burst, expires_at, reason)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5), $6)
         ON CONFLICT (tenant_id, class) DO UPDATE SET per_minute = EXCLUDED.per_minute, burst = EXCLUDED.burst,
           expires_at = EXCLUDED.expires_at, reason = EXCLUDED.reason, created_at = now()
         RETURNING expires_at",
    )
    .bind(tenant)
    .bind(class.as_str())
    .bind(o.per_minute as i32)
    .bind(o.burst as i32)
    .bind(o.expires_in.as_secs_f64())
    .bind(&o.reason)
    .fetch_one(tx.conn())
    .await?;
    let ev = Event::new("tenant.rate_override", Outcome::Allowed, actor)
        .target(format!("tenant:{tenant}"))
        .reason(o.reason.clone())
        .detail("class", class.as_str())
        .detail("per_minute", o.per_minute)
        .detail("burst", o.burst)
        .detail("expires_at", expires_at.to_rfc3339());
    auditor.operator_change(&mut tx, ev).await?;
    tx.commit().await?;
    Ok(expires_at)
}

/// Removes a rate override before it expires; whether there was one.
pub async fn clear_rate_override(
    control: &ControlDb,
    auditor: &Auditor,
    actor: Actor,
    tenant: TenantId,
    class: EndpointClass,
) -> Result<bool, PlanAdminError> {
    let mut tx = control.begin_tenant(tenant).await?;
    let removed = sqlx::query("DELETE FROM rate_overrides WHERE tenant_id = $1 AND class = $2")
        .bind(tenant)
        .bind(class.as_str())
        .execute(tx.conn())
        .await?
        .rows_affected()
        > 0;
    if removed {
        let ev = Event::new("tenant.rate_override_cleared", Outcome::Allowed, actor)
            .target(format!("tenant:{tenant}"))
            .detail("class", class.as_str());
        auditor.operator_change(&mut tx, ev).await?;
    }
    tx.commit().await?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_validate_every_field() {
        let ok = RateOverride {
            class: "query".into(),
            per_minute: 10,
            burst: 2,
            expires_in: Duration::from_secs(60),
            reason: "load test".into(),
        };
        assert_eq!(ok.validate().expect("valid"), EndpointClass::Query);
        let msg = |o: RateOverride| o.validate().expect_err("refused").to_string();
        assert!(
            msg(RateOverride {
                class: "all".into(),
                ..ok.clone()
            })
            .contains("unknown endpoint class")
        );
        assert!(
            msg(RateOverride {
                burst: 0,
                ..ok.clone()
            })
            .contains("at least 1")
        );
        assert!(
            msg(RateOverride {
                reason: " ".into(),
                ..ok.clone()
            })
            .contains("reason")
        );
        assert!(
            msg(RateOverride {
                expires_in: MAX_EXPIRY * 2,
                ..ok
            })
            .contains("one year")
        );
    }
}
