//! The feeder: moves imported documents from PostgreSQL into the bulk lane's parse queue in
//! bounded slices. It keeps the documents in the pipeline under a global cap (so the
//! queues never hold more than a few hundred bulk jobs, far below apalis-redis's ~8,000)
//! and each tenant under its plan's `import_concurrency`, and hands out free slots one per
//! tenant per round, least-served first: a tenant with 50,000 waiting and a tenant with 1
//! are served alternately, not first-come-first-served.
//!
//! Resumable: a document is `admitted` (its parse job row written) in one transaction and
//! marked `pushed` after the push; a feeder that dies between the two leaves it
//! `admitted`, and the next sweep pushes it again unless a worker has already started it.

use crate::db::{ControlDb, Db, DbError};
use crate::ids::{DocumentId, ImportId, TenantId};
use crate::jobs::{JobKind, JobQueue, Lane, QueueError};
use std::collections::HashMap;
use std::time::Duration;

/// How the feeder paces itself.
#[derive(Debug, Clone)]
pub struct FeederSettings {
    /// Imported documents in the pipeline at once, all tenants together.
    pub max_in_flight: i64,
    /// Pause between rounds.
    pub interval: Duration,
    /// An admitted document whose push has not been confirmed after this long (the
    /// feeder died in between) is pushed again.
    pub repush_after: Duration,
}

impl Default for FeederSettings {
    fn default() -> Self {
        Self {
            max_in_flight: 256,
            interval: Duration::from_millis(200),
            repush_after: Duration::from_secs(30),
        }
    }
}

/// A round failed (nothing is lost: the next round starts from the database again).
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Redis.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<sqlx::Error> for FeedError {
    fn from(e: sqlx::Error) -> Self {
        FeedError::Db(e.into())
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Documents admitted and pushed.
    pub admitted: usize,
    /// Admitted documents pushed again after a feeder died.
    pub repushed: usize,
    /// Imports finished this round.
    pub finished: u64,
    /// Another feeder holds the lock: this one did nothing.
    pub skipped: bool,
}

/// A tenant with documents waiting.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
struct Candidate {
    tenant_id: TenantId,
    cap: i32,
    in_flight: i64,
}

/// Hands out `free` slots one per tenant per round, least-served first; returns grants.
fn allocate(mut candidates: Vec<Candidate>, mut free: i64) -> Vec<(TenantId, i64)> {
    candidates.sort_by_key(|c| (c.in_flight, c.tenant_id));
    let mut grants: Vec<(TenantId, i64)> = candidates.iter().map(|c| (c.tenant_id, 0)).collect();
    let mut progress = true;
    while free > 0 && progress {
        progress = false;
        for (c, g) in candidates.iter().zip(grants.iter_mut()) {
            if free > 0 && c.in_flight + g.1 < i64::from(c.cap) {
                g.1 += 1;
                free -= 1;
                progress = true;
            }
        }
    }
    grants.retain(|g| g.1 > 0);
    grants
}

/// One round: finish imports with nothing left, push admitted documents whose push was
/// lost, admit new ones. Only one feeder at a time does a round (advisory lock).
pub async fn round(
    control: &ControlDb,
    db: &Db,
    queue: &JobQueue,
    s: &FeederSettings,
) -> Result<Round, FeedError> {
    let mut lock = control.pool().begin().await?;
    let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext('docket:feeder'))")
        .fetch_one(&mut *lock)
        .await?;
    if !leader {
        return Ok(Round {
            skipped: true,
            ..Default::default()
        });
    }
    let finished = sqlx::query(
        "UPDATE imports i SET status = 'done', finished_at = now(), updated_at = now()
         WHERE status = 'running' AND NOT EXISTS (
           SELECT 1 FROM documents d WHERE d.import_id = i.id AND d.status IN ('queued', 'processing'))",
    )
    .execute(control.pool())
    .await?
    .rows_affected();
    let repushed = repush_lost(control, db, queue, s.repush_after).await?;

    let in_flight: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM documents
         WHERE feed_state IN ('admitted', 'pushed') AND status IN ('queued', 'processing')",
    )
    .fetch_one(control.pool())
    .await?;
    let mut admitted = 0;
    if in_flight < s.max_in_flight {
        let candidates: Vec<Candidate> = sqlx::query_as(
            "WITH waiting AS (SELECT DISTINCT tenant_id FROM documents WHERE feed_state = 'waiting'),
                  flight AS (SELECT tenant_id, count(*) AS n FROM documents
                             WHERE feed_state IN ('admitted', 'pushed') AND status IN ('queued', 'processing')
                             GROUP BY tenant_id)
             SELECT w.tenant_id, p.import_concurrency AS cap, COALESCE(f.n, 0) AS in_flight
             FROM waiting w JOIN tenants t ON t.id = w.tenant_id JOIN plans p ON p.id = t.plan_id
             LEFT JOIN flight f ON f.tenant_id = w.tenant_id
             WHERE t.status = 'active'",
        )
        .fetch_all(control.pool())
        .await?;
        for (tenant, n) in allocate(candidates, s.max_in_flight - in_flight) {
            admitted += admit(db, queue, tenant, n).await?;
        }
    }
    lock.commit().await?;
    Ok(Round {
        admitted,
        repushed,
        finished,
        skipped: false,
    })
}

#[derive(sqlx::FromRow)]
struct Admitted {
    id: DocumentId,
    import_id: ImportId,
    actor: String,
    request_id: Option<String>,
}

/// Admits up to `n` of the tenant's oldest waiting documents and pushes their parse jobs.
async fn admit(db: &Db, queue: &JobQueue, tenant: TenantId, n: i64) -> Result<usize, FeedError> {
    let mut tx = db.begin_tenant(tenant).await?;
    let rows: Vec<Admitted> = sqlx::query_as(
        "WITH picked AS (
           SELECT id FROM documents WHERE feed_state = 'waiting'
           ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED),
         moved AS (
           UPDATE documents d SET feed_state = 'admitted', admitted_at = now(), updated_at = now()
           FROM picked WHERE d.id = picked.id RETURNING d.id, d.import_id)
         SELECT m.id, m.import_id, i.actor, i.request_id FROM moved m JOIN imports i ON i.id = m.import_id",
    )
    .bind(n)
    .fetch_all(tx.conn())
    .await
    .map_err(DbError::from)?;
    let mut envelopes = Vec::with_capacity(rows.len());
    for r in &rows {
        let request = r
            .request_id
            .clone()
            .or_else(|| Some(format!("import:{}", r.import_id)));
        envelopes.push(
            queue
                .prepare(&mut tx, Lane::Bulk, JobKind::Parse, r.id, request, &r.actor)
                .await?,
        );
    }
    tx.commit().await?;
    push_and_mark(db, queue, tenant, &envelopes).await
}

async fn push_and_mark(
    db: &Db,
    queue: &JobQueue,
    tenant: TenantId,
    envelopes: &[crate::jobs::JobEnvelope],
) -> Result<usize, FeedError> {
    let mut pushed = vec![];
    for env in envelopes {
        queue.push(env).await?;
        pushed.push(env.document_id);
    }
    let mut tx = db.begin_tenant(tenant).await?;
    sqlx::query("UPDATE documents SET feed_state = 'pushed' WHERE id = ANY($1) AND feed_state = 'admitted'")
        .bind(&pushed)
        .execute(tx.conn())
        .await
        .map_err(DbError::from)?;
    tx.commit().await?;
    Ok(pushed.len())
}

#[derive(sqlx::FromRow)]
struct Lost {
    tenant_id: TenantId,
    document_id: DocumentId,
}

/// Documents left `admitted` longer than `after`: push again those whose parse job no
/// worker has started; mark the rest pushed (a worker has it).
async fn repush_lost(
    control: &ControlDb,
    db: &Db,
    queue: &JobQueue,
    after: Duration,
) -> Result<usize, FeedError> {
    let lost: Vec<Lost> = sqlx::query_as(
        "SELECT tenant_id, id AS document_id FROM documents
         WHERE feed_state = 'admitted' AND admitted_at < now() - make_interval(secs => $1) LIMIT 1000",
    )
    .bind(after.as_secs_f64())
    .fetch_all(control.pool())
    .await?;
    let mut by_tenant: HashMap<TenantId, Vec<DocumentId>> = HashMap::new();
    for l in lost {
        by_tenant.entry(l.tenant_id).or_default().push(l.document_id);
    }
    let mut repushed = 0;
    for (tenant, docs) in by_tenant {
        let mut tx = db.begin_tenant(tenant).await?;
        let untouched: Vec<(crate::ids::JobId, DocumentId, Option<String>, String, i32)> = sqlx::query_as(
            "SELECT id, target_id, request_id, actor, generation FROM jobs
             WHERE target_id = ANY($1) AND kind = 'parse' AND status = 'queued' AND attempts = 0",
        )
        .bind(&docs)
        .fetch_all(tx.conn())
        .await
        .map_err(DbError::from)?;
        tx.commit().await?;
        let envelopes: Vec<_> = untouched
            .into_iter()
            .map(
                |(job_id, document_id, request_id, actor, generation)| crate::jobs::JobEnvelope {
                    v: crate::jobs::ENVELOPE_VERSION,
                    tenant_id: tenant,
                    job_id,
                    document_id,
                    request_id,
                    actor,
                    kind: JobKind::Parse,
                    lane: Lane::Bulk,
                    reindex: false,
                    generation,
                },
            )
            .collect();
        repushed += push_and_mark(db, queue, tenant, &envelopes).await?;
        // The others were started by a worker: their push happened.
        let mut tx = db.begin_tenant(tenant).await?;
        sqlx::query(
            "UPDATE documents SET feed_state = 'pushed' WHERE id = ANY($1) AND feed_state = 'admitted'",
        )
        .bind(&docs)
        .execute(tx.conn())
        .await
        .map_err(DbError::from)?;
        tx.commit().await?;
    }
    Ok(repushed)
}

/// Runs rounds until `stop` resolves. Errors are logged and the next round starts over.
pub async fn run(
    control: ControlDb,
    db: Db,
    queue: JobQueue,
    settings: FeederSettings,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                match round(&control, &db, &queue, &settings).await {
                    Ok(r) if r.admitted + r.repushed > 0 || r.finished > 0 => {
                        tracing::debug!(admitted = r.admitted, repushed = r.repushed, finished = r.finished, "feeder round");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "feeder round failed; retrying"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(n: u128, cap: i32, in_flight: i64) -> Candidate {
        Candidate {
            tenant_id: TenantId(uuid::Uuid::from_u128(n)),
            cap,
            in_flight,
        }
    }

    #[test]
    fn slots_go_round_robin_least_served_first_within_caps() {
        // A big importer already at 6 of 8, a newcomer at 0 of 2, one full tenant.
        let grants = allocate(vec![c(1, 8, 6), c(2, 2, 0), c(3, 2, 2)], 3);
        assert_eq!(
            grants,
            vec![
                (TenantId(uuid::Uuid::from_u128(2)), 2),
                (TenantId(uuid::Uuid::from_u128(1)), 1)
            ]
        );
        // With plenty of room everyone gets up to its cap, no more.
        let grants = allocate(vec![c(1, 8, 6), c(2, 2, 0)], 100);
        assert_eq!(grants.iter().map(|g| g.1).sum::<i64>(), 4);
        // No room: nothing.
        assert!(allocate(vec![c(1, 8, 0)], 0).is_empty());
    }
}
