//! Retrieval for one tenant: the placement searches use now, the search with the tenant
//! filter, and what happens to a hit whose payload names another tenant (dropped, counted
//! in the heartbeat that `/metrics` renders, and written to the tenant's audit trail as an
//! isolation violation). The `answer` job builds on this.

use crate::context::JobContext;
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::ids::{DocumentId, TenantId};
use docket_platform::placement;
use docket_platform::tenants::IsolationTier;
use docket_rag::vectors::{Hit, TenantScope, VectorIndex};
use std::sync::atomic::{AtomicU64, Ordering};

/// Hits dropped by the tenant re-check since this process started.
pub static ISOLATION_VIOLATIONS: AtomicU64 = AtomicU64::new(0);

/// Why a search failed.
#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    /// Reading the placement.
    #[error(transparent)]
    Db(#[from] docket_platform::db::DbError),
    /// The vector store.
    #[error(transparent)]
    Vectors(#[from] docket_rag::vectors::VectorError),
}

/// The `limit` nearest chunks of `t` at its current placement, within `documents` when
/// any are given (one placement read, one search per document, best `limit` overall); only
/// the tenant's own points ever come back.
pub async fn search(
    ctx: &JobContext,
    store: &impl VectorIndex,
    t: TenantId,
    query: Vec<f32>,
    limit: usize,
    documents: &[DocumentId],
) -> Result<Vec<Hit>, RetrieveError> {
    let mut tx = ctx.db.begin_tenant(t).await?;
    let place = placement::read(&mut tx).await?;
    tx.commit().await?;
    search_at(ctx, store, t, place.current, query, limit, documents).await
}

/// [`search`] at a placement the caller has just read (in a transaction it needed anyway).
pub async fn search_at(
    ctx: &JobContext,
    store: &impl VectorIndex,
    t: TenantId,
    tier: IsolationTier,
    query: Vec<f32>,
    limit: usize,
    documents: &[DocumentId],
) -> Result<Vec<Hit>, RetrieveError> {
    let scope = TenantScope::new(t.as_uuid(), crate::jobs::index::placement_of(tier));
    let filters: Vec<Option<uuid::Uuid>> = match documents {
        [] => vec![None],
        ds => ds.iter().map(|d| Some(d.as_uuid())).collect(),
    };
    let mut hits = Vec::new();
    for filter in filters {
        let found = store.search(scope, query.clone(), limit, filter).await?;
        if !found.violations.is_empty() {
            report_violations(ctx, t, &found.violations).await;
        }
        hits.extend(found.hits);
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    hits.truncate(limit);
    Ok(hits)
}

/// Counts, logs and audits hits that named another tenant (already dropped by the search).
pub async fn report_violations(ctx: &JobContext, t: TenantId, dropped: &[Hit]) {
    ISOLATION_VIOLATIONS.fetch_add(dropped.len() as u64, Ordering::Relaxed);
    tracing::error!(tenant = %t, dropped = dropped.len(), "search returned points of another tenant; dropped");
    let points: Vec<String> = dropped.iter().map(|h| h.id.to_string()).collect();
    let ev = Event::new("vectors.isolation_violation", Outcome::Refused, Actor::System)
        .target(format!("tenant:{t}"))
        .reason("search hits whose payload names another tenant were dropped")
        .detail("dropped", dropped.len())
        .detail("points", points);
    let written = async {
        let mut tx = ctx.db.begin_tenant(t).await?;
        ctx.auditor.tenant(&mut tx, ev).await.map_err(|e| e.to_string())?;
        tx.commit().await?;
        Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    };
    if let Err(e) = written.await {
        tracing::error!(error = %e, "could not audit an isolation violation");
    }
}
