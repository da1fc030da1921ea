//! `index`: a document's stored vectors → the tenant's vector placement; the document
//! becomes `ready`. Runs only in the process that owns the vector store. Acknowledged only
//! after the points are flushed and counted (the engine does not replay its WAL).

use super::guard::{JobError, guarded, progress};
use crate::context::{Ctx, JobContext};
use apalis::prelude::{BoxDynError, Data};
use docket_platform::documents::{self, vectors};
use docket_platform::ids::DocumentId;
use docket_platform::jobs::{JobEnvelope, record};
use docket_platform::tenant_keys::DataKey;
use docket_platform::tenants::IsolationTier;
use docket_platform::{placement, tenant_keys};
use docket_rag::vectors::{Placement, TenantScope, VectorIndex, VectorPoint};

/// Points per engine write.
const UPSERT_BATCH: usize = 512;

/// The apalis handler.
pub async fn handle(env: JobEnvelope, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    let inner: Ctx = (*ctx).clone();
    guarded(&ctx, &env, |_| run(inner, &env)).await
}

/// The rag crate's placement for a tier.
pub fn placement_of(tier: IsolationTier) -> Placement {
    match tier {
        IsolationTier::Shared => Placement::Shared,
        IsolationTier::Dedicated => Placement::Dedicated,
        IsolationTier::Isolated => Placement::Isolated,
    }
}

#[derive(sqlx::FromRow)]
struct ChunkMeta {
    ordinal: i32,
    page_start: i32,
    page_end: i32,
    text: String,
}

async fn run(shared: Ctx, env: &JobEnvelope) -> Result<(), JobError> {
    let ctx: &JobContext = &shared;
    let store = ctx
        .vectors
        .clone()
        .ok_or_else(|| JobError::transient("this worker does not own the vector store"))?;
    let (t, d) = (env.tenant_id, env.document_id);
    let _held = ctx
        .lock_tenant_vectors(t.as_uuid())
        .await
        .map_err(JobError::transient)?;

    let mut tx = ctx.db.begin_tenant(t).await.map_err(JobError::transient)?;
    progress(&mut tx, env, "index").await?;
    let key = tenant_keys::data_key(&mut tx, &ctx.config.master_key)
        .await
        .map_err(JobError::transient)?;
    let place = placement::ensure(&mut tx).await.map_err(JobError::transient)?;
    tx.commit().await.map_err(JobError::transient)?;
    let scope = TenantScope::new(t.as_uuid(), placement_of(place.current));

    let points = document_points(ctx, &key, t, d).await?;
    let expected = points.len();
    index_points(&store, scope, points).await?;
    let mut indexed = store
        .count(scope, Some(d.as_uuid()))
        .await
        .map_err(JobError::transient)?;
    if indexed > expected {
        // Re-chunked into fewer chunks: the old tail's points are stale. Writing the
        // document afresh leaves it without points for the moment between the two calls.
        store
            .delete_document(scope, d.as_uuid())
            .await
            .map_err(JobError::transient)?;
        // Read again rather than kept: this is the rare path.
        index_points(&store, scope, document_points(ctx, &key, t, d).await?).await?;
        indexed = store
            .count(scope, Some(d.as_uuid()))
            .await
            .map_err(JobError::transient)?;
    }
    if indexed != expected {
        return Err(JobError::transient(format!(
            "indexed {indexed} points for {expected} chunks"
        )));
    }

    let mut tx = ctx.db.begin_tenant(t).await.map_err(JobError::transient)?;
    documents::set_progress(&mut tx, d, "ready", "index")
        .await
        .map_err(JobError::transient)?;
    documents::set_chunking_version(&mut tx, d)
        .await
        .map_err(JobError::transient)?;
    // The stage's own record is closed in the same commit: a client that sees `ready`
    // must never see this stage still `running` (the guard's later close is then a no-op).
    record::succeed(&mut tx, env.job_id)
        .await
        .map_err(JobError::transient)?;
    tx.commit().await.map_err(JobError::transient)
}

/// Upserts in batches (each flushed before the next).
pub async fn index_points(
    store: &impl VectorIndex,
    scope: TenantScope,
    mut points: Vec<VectorPoint>,
) -> Result<(), JobError> {
    while !points.is_empty() {
        let rest = points.split_off(points.len().min(UPSERT_BATCH));
        store.upsert(scope, points).await.map_err(JobError::transient)?;
        points = rest;
    }
    Ok(())
}

/// A document's points: chunk payloads from PostgreSQL, vectors from object storage (never
/// embedded again).
pub async fn document_points(
    ctx: &JobContext,
    key: &DataKey,
    t: docket_platform::ids::TenantId,
    d: DocumentId,
) -> Result<Vec<VectorPoint>, JobError> {
    let mut tx = ctx.db.begin_tenant(t).await.map_err(JobError::transient)?;
    let chunks: Vec<ChunkMeta> = sqlx::query_as(
        "SELECT ordinal, page_start, page_end, text FROM chunks WHERE document_id = $1 ORDER BY ordinal",
    )
    .bind(d)
    .fetch_all(tx.conn())
    .await
    .map_err(JobError::transient)?;
    tx.commit().await.map_err(JobError::transient)?;

    let manifest = ctx
        .blobs
        .get(key, &vectors::manifest_key(d))
        .await
        .map_err(JobError::transient)?;
    let manifest: vectors::VectorManifest = serde_json::from_slice(&manifest).map_err(JobError::transient)?;
    let raw = ctx
        .blobs
        .get(key, &vectors::vectors_key(d))
        .await
        .map_err(JobError::transient)?;
    let rows = vectors::unpack(&raw, manifest.dimension, manifest.count)
        .ok_or_else(|| JobError::transient("stored vectors do not match their manifest"))?;
    if rows.len() != chunks.len() {
        return Err(JobError::transient(format!(
            "{} stored vectors for {} chunks",
            rows.len(),
            chunks.len()
        )));
    }
    Ok(chunks
        .into_iter()
        .zip(rows)
        .map(|(c, vector)| VectorPoint {
            document: d.as_uuid(),
            ordinal: c.ordinal as u32,
            page_start: c.page_start as u32,
            page_end: c.page_end as u32,
            text: c.text,
            vector,
        })
        .collect())
}
