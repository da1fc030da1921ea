//! Tier moves in the process that owns the vector store. An operator sets the tenant's tier
//! (`docketctl tenant move`), which records the wish in `tenants.isolation_tier` and
//! notifies this process on a Redis list; the start-up check picks up any wish it missed.
//!
//! A move re-indexes the tenant's ready documents from their stored vectors (never
//! embedding again) into the new placement, verifies the count, switches
//! `vector_placements` in one UPDATE, waits for searches that read the old placement to
//! finish, then purges the old placement. Searches keep answering from the old placement
//! until the switch and from the new one after it. Indexing of the tenant waits on the
//! tenant lock meanwhile. Re-running a half-done move is safe: point ids are deterministic.

use crate::context::Ctx;
use crate::jobs::index::{document_points, index_points, placement_of};
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::ids::{DocumentId, TenantId};
use docket_platform::tenants::IsolationTier;
use docket_platform::{placement, tenant_keys};
use docket_rag::vectors::{TenantScope, VectorIndex, Vectors};
use std::time::Duration;

/// How long the old placement stays after the switch, for searches already under way.
const DRAIN: Duration = Duration::from_secs(2);

/// A finished move.
#[derive(Debug, Clone, Copy)]
pub struct Moved {
    /// Documents re-indexed.
    pub documents: usize,
    /// Points written into the new placement.
    pub points: usize,
}

/// Moves `t` to its requested tier if it is not there yet. `Ok(None)`: nothing to do.
pub async fn move_if_requested(ctx: &Ctx, store: &Vectors, t: TenantId) -> Result<Option<Moved>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let _held = ctx.lock_tenant_vectors(t.as_uuid()).await.map_err(|e| err(&e))?;

    let mut tx = ctx.db.begin_tenant(t).await.map_err(|e| err(&e))?;
    let place = placement::ensure(&mut tx).await.map_err(|e| err(&e))?;
    if place.current == place.desired {
        tx.commit().await.map_err(|e| err(&e))?;
        // A move interrupted after its switch still has the old placement to purge.
        if let Some(old) = place.leftover {
            purge(ctx, store, t, old).await?;
        }
        return Ok(None);
    }
    let docs: Vec<(DocumentId,)> =
        sqlx::query_as("SELECT id FROM documents WHERE status = 'ready' ORDER BY created_at")
            .fetch_all(tx.conn())
            .await
            .map_err(|e| err(&e))?;
    let key = tenant_keys::data_key(&mut tx, &ctx.config.master_key)
        .await
        .map_err(|e| err(&e))?;
    tx.commit().await.map_err(|e| err(&e))?;
    let to = TenantScope::new(t.as_uuid(), placement_of(place.desired));
    tracing::info!(tenant = %t, from = place.current.as_str(), to = place.desired.as_str(), documents = docs.len(), "moving a tenant's vectors");

    // Fill the new placement from the stored vectors (a leftover of an interrupted move
    // is replaced: same ids).
    let mut points = 0;
    for (d,) in &docs {
        let p = document_points(ctx, &key, t, *d)
            .await
            .map_err(|e| format!("{e:?}"))?;
        points += p.len();
        index_points(store, to, p).await.map_err(|e| format!("{e:?}"))?;
    }
    let there = store.count(to, None).await.map_err(|e| err(&e))?;
    if there != points {
        return Err(format!(
            "the new placement holds {there} points, expected {points}"
        ));
    }

    // Switch atomically, audited in the tenant's chain.
    let mut tx = ctx.db.begin_tenant(t).await.map_err(|e| err(&e))?;
    let switched = placement::switch(&mut tx, place.current, place.desired)
        .await
        .map_err(|e| err(&e))?;
    if !switched {
        // Someone else moved the tenant since we read its placement: our copy is not what
        // searches use; leave it for the next move to replace.
        return Err(format!(
            "the placement is no longer {}: another worker moved the tenant; the move will be retried",
            place.current.as_str()
        ));
    }
    let ev = Event::new("vectors.tier_move", Outcome::Allowed, Actor::System)
        .target(format!("tenant:{t}"))
        .detail("from", place.current.as_str())
        .detail("to", place.desired.as_str())
        .detail("documents", docs.len())
        .detail("points", points);
    ctx.auditor.tenant(&mut tx, ev).await.map_err(|e| err(&e))?;
    tx.commit().await.map_err(|e| err(&e))?;

    tokio::time::sleep(DRAIN).await;
    purge(ctx, store, t, place.current).await?;
    tracing::info!(tenant = %t, points, "tenant's vectors moved; old placement purged");
    Ok(Some(Moved {
        documents: docs.len(),
        points,
    }))
}

/// Empties the placement a move left and marks the move complete.
async fn purge(ctx: &Ctx, store: &Vectors, t: TenantId, old: IsolationTier) -> Result<(), String> {
    let from = TenantScope::new(t.as_uuid(), placement_of(old));
    store.delete_tenant(from).await.map_err(|e| e.to_string())?;
    let mut tx = ctx.db.begin_tenant(t).await.map_err(|e| e.to_string())?;
    placement::purged(&mut tx).await.map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())
}

/// Every tenant whose requested tier differs from its placement, or whose last move has
/// not purged the old placement yet (start-up check).
pub async fn pending(ctx: &Ctx) -> Result<Vec<TenantId>, String> {
    let tenants = docket_platform::tenants::all_ids(&ctx.db)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = vec![];
    for t in tenants {
        let mut tx = ctx.db.begin_tenant(t).await.map_err(|e| e.to_string())?;
        let place = placement::read(&mut tx).await.map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        if place.current != place.desired || place.leftover.is_some() {
            out.push(t);
        }
    }
    Ok(out)
}

/// Waits for move requests on the Redis list until `stop`, and runs them one at a time.
pub async fn listen(ctx: Ctx, store: Vectors, mut stop: tokio::sync::watch::Receiver<bool>) {
    match pending(&ctx).await {
        Ok(ts) => {
            for t in ts {
                run_one(&ctx, &store, t).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not look for pending tier moves"),
    }
    // The worker's own Redis handle (the queues'), not a second client.
    let redis = ctx.queue.redis().clone();
    loop {
        match placement::next_move(&redis).await.unwrap_or(None) {
            Some(t) => run_one(&ctx, &store, t).await,
            None => {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
        }
    }
}

async fn run_one(ctx: &Ctx, store: &Vectors, t: TenantId) {
    if let Err(e) = move_if_requested(ctx, store, t).await {
        tracing::error!(tenant = %t, error = %e, "tier move failed; it is retried at the next request or start");
    }
}
