//! Retrieval for one tenant: the placement searches use now, the dense search with the
//! tenant filter, the hybrid search that fuses it with the tenant's lexical search, and what
//! happens to a hit whose payload names another tenant (dropped, counted
//! in the heartbeat that `/metrics` renders, and written to the tenant's audit trail as an
//! isolation violation). The `answer` job builds on this.

use crate::context::JobContext;
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::documents::lexical::{self, LexicalHit};
use docket_platform::ids::{DocumentId, TenantId};
use docket_platform::placement;
use docket_platform::tenants::IsolationTier;
use docket_rag::answer::select::Selecting;
use docket_rag::answer::{Passage, fusion};
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

/// Candidates each ranking contributes to fusion: enough that a clause found by one
/// signal is usually scored by the other too (a contract has ~100 clause chunks).
pub const CANDIDATES: usize = 64;

/// Fused candidates handed to selection, which keeps the best `top_k` of them (the
/// openings of their documents come on top).
pub const POOL: usize = 24;

/// One fused candidate.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The chunk (from the vector payload, or from PostgreSQL when only words found it).
    pub hit: Hit,
    /// Cosine of question and chunk; a chunk dense search did not return is given the
    /// lowest cosine it did return (it is at most that similar).
    pub similarity: f32,
    /// Reciprocal-rank fusion of its dense and lexical ranks.
    pub fused: f32,
    /// Its place in the dense ranking (from 1), when dense search returned it.
    pub dense_rank: Option<u32>,
    /// Its place in the lexical ranking (from 1), when lexical search returned it.
    pub lexical_rank: Option<u32>,
}

/// Hybrid retrieval: the dense search above and the tenant's lexical (BM25) search run
/// together, each re-checked for the tenant, fused by reciprocal rank; the best `limit`,
/// plus the opening chunk of each of their documents.
#[allow(clippy::too_many_arguments)]
pub async fn hybrid(
    ctx: &JobContext,
    store: &impl VectorIndex,
    t: TenantId,
    tier: IsolationTier,
    question: &str,
    vector: Vec<f32>,
    limit: usize,
    documents: &[DocumentId],
) -> Result<Vec<Candidate>, RetrieveError> {
    let wanted = CANDIDATES.max(limit);
    let docs: Vec<uuid::Uuid> = documents.iter().map(|d| d.as_uuid()).collect();
    let lexical = async {
        let mut tx = ctx.db.begin_tenant(t).await?;
        let rows = lexical::search(&mut tx, question, &docs, wanted as i64).await?;
        tx.commit().await?;
        Ok::<_, RetrieveError>(rows)
    };
    let (dense, rows) = tokio::join!(search_at(ctx, store, t, tier, vector, wanted, documents), lexical);
    let (dense, rows) = (dense?, rows?);
    let dense = only_ready(ctx, t, dense).await?;
    // The same re-check dense hits get: a row naming another tenant is dropped and reported.
    let (rows, foreign): (Vec<LexicalHit>, Vec<LexicalHit>) =
        rows.into_iter().partition(|r| r.tenant_id == t.as_uuid());
    let lexical_hits: Vec<Hit> = rows.into_iter().map(|r| lexical_hit(t, r)).collect();
    if !foreign.is_empty() {
        let foreign: Vec<Hit> = foreign.into_iter().map(|r| lexical_hit(t, r)).collect();
        report_violations(ctx, t, &foreign).await;
    }
    let floor = dense.iter().map(|h| h.score).fold(f32::INFINITY, f32::min);
    let floor = if floor.is_finite() { floor } else { 0.0 };
    let key = |h: &Hit| (h.document, h.ordinal);
    let fused = fusion::fuse(&[
        dense.iter().map(key).collect(),
        lexical_hits.iter().map(key).collect(),
    ]);
    let mut out: Vec<Candidate> = fused
        .into_iter()
        .take(limit)
        .filter_map(|(k, fused)| {
            let dense_at = dense.iter().position(|h| key(h) == k);
            let lexical_at = lexical_hits.iter().position(|h| key(h) == k);
            let rank = |i: Option<usize>| i.map(|i| i as u32 + 1);
            let (hit, similarity) = match dense_at {
                Some(i) => (dense[i].clone(), dense[i].score),
                None => (lexical_hits[lexical_at?].clone(), floor),
            };
            Some(Candidate {
                hit,
                similarity,
                fused,
                dense_rank: rank(dense_at),
                lexical_rank: rank(lexical_at),
            })
        })
        .collect();
    add_openings(ctx, t, &dense, floor, &mut out).await?;
    Ok(out)
}

/// The hits whose documents are `ready`: a failed, cancelled or half-processed document
/// can have points in the index (written before it failed, or not yet swept), and none of
/// them may be cited. The lexical search applies the same rule in SQL.
async fn only_ready(ctx: &JobContext, t: TenantId, mut hits: Vec<Hit>) -> Result<Vec<Hit>, RetrieveError> {
    let mut docs: Vec<uuid::Uuid> = hits.iter().map(|h| h.document).collect();
    docs.sort_unstable();
    docs.dedup();
    if docs.is_empty() {
        return Ok(hits);
    }
    let mut tx = ctx.db.begin_tenant(t).await?;
    let ready = docket_platform::documents::ready_among(&mut tx, &docs).await?;
    tx.commit().await?;
    hits.retain(|h| ready.contains(&h.document));
    Ok(hits)
}

/// Adds the opening chunk of every candidate document (where a contract states its title,
/// its parties and its date), to compete on its similarity alone: taken from the dense
/// hits when they hold it, else read through RLS and given the lowest cosine returned.
async fn add_openings(
    ctx: &JobContext,
    t: TenantId,
    dense: &[Hit],
    floor: f32,
    out: &mut Vec<Candidate>,
) -> Result<(), RetrieveError> {
    let mut docs: Vec<uuid::Uuid> = out.iter().map(|c| c.hit.document).collect();
    docs.sort_unstable();
    docs.dedup();
    docs.retain(|d| !out.iter().any(|c| c.hit.document == *d && c.hit.ordinal == 0));
    let mut unread = Vec::new();
    for d in docs {
        match dense.iter().position(|h| h.document == d && h.ordinal == 0) {
            Some(i) => out.push(Candidate {
                hit: dense[i].clone(),
                similarity: dense[i].score,
                fused: 0.0,
                dense_rank: Some(i as u32 + 1),
                lexical_rank: None,
            }),
            None => unread.push(d),
        }
    }
    if unread.is_empty() {
        return Ok(());
    }
    let mut tx = ctx.db.begin_tenant(t).await?;
    let rows: Vec<(uuid::Uuid, uuid::Uuid, String, i32, i32)> = sqlx::query_as(
        "SELECT tenant_id, document_id, text, page_start, page_end FROM chunks
         WHERE tenant_id = $1 AND document_id = ANY($2) AND ordinal = 0",
    )
    .bind(t)
    .bind(&unread)
    .fetch_all(tx.conn())
    .await
    .map_err(docket_platform::db::DbError::from)?;
    tx.commit().await?;
    out.extend(
        rows.into_iter()
            .map(|(tenant, document, text, page_start, page_end)| Candidate {
                hit: Hit {
                    id: docket_rag::vectors::point_id(t.as_uuid(), document, 0),
                    score: floor,
                    tenant,
                    document,
                    ordinal: 0,
                    page_start: page_start as u32,
                    page_end: page_end as u32,
                    text,
                },
                similarity: floor,
                fused: 0.0,
                dense_rank: None,
                lexical_rank: None,
            }),
    );
    Ok(())
}

/// The candidates as passages, ranked by `selecting`'s model, the best `limit` kept (with
/// their hits, index for index).
pub fn best_passages(selecting: &Selecting, found: Vec<Candidate>, limit: usize) -> (Vec<Passage>, Vec<Hit>) {
    let passages: Vec<Passage> = found
        .iter()
        .map(|c| Passage {
            chunk_id: c.hit.id,
            document_id: c.hit.document,
            text: c.hit.text.clone(),
            page_start: c.hit.page_start,
            page_end: c.hit.page_end,
            ordinal: c.hit.ordinal,
            similarity: c.similarity,
            dense_rank: c.dense_rank,
            lexical_rank: c.lexical_rank,
        })
        .collect();
    let ranked = selecting.ranked(&passages);
    let mut pairs: Vec<Option<(Passage, Hit)>> = passages
        .into_iter()
        .zip(found.into_iter().map(|c| c.hit))
        .map(Some)
        .collect();
    ranked
        .into_iter()
        .take(limit)
        .filter_map(|(i, _)| pairs[i].take())
        .unzip()
}

/// A lexical row as a hit, with the point id a dense hit on the same chunk carries.
fn lexical_hit(t: TenantId, r: LexicalHit) -> Hit {
    Hit {
        id: docket_rag::vectors::point_id(t.as_uuid(), r.document_id, r.ordinal as u32),
        score: r.score as f32,
        tenant: r.tenant_id,
        document: r.document_id,
        ordinal: r.ordinal as u32,
        page_start: r.page_start as u32,
        page_end: r.page_end as u32,
        text: r.text,
    }
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
