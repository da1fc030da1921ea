//! Operator controls over a tenant's limits: its plan (`tenant plan`) and temporary rate
//! overrides (`tenant rate-override`). Both take effect on the tenant's next request and
//! are audited on the tenant's and the platform's chains.

use docket_platform::audit::{Actor, Auditor, Event, Outcome};
use docket_platform::db::ControlDb;
use docket_platform::ratelimit::EndpointClass;
use serde_json::{Value, json};
use std::time::Duration;

/// Longest override or switch an operator can set (the database's interval has limits).
pub(crate) const MAX_EXPIRY: Duration = Duration::from_secs(365 * 24 * 3600);

async fn audit(
    control: &ControlDb,
    auditor: &Auditor,
    tenant: docket_platform::ids::TenantId,
    ev: Event,
) -> anyhow::Result<()> {
    let mut tx = ControlDb::scope_to_tenant(control.pool().begin().await?, tenant).await?;
    auditor.tenant(&mut tx, ev.clone()).await?;
    tx.commit().await?;
    auditor.platform(control.pool(), ev).await?;
    Ok(())
}

/// Moves `tenant` to `plan`.
pub async fn tenant_plan(
    control: &ControlDb,
    auditor: &Auditor,
    tenant: &str,
    plan: &str,
) -> anyhow::Result<Value> {
    let t = crate::lookup::tenant(control, tenant).await?;
    let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM plans WHERE id = $1)")
        .bind(plan)
        .fetch_one(control.pool())
        .await?;
    anyhow::ensure!(
        known,
        "no plan {plan:?} (plans: free, team, business, enterprise, or an operator's own)"
    );
    sqlx::query("UPDATE tenants SET plan_id = $2 WHERE id = $1")
        .bind(t.id)
        .bind(plan)
        .execute(control.pool())
        .await?;
    let ev = Event::new("tenant.plan_change", Outcome::Allowed, Actor::System)
        .target(format!("tenant:{}", t.id))
        .detail("from", t.plan_id.clone())
        .detail("to", plan);
    audit(control, auditor, t.id, ev).await?;
    Ok(json!({"tenant_id": t.id, "from": t.plan_id, "to": plan}))
}

/// What an operator sets with `tenant rate-override`.
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

/// Sets (or replaces) a temporary rate limit for one tenant and class.
pub async fn tenant_rate_override(
    control: &ControlDb,
    auditor: &Auditor,
    tenant: &str,
    o: &RateOverride,
) -> anyhow::Result<Value> {
    let class = EndpointClass::parse(&o.class).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown endpoint class {:?}: expected query, upload, read or admin",
            o.class
        )
    })?;
    anyhow::ensure!(
        (1..=1_000_000).contains(&o.per_minute) && (1..=1_000_000).contains(&o.burst),
        "--per-minute and --burst must be at least 1 and at most 1000000"
    );
    anyhow::ensure!(
        !o.reason.trim().is_empty(),
        "--reason is required (it goes into the audit trail)"
    );
    anyhow::ensure!(
        (Duration::from_secs(1)..=MAX_EXPIRY).contains(&o.expires_in),
        "--expires-in must be from 1 second to one year"
    );
    let t = crate::lookup::tenant(control, tenant).await?;
    let expires_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "INSERT INTO rate_overrides (tenant_id, class, per_minute, burst, expires_at, reason)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5), $6)
         ON CONFLICT (tenant_id, class) DO UPDATE SET per_minute = EXCLUDED.per_minute, burst = EXCLUDED.burst,
           expires_at = EXCLUDED.expires_at, reason = EXCLUDED.reason, created_at = now()
         RETURNING expires_at",
    )
    .bind(t.id)
    .bind(class.as_str())
    .bind(o.per_minute as i32)
    .bind(o.burst as i32)
    .bind(o.expires_in.as_secs_f64())
    .bind(&o.reason)
    .fetch_one(control.pool())
    .await?;
    let ev = Event::new("tenant.rate_override", Outcome::Allowed, Actor::System)
        .target(format!("tenant:{}", t.id))
        .reason(o.reason.clone())
        .detail("class", class.as_str())
        .detail("per_minute", o.per_minute)
        .detail("burst", o.burst)
        .detail("expires_at", expires_at.to_rfc3339());
    audit(control, auditor, t.id, ev).await?;
    Ok(json!({
        "tenant_id": t.id, "class": class.as_str(), "per_minute": o.per_minute, "burst": o.burst,
        "expires_at": expires_at,
    }))
}
