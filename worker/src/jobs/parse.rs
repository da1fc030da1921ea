//! `parse`: the original → text by page (stored encrypted), then enqueue `chunk`.

use super::guard::{JobError, guarded};
use crate::context::{Ctx, JobContext};
use apalis::prelude::{BoxDynError, Data};
use docket_platform::documents;
use docket_platform::jobs::{JobEnvelope, JobKind};
use docket_platform::tenant_keys;
use docket_rag::parse::{self, ContentKind};

/// The apalis handler.
pub async fn handle(env: JobEnvelope, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    guarded(&ctx, &env, |_| run(&ctx, &env)).await
}

async fn run(ctx: &JobContext, env: &JobEnvelope) -> Result<(), JobError> {
    let mut tx = ctx
        .db
        .begin_tenant(env.tenant_id)
        .await
        .map_err(JobError::transient)?;
    let doc = documents::get(&mut tx, env.document_id)
        .await
        .map_err(JobError::transient)?
        .ok_or_else(|| JobError::Permanent {
            code: "document_missing",
            message: "the document was deleted".into(),
        })?;
    documents::set_progress(&mut tx, doc.id, "processing", "parse")
        .await
        .map_err(JobError::transient)?;
    let key = tenant_keys::data_key(&mut tx, &ctx.config.master_key)
        .await
        .map_err(JobError::transient)?;
    tx.commit().await.map_err(JobError::transient)?;

    let kind = ContentKind::from_mime(&doc.content_type).ok_or_else(|| JobError::Permanent {
        code: "unsupported_media_type",
        message: format!("cannot parse {}", doc.content_type),
    })?;
    let original = ctx
        .blobs
        .get(&key, &documents::original_key(doc.id))
        .await
        .map_err(JobError::transient)?;
    let parsed = match kind {
        // A PDF's parse can take unbounded time and memory: a child process with limits
        // (a job timeout could stop waiting, not stop the parse).
        ContentKind::Pdf => {
            let limits = &ctx.config.ingest.parse;
            let bounds = parse::bounded::Bounds {
                program: limits.program.clone(),
                timeout: limits.timeout,
                memory_bytes: limits.memory_bytes,
            };
            parse::bounded::parse(&bounds, kind, original)
                .await
                .map_err(JobError::transient)?
        }
        // Text is a split on form feeds: linear, bounded by the upload size.
        ContentKind::Text | ContentKind::Markdown => {
            tokio::task::spawn_blocking(move || parse::parse(kind, &original))
                .await
                .map_err(JobError::transient)?
        }
    }
    .map_err(|e| JobError::Permanent {
        code: e.code(),
        message: e.to_string(),
    })?;

    let pages = parsed.pages.len() as i32;
    let text = serde_json::to_vec(&parsed).map_err(JobError::transient)?;
    ctx.blobs
        .put(&key, &documents::text_key(doc.id), &text)
        .await
        .map_err(JobError::transient)?;

    let mut tx = ctx
        .db
        .begin_tenant(env.tenant_id)
        .await
        .map_err(JobError::transient)?;
    documents::set_pages(&mut tx, doc.id, pages)
        .await
        .map_err(JobError::transient)?;
    // Metered once per document, however often the job runs.
    sqlx::query(
        "INSERT INTO usage_events (tenant_id, kind, quantity, actor, idempotency_key)
         VALUES ($1, 'pages_parsed', $2, $3, $4) ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
    )
    .bind(env.tenant_id)
    .bind(pages as i64)
    .bind(&env.actor)
    .bind(format!("pages_parsed:{}", doc.id))
    .execute(tx.conn())
    .await
    .map_err(JobError::transient)?;
    let next = ctx
        .queue
        .prepare_next(&mut tx, env, JobKind::Chunk)
        .await
        .map_err(JobError::transient)?;
    tx.commit().await.map_err(JobError::transient)?;
    ctx.queue.push(&next).await.map_err(JobError::transient)
}
