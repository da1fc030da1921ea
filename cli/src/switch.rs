//! `docketctl switch set|lift|list`: the same incident switches as `/ops/switches`, for
//! operators at a shell (audited on the platform chain, and the tenant's for a tenant switch).

use docket_platform::audit::{Actor, Auditor, Event, Outcome};
use docket_platform::db::ControlDb;
use docket_platform::ratelimit::EndpointClass;
use docket_platform::switches;
use serde_json::{Value, json};
use std::time::Duration;

/// Turns `class` off globally (`tenant` = None) or for one tenant (slug or id).
pub async fn switch_set(
    control: &ControlDb,
    auditor: &Auditor,
    class: &str,
    tenant: Option<&str>,
    reason: &str,
    expires_in: Option<Duration>,
) -> anyhow::Result<Value> {
    let class = EndpointClass::parse(class).ok_or_else(|| {
        anyhow::anyhow!("unknown endpoint class {class:?}: expected query, upload, read or admin")
    })?;
    let reason = reason.trim();
    anyhow::ensure!(
        !reason.is_empty() && reason.len() <= 500,
        "--reason of 1 to 500 characters is required: callers see it"
    );
    anyhow::ensure!(
        expires_in.is_none_or(|d| (Duration::from_secs(1)..=docket_platform::plans::MAX_EXPIRY).contains(&d)),
        "--expires-in must be from 1 second to one year"
    );
    let tenant = match tenant {
        Some(name) => Some(crate::lookup::tenant(control, name).await?.id),
        None => None,
    };
    let record = |sw: &switches::Switch| {
        Event::new("ops.switches.set", Outcome::Allowed, Actor::System)
            .target(format!("switch:{}", sw.id))
            .reason(reason.to_owned())
            .detail("class", class.as_str())
            .detail("tenant", tenant.map(|t| t.to_string()))
    };
    let sw = switches::set(
        control,
        auditor,
        class,
        tenant,
        reason,
        "docketctl",
        expires_in,
        record,
    )
    .await?;
    Ok(json!(sw))
}

/// Lifts a switch by id.
pub async fn switch_lift(control: &ControlDb, auditor: &Auditor, id: uuid::Uuid) -> anyhow::Result<Value> {
    let ev = Event::new("ops.switches.lift", Outcome::Allowed, Actor::System).target(format!("switch:{id}"));
    anyhow::ensure!(
        switches::lift(control, auditor, id, ev).await?,
        "no active switch {id}"
    );
    Ok(json!({"lifted": id}))
}

/// The switches in force.
pub async fn switch_list(control: &ControlDb) -> anyhow::Result<Value> {
    let list = switches::active_in(control.pool()).await?;
    Ok(json!({"switches": list}))
}
