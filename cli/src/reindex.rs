//! `docketctl reindex [--tenant SLUG]`: moves every `ready` document chunked by older rules
//! (`documents.chunking_version` below [`CHUNKING_VERSION`]) to the current ones. Each
//! document is re-chunked from its stored text, embedded, and re-indexed under the same
//! point ids by the ordinary pipeline (bulk lane, so interactive work goes first), marked
//! as a reindex: it stays `ready` and keeps answering from its current chunks until its
//! new ones are indexed, and a failure leaves it as it was. Re-running the command resumes:
//! only documents still below the version are queued again. Embedding again is not
//! charged (the usage ledger is keyed by document).

use docket_platform::audit::{Actor, Auditor, Event, Outcome};
use docket_platform::config::Config;
use docket_platform::db::ControlDb;
use docket_platform::documents::CHUNKING_VERSION;
use docket_platform::ids::{DocumentId, TenantId};
use docket_platform::jobs::queue::JobQueue;
use docket_platform::jobs::{JobEnvelope, JobKind, Lane};
use docket_platform::redis_conn::Redis;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Queues the reindex of `tenant` (slug or id; every active tenant when `None`) and, with
/// `wait`, shows progress until it is done (or the wait runs out: run it again to resume).
pub async fn reindex(
    config: &Config,
    control: &ControlDb,
    auditor: &Auditor,
    tenant: Option<&str>,
    wait: Option<Duration>,
) -> anyhow::Result<Value> {
    let tenants: Vec<TenantId> = match tenant {
        Some(name) => vec![crate::lookup::tenant(control, name).await?.id],
        None => {
            sqlx::query_scalar("SELECT id FROM tenants WHERE status = 'active' ORDER BY created_at")
                .fetch_all(control.pool())
                .await?
        }
    };
    let redis = Redis::new(&config.redis.url, &config.redis.prefix)?;
    let queue = JobQueue::new(redis, config.ingest.job_max_attempts);
    let mut queued: Vec<(TenantId, DocumentId)> = Vec::new();
    for t in &tenants {
        let mut tx = control.begin_tenant(*t).await?;
        let docs: Vec<DocumentId> = sqlx::query_scalar(
            // Locked until the jobs are recorded: a deletion asked meanwhile waits, then
            // finds them (and a document already being deleted is not ready).
            "SELECT id FROM documents WHERE status = 'ready' AND chunking_version < $1 ORDER BY created_at FOR SHARE",
        )
        .bind(CHUNKING_VERSION)
        .fetch_all(tx.conn())
        .await?;
        let mut envelopes: Vec<JobEnvelope> = Vec::with_capacity(docs.len());
        for d in &docs {
            let env = queue
                .prepare(&mut tx, Lane::Bulk, JobKind::Chunk, *d, None, "system")
                .await?;
            envelopes.push(JobEnvelope { reindex: true, ..env });
        }
        let ev = Event::new("documents.reindex", Outcome::Allowed, Actor::System)
            .target(format!("tenant:{t}"))
            .detail("documents", docs.len())
            .detail("chunking_version", CHUNKING_VERSION);
        auditor.tenant(&mut tx, ev).await?;
        tx.commit().await?;
        // Pushed after the commit: a worker never sees a job whose row is not visible yet.
        for env in &envelopes {
            queue.push(env).await?;
        }
        queued.extend(docs.into_iter().map(|d| (*t, d)));
    }
    let summary = |remaining: usize, failed: usize| {
        json!({
            "tenants": tenants.len(), "documents": queued.len(), "chunking_version": CHUNKING_VERSION,
            "remaining": remaining, "failed": failed,
        })
    };
    let Some(wait) = wait else {
        return Ok(summary(queued.len(), 0));
    };
    let bar = ProgressBar::new(queued.len() as u64);
    bar.set_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} documents re-chunked  {msg}",
    )?);
    let started = Instant::now();
    loop {
        let (remaining, failed) = pending(control, &queued).await?;
        bar.set_position((queued.len() - remaining) as u64);
        bar.set_message(if failed > 0 {
            format!("{failed} failed")
        } else {
            String::new()
        });
        if remaining == failed {
            bar.finish();
            anyhow::ensure!(
                failed == 0,
                "{failed} documents could not be re-chunked (they stay ready at their old chunking; see their jobs' errors, then run reindex again)"
            );
            return Ok(summary(0, 0));
        }
        if started.elapsed() >= wait {
            bar.abandon();
            anyhow::bail!(
                "{remaining} of {} documents are still being re-chunked; run `docketctl reindex` again to wait (it resumes)",
                queued.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Of `docs`, how many are still below the version, and how many of those had a stage of
/// their reindex fail for good.
async fn pending(control: &ControlDb, docs: &[(TenantId, DocumentId)]) -> anyhow::Result<(usize, usize)> {
    let (mut remaining, mut failed) = (0, 0);
    let mut tenants: Vec<TenantId> = docs.iter().map(|(t, _)| *t).collect();
    tenants.dedup();
    for t in tenants {
        let ids: Vec<DocumentId> = docs.iter().filter(|(x, _)| *x == t).map(|(_, d)| *d).collect();
        let mut tx = control.begin_tenant(t).await?;
        let (r, f): (i64, i64) = sqlx::query_as(
            "SELECT count(*),
                    count(*) FILTER (WHERE EXISTS (
                      SELECT 1 FROM jobs j WHERE j.target_id = d.id AND j.status = 'failed'
                        AND j.kind IN ('chunk', 'embed', 'index')))
             FROM documents d WHERE d.id = ANY($1) AND d.status = 'ready' AND d.chunking_version < $2",
        )
        .bind(&ids)
        .bind(CHUNKING_VERSION)
        .fetch_one(tx.conn())
        .await?;
        tx.commit().await?;
        remaining += r as usize;
        failed += f as usize;
    }
    Ok((remaining, failed))
}
