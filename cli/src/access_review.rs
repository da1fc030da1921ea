//! `docketctl access-review run --quarter YYYYQn [--tenant SLUG]`: the scheduler's
//! quarterly step on demand (failed reviews of the quarter are queued again), waiting until
//! every review of the quarter is issued; `docketctl access-review verify FILE`: a signed
//! report (`GET /v1/access-reviews/{id}/report`) checked offline.

use anyhow::Context;
use docket_platform::access_reviews::schedule::{self, RunRequest};
use docket_platform::access_reviews::{Quarter, issue};
use docket_platform::config::Config;
use docket_platform::db::ControlDb;
use docket_platform::jobs::queue::JobQueue;
use docket_platform::redis_conn::Redis;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// Makes and queues `quarter`'s reviews (every tenant, or `tenant`); with `wait`, until
/// none is queued or running, or the wait runs out (run it again to resume).
pub async fn access_review_run(
    config: &Config,
    control: &ControlDb,
    quarter: &str,
    tenant: Option<&str>,
    wait: Option<Duration>,
) -> anyhow::Result<Value> {
    let quarter = Quarter::parse(quarter).map_err(anyhow::Error::msg)?;
    if quarter.end() > chrono::Utc::now() {
        anyhow::bail!("{quarter} has not ended yet; a quarter is reviewed once it is over");
    }
    let only = match tenant {
        Some(name) => Some(crate::lookup::tenant(control, name).await?.id),
        None => None,
    };
    let redis = Redis::new(&config.redis.url, &config.redis.prefix)?;
    let queue = JobQueue::new(redis, config.ingest.job_max_attempts);
    let req = RunRequest {
        quarter,
        only,
        requested_by: "docketctl".into(),
        retry_failed: true,
    };
    let started = Instant::now();
    let report = schedule::run(control, &queue, &req, chrono::Utc::now()).await?;
    let mut out = serde_json::to_value(&report)?;
    let Some(wait) = wait else { return Ok(out) };
    loop {
        let counts: Vec<(String, i64)> = sqlx::query_as(
            "SELECT r.status, count(*) FROM access_reviews r JOIN tenants t ON t.id = r.tenant_id
             WHERE r.quarter = $1 AND ($2::uuid IS NULL OR r.tenant_id = $2)
               AND t.status IN ('active', 'suspended')
             GROUP BY 1 ORDER BY 1",
        )
        .bind(quarter.to_string())
        .bind(only)
        .fetch_all(control.pool())
        .await?;
        let pending: i64 = counts
            .iter()
            .filter(|(s, _)| s == "queued" || s == "running")
            .map(|c| c.1)
            .sum();
        if pending == 0 {
            out["reviews"] = json!(counts.into_iter().collect::<std::collections::BTreeMap<_, _>>());
            out["seconds"] = json!(started.elapsed().as_secs_f64());
            return Ok(out);
        }
        if started.elapsed() > wait {
            anyhow::bail!(
                "{pending} reviews of {quarter} are not issued yet (is a docket-worker running?); run again to resume"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Checks a signed report offline: its signature against `public_key` (a copy of
/// `/.well-known/docket-keys.json`) or the deployment's keys.
pub async fn access_review_verify(
    control: Option<&ControlDb>,
    file: &Path,
    public_key: Option<&Path>,
) -> anyhow::Result<Value> {
    let trusted = crate::export::trusted_keys(control, public_key).await?;
    let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(match issue::verify(&text, Some(&trusted)) {
        Ok((r, kid)) => json!({
            "ok": true, "signed_by": kid, "review_id": r.review_id, "tenant_id": r.tenant.id,
            "quarter": r.quarter, "findings": r.findings.len(), "users": r.users.len(), "api_keys": r.api_keys.len(),
        }),
        Err(problems) => json!({"ok": false, "problems": problems}),
    })
}
