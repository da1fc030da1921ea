//! `embed`: a document's chunks (with their carried headings) → vectors (ONNX Runtime, batched, off the async runtime),
//! stored per document in object storage; a chunk whose text this tenant has embedded
//! before is taken from the cache. Then enqueue `index`.

use super::guard::{JobError, guarded, progress};
use crate::context::{Ctx, JobContext};
use apalis::prelude::{BoxDynError, Data};
use docket_platform::documents::vectors;
use docket_platform::jobs::{JobEnvelope, JobKind, Lane};
use docket_platform::tenant_keys;
use docket_rag::embed::DIMENSION;
use std::collections::HashMap;

/// Name under which vectors of this model are cached and described.
pub const MODEL: &str = "all-MiniLM-L6-v2-int8";

/// The apalis handler.
pub async fn handle(env: JobEnvelope, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    let inner: Ctx = (*ctx).clone();
    guarded(&ctx, &env, |_| run(inner, &env)).await
}

#[derive(sqlx::FromRow)]
struct ChunkRow {
    text: String,
    heading: String,
    sha256: String,
    token_count: i32,
}

async fn run(shared: Ctx, env: &JobEnvelope) -> Result<(), JobError> {
    let ctx: &JobContext = &shared;
    let (t, d) = (env.tenant_id, env.document_id);
    let mut tx = ctx.db.begin_tenant(t).await.map_err(JobError::transient)?;
    progress(&mut tx, env, "embed").await?;
    let key = tenant_keys::data_key(&mut tx, &ctx.config.master_key)
        .await
        .map_err(JobError::transient)?;
    let chunks: Vec<ChunkRow> = sqlx::query_as(
        "SELECT text, heading, sha256, token_count FROM chunks WHERE document_id = $1 ORDER BY ordinal",
    )
    .bind(d)
    .fetch_all(tx.conn())
    .await
    .map_err(JobError::transient)?;
    if chunks.is_empty() {
        return Err(JobError::Permanent {
            code: "no_extractable_text",
            message: "the document has no chunks to embed".into(),
        });
    }
    let shas: Vec<&str> = chunks.iter().map(|c| c.sha256.as_str()).collect();
    let cached: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT sha256, vector FROM embedding_cache WHERE model = $1 AND sha256 = ANY($2)")
            .bind(MODEL)
            .bind(&shas)
            .fetch_all(tx.conn())
            .await
            .map_err(JobError::transient)?;
    tx.commit().await.map_err(JobError::transient)?;
    let mut known: HashMap<String, Vec<f32>> = HashMap::new();
    for (sha, bytes) in cached {
        if let Some(mut v) = vectors::unpack(&bytes, DIMENSION, 1) {
            known.insert(sha, v.remove(0));
        }
    }

    // Each distinct new text once.
    let mut todo: Vec<(String, String, i32)> = vec![];
    for c in &chunks {
        if !known.contains_key(&c.sha256) && !todo.iter().any(|(s, _, _)| s == &c.sha256) {
            // The carried headings are embedded with the text (what `sha256` is of).
            todo.push((
                c.sha256.clone(),
                docket_rag::chunk::embedded(&c.heading, &c.text),
                c.token_count,
            ));
        }
    }
    let embedded_tokens: i64 = todo.iter().map(|(_, _, n)| i64::from(*n)).sum();
    if !todo.is_empty() {
        let texts: Vec<String> = todo.iter().map(|(_, t, _)| t.clone()).collect();
        let fresh = match env.lane {
            Lane::Interactive => {
                let for_blocking = shared.clone();
                tokio::task::spawn_blocking(move || {
                    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                    for_blocking.embedder.embed(&refs)
                })
                .await
                .map_err(|_| JobError::Permanent {
                    code: "internal_error",
                    message: "embedding crashed on this document".into(),
                })?
            }
            // Batched with the other imported documents being embedded right now.
            Lane::Bulk => ctx.bulk_embedder.embed(texts).await,
        }
        .map_err(JobError::transient)?;
        let mut tx = ctx.db.begin_tenant(t).await.map_err(JobError::transient)?;
        for ((sha, _, _), v) in todo.iter().zip(&fresh) {
            sqlx::query(
                "INSERT INTO embedding_cache (tenant_id, sha256, model, vector) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
            )
            .bind(t)
            .bind(sha)
            .bind(MODEL)
            .bind(vectors::pack(std::slice::from_ref(v)))
            .execute(tx.conn())
            .await
            .map_err(JobError::transient)?;
        }
        tx.commit().await.map_err(JobError::transient)?;
        for ((sha, _, _), v) in todo.into_iter().zip(fresh) {
            known.insert(sha, v);
        }
    }

    let ordered: Vec<Vec<f32>> = chunks
        .iter()
        .map(|c| {
            known
                .get(&c.sha256)
                .cloned()
                .ok_or_else(|| JobError::transient("a vector went missing"))
        })
        .collect::<Result<_, _>>()?;
    let manifest = vectors::VectorManifest {
        model: MODEL.into(),
        dimension: DIMENSION,
        count: ordered.len(),
    };
    ctx.blobs
        .put(&key, &vectors::vectors_key(d), &vectors::pack(&ordered))
        .await
        .map_err(JobError::transient)?;
    let manifest = serde_json::to_vec(&manifest).map_err(JobError::transient)?;
    ctx.blobs
        .put(&key, &vectors::manifest_key(d), &manifest)
        .await
        .map_err(JobError::transient)?;

    let mut tx = ctx.db.begin_tenant(t).await.map_err(JobError::transient)?;
    sqlx::query(
        "INSERT INTO usage_events (tenant_id, kind, quantity, actor, idempotency_key)
         VALUES ($1, 'embedding_tokens', $2, $3, $4) ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
    )
    .bind(t)
    .bind(embedded_tokens)
    .bind(&env.actor)
    .bind(format!("embedding_tokens:{d}"))
    .execute(tx.conn())
    .await
    .map_err(JobError::transient)?;
    progress(&mut tx, env, "index").await?;
    let next = ctx
        .queue
        .prepare_next(&mut tx, env, JobKind::Index)
        .await
        .map_err(JobError::transient)?;
    tx.commit().await.map_err(JobError::transient)?;
    ctx.queue.push(&next).await.map_err(JobError::transient)
}
