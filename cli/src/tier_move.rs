//! `docketctl tenant move --tier T TENANT`: records the requested tier, wakes the worker
//! that owns the vector store, and (unless `--no-wait`) waits until searches use the new
//! placement. The move itself runs in that worker (`docket_worker::tier_move`).

use anyhow::Context;
use docket_platform::audit::{Actor, Auditor, Event, Outcome};
use docket_platform::db::ControlDb;
use docket_platform::redis_conn::Redis;
use docket_platform::tenants::IsolationTier;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The plan feature a tier needs (`shared` needs none).
fn feature(tier: IsolationTier) -> Option<&'static str> {
    match tier {
        IsolationTier::Shared => None,
        IsolationTier::Dedicated => Some("dedicated_tier"),
        IsolationTier::Isolated => Some("isolated_tier"),
    }
}

/// Requests the move of `tenant` (slug or id) to `tier`; waits up to `wait` for it.
pub async fn tenant_move(
    control: &ControlDb,
    redis: &Redis,
    auditor: &Auditor,
    tenant: &str,
    tier: &str,
    wait: Option<Duration>,
) -> anyhow::Result<Value> {
    let to: IsolationTier = tier.parse().map_err(anyhow::Error::msg)?;
    let t = crate::lookup::tenant(control, tenant).await?;
    if let Some(f) = feature(to) {
        let allowed: bool = sqlx::query_scalar("SELECT features ? $2 FROM plans WHERE id = $1")
            .bind(&t.plan_id)
            .bind(f)
            .fetch_one(control.pool())
            .await?;
        anyhow::ensure!(
            allowed,
            "plan {:?} does not include the {} tier (feature {f}); change the plan first",
            t.plan_id,
            to.as_str()
        );
    }
    let from = t.isolation_tier.clone();
    let mut tx = control.pool().begin().await?;
    sqlx::query("UPDATE tenants SET isolation_tier = $2 WHERE id = $1")
        .bind(t.id)
        .bind(to.as_str())
        .execute(&mut *tx)
        .await?;
    let mut tx = ControlDb::scope_to_tenant(tx, t.id).await?;
    let ev = |scope: &str| {
        Event::new("tenant.tier_move", Outcome::Allowed, Actor::System)
            .target(format!("tenant:{}", t.id))
            .detail("from", from.clone())
            .detail("to", to.as_str())
            .detail("chain", scope.to_owned())
    };
    // The move request and both records commit together.
    auditor.tenant(&mut tx, ev("tenant")).await?;
    auditor.platform_in(tx.conn(), ev("platform")).await?;
    tx.commit().await?;
    docket_platform::placement::notify_move(redis, t.id)
        .await
        .context("could not notify the worker that owns the vector store (it also picks the move up at its next start)")?;

    let Some(wait) = wait else {
        return Ok(json!({"tenant_id": t.id, "from": from, "to": to.as_str(), "status": "requested"}));
    };
    let started = Instant::now();
    loop {
        let current: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT tier, moving_from FROM vector_placements WHERE tenant_id = $1")
                .bind(t.id)
                .fetch_optional(control.pool())
                .await?;
        // Done when switched and the old placement purged. A tenant that never indexed
        // anything has no placement yet: it starts at its tier.
        let done = match &current {
            None => true,
            Some((tier, leftover)) => tier == to.as_str() && leftover.is_none(),
        };
        if done {
            return Ok(json!({
                "tenant_id": t.id, "from": from, "to": to.as_str(), "status": "moved",
                "seconds": started.elapsed().as_secs_f64(),
            }));
        }
        anyhow::ensure!(
            started.elapsed() < wait,
            "the move was requested but has not finished after {}s; is the worker that owns the vector store running? (status: requested)",
            wait.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
