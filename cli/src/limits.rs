//! Operator controls over a tenant's limits: its plan (`tenant plan`) and temporary rate
//! overrides (`tenant rate-override`), through the same platform functions as `/ops`.

use docket_platform::audit::{Actor, Auditor};
use docket_platform::db::ControlDb;
pub use docket_platform::plans::RateOverride;
use docket_platform::plans::{self, PlanAdminError};
use serde_json::{Value, json};

fn explain(e: PlanAdminError) -> anyhow::Error {
    match e {
        PlanAdminError::Invalid(m) => anyhow::anyhow!(m),
        other => other.into(),
    }
}

/// Moves `tenant` to `plan`.
pub async fn tenant_plan(
    control: &ControlDb,
    auditor: &Auditor,
    tenant: &str,
    plan: &str,
) -> anyhow::Result<Value> {
    let t = crate::lookup::tenant(control, tenant).await?;
    let from = plans::change_plan(control, auditor, Actor::System, t.id, plan)
        .await
        .map_err(explain)?;
    Ok(json!({"tenant_id": t.id, "from": from, "to": plan}))
}

/// Sets (or replaces) a temporary rate limit for one tenant and class.
pub async fn tenant_rate_override(
    control: &ControlDb,
    auditor: &Auditor,
    tenant: &str,
    o: &RateOverride,
) -> anyhow::Result<Value> {
    o.validate().map_err(explain)?;
    let t = crate::lookup::tenant(control, tenant).await?;
    let expires_at = plans::set_rate_override(control, auditor, Actor::System, t.id, o)
        .await
        .map_err(explain)?;
    Ok(json!({
        "tenant_id": t.id, "class": o.class, "per_minute": o.per_minute, "burst": o.burst,
        "expires_at": expires_at,
    }))
}
