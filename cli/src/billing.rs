//! `docketctl billing run --period YYYY-MM [--tenant SLUG] [--dry-run]`: the scheduler's
//! monthly run, on demand. A dry run prints what each tenant would be invoiced and changes
//! nothing; a real run queues one `invoice` job per tenant without an invoice and, unless
//! told not to, waits until every one of them exists.

use docket_platform::audit::{Actor, Auditor};
use docket_platform::billing::Month;
use docket_platform::billing::run::{self, Origin, RunRequest};
use docket_platform::config::Config;
use docket_platform::db::ControlDb;
use docket_platform::jobs::queue::JobQueue;
use docket_platform::redis_conn::Redis;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Runs billing for `period` (all tenants, or `tenant`); with `wait`, until every tenant
/// owing something has its invoice or the wait runs out (run it again to resume).
pub async fn billing_run(
    config: &Config,
    control: &ControlDb,
    auditor: &Auditor,
    period: &str,
    tenant: Option<&str>,
    dry_run: bool,
    wait: Option<Duration>,
) -> anyhow::Result<Value> {
    let month = Month::parse(period).map_err(anyhow::Error::msg)?;
    let only = match tenant {
        Some(name) => Some(crate::lookup::tenant(control, name).await?.id),
        None => None,
    };
    let redis = Redis::new(&config.redis.url, &config.redis.prefix)?;
    let queue = JobQueue::new(redis, config.ingest.job_max_attempts);
    let req = RunRequest {
        month,
        only,
        dry_run,
        origin: Origin::Operator,
        requested_by: "docketctl".into(),
        actor: Actor::System,
    };
    let report = run::start(control, &queue, auditor, &req, chrono::Utc::now()).await?;
    let mut out = serde_json::to_value(&report)?;
    if let (false, Some(wait)) = (dry_run, wait) {
        let started = Instant::now();
        loop {
            let due = run::billable(control, month, only).await?;
            let failed = run::failed(control, month).await?;
            let missing = due.iter().filter(|d| !d.2 && !failed.contains(&d.0)).count();
            if missing == 0 {
                out["invoiced"] = json!(due.iter().filter(|d| d.2).count());
                // Months that cannot be computed (see GET /ops/billing/failures).
                out["failed"] = json!(
                    due.iter()
                        .filter(|d| failed.contains(&d.0))
                        .map(|d| &d.1)
                        .collect::<Vec<_>>()
                );
                break;
            }
            if started.elapsed() > wait {
                anyhow::bail!(
                    "{missing} of {} invoices for {month} are not made yet (is a docket-worker running?); run again to resume",
                    due.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(out)
}

/// `docketctl billing adjust`: a correction (a credit when negative) for `tenant`'s next
/// invoice, recorded with its reason on the tenant's and the platform's audit chains.
pub async fn billing_adjust(
    control: &ControlDb,
    auditor: &Auditor,
    tenant: &str,
    adjustment: &docket_platform::billing::corrections::NewAdjustment,
) -> anyhow::Result<Value> {
    let t = crate::lookup::tenant(control, tenant).await?;
    let tx = control.pool().begin().await?;
    let mut tx = ControlDb::scope_to_tenant(tx, t.id).await?;
    let id = docket_platform::billing::corrections::add_adjustment(&mut tx, adjustment, "docketctl").await?;
    let ev = docket_platform::audit::Event::new(
        "billing.adjustment_added",
        docket_platform::audit::Outcome::Allowed,
        Actor::System,
    )
    .target(format!("adjustment:{id}"))
    .reason(adjustment.reason.clone())
    .detail("amount_cents", adjustment.amount_cents)
    .detail("description", adjustment.description.clone());
    auditor.operator_change(&mut tx, ev).await?;
    tx.commit().await?;
    Ok(
        json!({"adjustment_id": id, "tenant_id": t.id, "amount_cents": adjustment.amount_cents,
              "applies_to": "the tenant's next invoice"}),
    )
}
