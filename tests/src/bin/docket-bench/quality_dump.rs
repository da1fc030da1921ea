//! `scripts/bench answer-quality --dump DIR`: what the evaluation retrieved, written out for
//! analysis outside the service (fitting the selection model, trying signals): every chunk
//! of the half's contracts with its vector (`chunks.jsonl`), and every question with its
//! vector, its fused candidates and their ranks, and which chunks hold its annotated
//! clause (`asks.jsonl`).

use docket_platform::ids::{DocumentId, TenantId};
use docket_tests::evaluation::{self, Ask};
use docket_worker::context::JobContext;
use docket_worker::retrieve::Candidate;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// A chunk row: ordinal, carried heading, text, first and last page, its cached vector.
type ChunkRow = (i32, String, String, i32, i32, Option<Vec<u8>>);

/// Writes `chunks.jsonl` and `asks.jsonl` into `dir`.
pub async fn write(
    ctx: &JobContext,
    t: TenantId,
    ids: &BTreeMap<u32, DocumentId>,
    retrieved: &[(Ask, Vec<Candidate>)],
    question_vectors: &[Vec<f32>],
    dir: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut chunks_out = std::io::BufWriter::new(std::fs::File::create(dir.join("chunks.jsonl"))?);
    let mut texts: BTreeMap<u32, Vec<(i32, String)>> = BTreeMap::new();
    for (n, doc) in ids {
        let mut tx = ctx.db.begin_tenant(t).await?;
        let rows: Vec<ChunkRow> = sqlx::query_as(
            "SELECT c.ordinal, c.heading, c.text, c.page_start, c.page_end, e.vector FROM chunks c
             LEFT JOIN embedding_cache e ON e.tenant_id = c.tenant_id AND e.sha256 = c.sha256
             WHERE c.tenant_id = $1 AND c.document_id = $2 ORDER BY c.ordinal",
        )
        .bind(t)
        .bind(doc.as_uuid())
        .fetch_all(tx.conn())
        .await?;
        tx.commit().await?;
        for (ordinal, heading, text, page_start, page_end, vector) in rows {
            let vector = vector
                .and_then(|b| docket_platform::documents::vectors::unpack(&b, 384, 1))
                .map(|mut v| v.remove(0));
            serde_json::to_writer(
                &mut chunks_out,
                &json!({"contract": n, "ordinal": ordinal, "heading": heading, "text": text,
                        "page_start": page_start, "page_end": page_end, "vector": vector}),
            )?;
            chunks_out.write_all(b"\n")?;
            texts.entry(*n).or_default().push((ordinal, text));
        }
    }
    chunks_out.flush()?;
    let mut asks_out = std::io::BufWriter::new(std::fs::File::create(dir.join("asks.jsonl"))?);
    for ((ask, found), qv) in retrieved.iter().zip(question_vectors) {
        let holding: Vec<i32> = texts
            .get(&ask.contract)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter(|(_, text)| evaluation::judge(ask.clone(), true, std::slice::from_ref(text)).any)
            .map(|(o, _)| *o)
            .collect();
        let candidates: Vec<_> = found
            .iter()
            .map(|c| {
                json!({"ordinal": c.hit.ordinal, "similarity": c.similarity, "fused": c.fused,
                       "dense_rank": c.dense_rank, "lexical_rank": c.lexical_rank})
            })
            .collect();
        serde_json::to_writer(
            &mut asks_out,
            &json!({"category": ask.category, "phrasing": ask.phrasing, "contract": ask.contract,
                    "question": ask.question, "annotated": ask.want.is_some(),
                    "holding": holding, "vector": qv, "candidates": candidates}),
        )?;
        asks_out.write_all(b"\n")?;
    }
    asks_out.flush()?;
    Ok(())
}
