//! `chunk`: text → chunks along the document's sections, sized in model tokens (rows with
//! deterministic ids, so a re-run replaces rather than duplicates; each with the headings
//! it carries), then enqueue `embed`.

use super::guard::{JobError, guarded, progress};
use crate::context::{Ctx, JobContext};
use apalis::prelude::{BoxDynError, Data};
use docket_platform::documents;
use docket_platform::jobs::{JobEnvelope, JobKind};
use docket_platform::tenant_keys;
use docket_rag::chunk::chunk_id;
use docket_rag::parse::Parsed;

/// The apalis handler.
pub async fn handle(env: JobEnvelope, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    let inner: Ctx = (*ctx).clone();
    guarded(&ctx, &env, |_| run(inner, &env)).await
}

async fn run(shared: Ctx, env: &JobEnvelope) -> Result<(), JobError> {
    let ctx: &JobContext = &shared;
    let mut tx = ctx
        .db
        .begin_tenant(env.tenant_id)
        .await
        .map_err(JobError::transient)?;
    progress(&mut tx, env, "chunk").await?;
    let key = tenant_keys::data_key(&mut tx, &ctx.config.master_key)
        .await
        .map_err(JobError::transient)?;
    tx.commit().await.map_err(JobError::transient)?;

    let raw = ctx
        .blobs
        .get(&key, &documents::text_key(env.document_id))
        .await
        .map_err(JobError::transient)?;
    let parsed: Parsed = serde_json::from_slice(&raw).map_err(JobError::transient)?;
    // Tokenizing is CPU-bound: off the async runtime.
    let for_blocking = shared.clone();
    let chunks = tokio::task::spawn_blocking(move || for_blocking.chunker.chunk(&parsed.pages))
        .await
        .map_err(|_| JobError::Permanent {
            code: "internal_error",
            message: "chunking crashed on this document".into(),
        })?;
    if chunks.is_empty() {
        return Err(JobError::Permanent {
            code: "no_extractable_text",
            message: "the document has no text to index".into(),
        });
    }

    let (t, d) = (env.tenant_id, env.document_id);
    let mut tx = ctx.db.begin_tenant(t).await.map_err(JobError::transient)?;
    let n = chunks.len() as i32;
    let ids: Vec<uuid::Uuid> = chunks
        .iter()
        .map(|c| chunk_id(t.as_uuid(), d.as_uuid(), c.ordinal))
        .collect();
    let ordinals: Vec<i32> = chunks.iter().map(|c| c.ordinal as i32).collect();
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    let starts: Vec<i32> = chunks.iter().map(|c| c.page_start as i32).collect();
    let ends: Vec<i32> = chunks.iter().map(|c| c.page_end as i32).collect();
    let tokens: Vec<i32> = chunks.iter().map(|c| c.token_count as i32).collect();
    let shas: Vec<&str> = chunks.iter().map(|c| c.sha256.as_str()).collect();
    let headings: Vec<&str> = chunks.iter().map(|c| c.heading.as_str()).collect();
    // A re-run with different settings may produce fewer chunks: drop the tail first.
    sqlx::query("DELETE FROM chunks WHERE document_id = $1 AND ordinal >= $2")
        .bind(d)
        .bind(n)
        .execute(tx.conn())
        .await
        .map_err(JobError::transient)?;
    sqlx::query(
        "INSERT INTO chunks (id, tenant_id, document_id, ordinal, text, page_start, page_end, token_count, sha256, heading)
         SELECT u.id, $1, $2, u.ordinal, u.text, u.page_start, u.page_end, u.token_count, u.sha256, u.heading
         FROM UNNEST($3::uuid[], $4::int[], $5::text[], $6::int[], $7::int[], $8::int[], $9::text[], $10::text[])
           AS u(id, ordinal, text, page_start, page_end, token_count, sha256, heading)
         ON CONFLICT (id) DO UPDATE SET text = EXCLUDED.text, page_start = EXCLUDED.page_start,
           page_end = EXCLUDED.page_end, token_count = EXCLUDED.token_count, sha256 = EXCLUDED.sha256,
           heading = EXCLUDED.heading",
    )
    .bind(t)
    .bind(d)
    .bind(&ids)
    .bind(&ordinals)
    .bind(&texts)
    .bind(&starts)
    .bind(&ends)
    .bind(&tokens)
    .bind(&shas)
    .bind(&headings)
    .execute(tx.conn())
    .await
    .map_err(JobError::transient)?;
    documents::set_chunks(&mut tx, d, n)
        .await
        .map_err(JobError::transient)?;
    progress(&mut tx, env, "embed").await?;
    let next = ctx
        .queue
        .prepare_next(&mut tx, env, JobKind::Embed)
        .await
        .map_err(JobError::transient)?;
    tx.commit().await.map_err(JobError::transient)?;
    ctx.queue.push(&next).await.map_err(JobError::transient)
}
