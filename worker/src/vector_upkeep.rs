//! Upkeep of the in-process vector engine in the process that owns it: on start, check that
//! every ready document has exactly one point per chunk and re-index from the stored vectors
//! what is missing (the engine keeps only flushed writes; the index is derived and can always
//! be rebuilt); afterwards, build HNSW indexes in the background, never on a request path.

use crate::context::Ctx;
use crate::jobs::index::{document_points, index_points, placement_of};
use docket_platform::ids::DocumentId;
use docket_platform::{placement, tenant_keys};
use docket_rag::vectors::{TenantScope, VectorIndex, Vectors};
use std::time::Duration;

/// How often written shards are optimized.
const OPTIMIZE_EVERY: Duration = Duration::from_secs(30);

/// What the start-up check found.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reconciled {
    /// Ready documents checked.
    pub documents: usize,
    /// Of those, re-indexed because points were missing or extra.
    pub reindexed: usize,
}

/// Checks every tenant's ready documents against the index and repairs what differs.
pub async fn reconcile(ctx: &Ctx, store: &Vectors) -> Result<Reconciled, String> {
    let tenants = docket_platform::tenants::all_ids(&ctx.db)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Reconciled::default();
    for t in tenants {
        let _held = ctx
            .lock_tenant_vectors(t.as_uuid())
            .await
            .map_err(|e| e.to_string())?;
        let mut tx = ctx.db.begin_tenant(t).await.map_err(|e| e.to_string())?;
        let docs: Vec<(DocumentId, i32)> = sqlx::query_as(
            "SELECT d.id, (SELECT count(*)::int FROM chunks c WHERE c.document_id = d.id)
             FROM documents d WHERE d.status = 'ready' ORDER BY d.created_at",
        )
        .fetch_all(tx.conn())
        .await
        .map_err(|e| e.to_string())?;
        if docs.is_empty() {
            continue;
        }
        let place = placement::ensure(&mut tx).await.map_err(|e| e.to_string())?;
        let key = tenant_keys::data_key(&mut tx, &ctx.config.master_key).await;
        tx.commit().await.map_err(|e| e.to_string())?;
        // A crypto-shredded tenant has nothing left to index.
        let Ok(key) = key else { continue };
        let scope = TenantScope::new(t.as_uuid(), placement_of(place.current));
        for (d, chunks) in docs {
            out.documents += 1;
            let have = store
                .count(scope, Some(d.as_uuid()))
                .await
                .map_err(|e| e.to_string())?;
            if have == chunks as usize {
                continue;
            }
            tracing::warn!(tenant = %t, document = %d, have, chunks, "re-indexing a document from its stored vectors");
            store
                .delete_document(scope, d.as_uuid())
                .await
                .map_err(|e| e.to_string())?;
            let points = document_points(ctx, &key, t, d)
                .await
                .map_err(|e| format!("{e:?}"))?;
            index_points(store, scope, points)
                .await
                .map_err(|e| format!("{e:?}"))?;
            out.reindexed += 1;
        }
    }
    Ok(out)
}

/// A check finished this recently is not repeated by another worker starting (a roll-out
/// starts them all within minutes).
pub const RECONCILED_RECENTLY: Duration = Duration::from_secs(600);

/// Who checks the index at start-up: with the in-process engine always its one owner (the
/// directory is its own); with a Qdrant server, which every worker shares, one worker of
/// the deployment — whoever takes the advisory lock first, unless a check finished within
/// [`RECONCILED_RECENTLY`]. `Ok(Some(lease))` means "check, then [`ReconcileLease::finish`]".
pub async fn claim_reconciliation(ctx: &Ctx, store: &Vectors) -> Result<Option<ReconcileLease>, sqlx::Error> {
    claim(ctx, store.edge().is_none()).await
}

/// [`claim_reconciliation`] for an index that is `shared` by every worker (a server) or
/// owned by this one.
pub async fn claim(ctx: &Ctx, shared: bool) -> Result<Option<ReconcileLease>, sqlx::Error> {
    let mut conn = ctx.lock_pool.acquire().await?;
    if !shared {
        return Ok(Some(ReconcileLease { conn, leader: false }));
    }
    // The session holds the lock: closing it however the lease ends (a panic included)
    // releases it, instead of returning a locked connection to the pool.
    conn.close_on_drop();
    let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('docket:vector-reconcile'))")
        .fetch_one(&mut *conn)
        .await?;
    if !leader {
        return Ok(None);
    }
    let recent: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM vector_reconciliations WHERE finished_at > now() - make_interval(secs => $1))",
    )
    .bind(RECONCILED_RECENTLY.as_secs_f64())
    .fetch_one(&mut *conn)
    .await?;
    let lease = ReconcileLease { conn, leader: true };
    if recent {
        lease.finish(None).await?;
        return Ok(None);
    }
    Ok(Some(lease))
}

/// The right to check the index now (see [`claim_reconciliation`]).
#[derive(Debug)]
pub struct ReconcileLease {
    conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    leader: bool,
}

impl ReconcileLease {
    /// Records the check as done by `worker` (`None`: nothing was checked) and lets the
    /// next worker have the lock.
    pub async fn finish(mut self, worker: Option<&str>) -> Result<(), sqlx::Error> {
        if !self.leader {
            return Ok(());
        }
        if let Some(w) = worker {
            sqlx::query(
                "INSERT INTO vector_reconciliations (finished_at, worker) VALUES (now(), $1)
                 ON CONFLICT (id) DO UPDATE SET finished_at = now(), worker = $1",
            )
            .bind(w)
            .execute(&mut *self.conn)
            .await?;
        }
        sqlx::query("SELECT pg_advisory_unlock(hashtext('docket:vector-reconcile'))")
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }
}

/// Runs the start-up check (where this worker is the one to run it), then optimizes
/// written shards periodically until `stop`.
pub async fn run(ctx: Ctx, store: Vectors, mut stop: tokio::sync::watch::Receiver<bool>) {
    match claim_reconciliation(&ctx, &store).await {
        Ok(Some(lease)) => match reconcile(&ctx, &store).await {
            Ok(r) => {
                tracing::info!(
                    documents = r.documents,
                    reindexed = r.reindexed,
                    "vector index checked against the database"
                );
                if let Err(e) = lease.finish(Some(&ctx.config.worker_name)).await {
                    tracing::warn!(error = %e, "could not record the vector index check");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "vector index check failed; it runs again at the next start");
                let _ = lease.finish(None).await;
            }
        },
        Ok(None) => tracing::info!("another worker checks (or just checked) the shared vector index"),
        Err(e) => tracing::error!(error = %e, "could not decide who checks the vector index"),
    }
    let mut tick = tokio::time::interval(OPTIMIZE_EVERY);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        // A Qdrant server optimizes by itself; only the in-process engine needs this.
        let Some(edge) = store.edge() else { return };
        match edge.optimize().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                shards = n,
                disk_bytes = edge.disk_bytes(),
                "vector shards optimized"
            ),
            Err(e) => tracing::warn!(error = %e, "vector optimization failed"),
        }
    }
}
