//! Upkeep of the in-process vector engine in the process that owns it: on start, check that
//! every ready document has exactly one point per chunk and re-index from the stored vectors
//! what is missing (the engine keeps only flushed writes; the index is derived and can always
//! be rebuilt); afterwards, build HNSW indexes in the background, never on a request path.

use crate::context::Ctx;
use crate::jobs::index::{document_points, index_points, placement_of};
use docket_platform::ids::{DocumentId, TenantId};
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
    let tenants: Vec<(TenantId,)> = sqlx::query_as("SELECT id FROM tenants ORDER BY created_at")
        .fetch_all(ctx.db.platform_pool())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Reconciled::default();
    for (t,) in tenants {
        let lock = ctx.tenant_lock(t.as_uuid());
        let _held = lock.lock().await;
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

/// Runs the start-up check once, then optimizes written shards periodically until `stop`.
pub async fn run(ctx: Ctx, store: Vectors, mut stop: tokio::sync::watch::Receiver<bool>) {
    match reconcile(&ctx, &store).await {
        Ok(r) => tracing::info!(
            documents = r.documents,
            reindexed = r.reindexed,
            "vector index checked against the database"
        ),
        Err(e) => tracing::error!(error = %e, "vector index check failed; it runs again at the next start"),
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
