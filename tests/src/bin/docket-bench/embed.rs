//! `scripts/bench embed`: on the 40 cuad-dev contracts, the raw ONNX Runtime throughput
//! (chunks/s through the model alone) and the end-to-end ingestion throughput (upload →
//! `ready`, chunks/s) measured in one process on the same machine, and their ratio. The
//! goal is a ratio of at least 0.85: the model is the limit and the pipeline must keep it fed.
//!
//! Runs against the same real services as the tests (a fresh database, Redis, the local
//! object folder, the in-process vector engine) — `scripts/bench` sets them up.

use anyhow::Context;
use docket_rag::chunk::{ChunkSettings, Chunker};
use docket_rag::embed::{EmbedSettings, Embedder};
use docket_rag::parse::{ContentKind, parse};
use docket_tests::{corpus, spawn_app};
use serde_json::Value;
use std::time::{Duration, Instant};

fn contracts() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    (0..40)
        .map(|n| {
            let name = format!("cuad-{n:02}.pdf");
            let bytes = std::fs::read(corpus().join("pdf").join(&name)).with_context(|| name.clone())?;
            Ok((name, bytes))
        })
        .collect()
}

/// Runs the embedding benchmark.
pub async fn embed() -> anyhow::Result<()> {
    let docs = contracts()?;
    let app = spawn_app().await;
    let ingest = &app.config.ingest;
    let settings = EmbedSettings {
        model_dir: ingest.model_dir.clone(),
        library: ingest.ort_library.clone(),
        threads: ingest.embed_threads,
        batch: ingest.embed_batch,
    };
    println!(
        "embedding benchmark: 40 cuad-dev contracts, ONNX Runtime threads {}, batch {}",
        settings.threads, settings.batch
    );

    // The chunks exactly as the pipeline makes them (not timed).
    let chunker = Chunker::new(
        &ingest.model_dir.join("tokenizer.json"),
        ChunkSettings {
            max_tokens: ingest.chunk_max_tokens,
            overlap: ingest.chunk_overlap,
        },
    )?;
    let mut texts = vec![];
    let mut chunking = Duration::ZERO;
    for (name, bytes) in &docs {
        let parsed = parse(ContentKind::Pdf, bytes).with_context(|| name.clone())?;
        let started = Instant::now();
        let chunks = chunker.chunk(&parsed.pages);
        chunking += started.elapsed();
        // What the model embeds: the carried headings, then the text.
        texts.extend(chunks.iter().map(|c| c.embedded()));
    }

    // 1. Raw model throughput: every chunk through ONNX Runtime, nothing else.
    let raw = {
        let model = Embedder::load(&settings)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let started = Instant::now();
        let vectors = model.embed(&refs)?;
        anyhow::ensure!(vectors.len() == texts.len(), "one vector per chunk");
        texts.len() as f64 / started.elapsed().as_secs_f64()
    };
    println!("raw ONNX Runtime:   {raw:8.2} chunks/s ({} chunks)", texts.len());

    // 2. End to end: upload → parse → chunk → embed → index → ready, one worker process
    // (so its memory is its own).
    let mut worker = app.spawn_worker_process("bench-embed", true);
    let t = app.create_tenant("bench").await;
    let token = app.owner_token(&t).await;
    let started = Instant::now();
    let mut ids = vec![];
    for (name, bytes) in docs {
        let r = app.upload_raw(&token, &name, bytes, None).await;
        anyhow::ensure!(r.status() == 202, "upload {name}: {}", r.status());
        let v: Value = r.json().await?;
        ids.push(v["document_id"].as_str().context("id")?.to_owned());
    }
    let mut chunks = 0;
    for id in &ids {
        let d = app.wait_processed(&token, id, Duration::from_secs(1800)).await;
        anyhow::ensure!(d["status"] == "ready", "document {id}: {d}");
        chunks += d["chunks"].as_i64().context("chunks")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let e2e = chunks as f64 / elapsed;
    println!("end to end:         {e2e:8.2} chunks/s ({chunks} chunks in {elapsed:.1} s)");
    println!("ratio e2e / raw:    {:8.3} (goal ≥ 0.85)", e2e / raw);
    let rss = rss_kib(worker.id()).context("worker RSS")?;
    println!(
        "worker RSS after all 40 contracts: {:.0} MiB (goal < 1024 MiB)",
        rss as f64 / 1024.0
    );

    // What structure-aware chunking and lexical indexing add per chunk, next to the model.
    let lexing = {
        let started = Instant::now();
        // Summing the lengths makes PostgreSQL compute every vector (a bare count would not).
        let (n, lexemes): (i64, i64) = sqlx::query_as(
            "SELECT count(*), sum(length(to_tsvector('english', heading || ' ' || text)))::bigint FROM chunks",
        )
        .fetch_one(app.control.pool())
        .await?;
        anyhow::ensure!(n == chunks && lexemes > 0, "{n} chunk rows for {chunks} chunks");
        started.elapsed()
    };
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / texts.len() as f64;
    println!(
        "extra ingestion cost per chunk: structure-aware chunking {:.3} ms, lexemes {:.3} ms; the model {:.2} ms",
        per(chunking),
        per(lexing),
        1000.0 / raw
    );
    worker
        .terminate(Duration::from_secs(70))
        .await
        .context("worker stops")?;
    app.shutdown.cancel();
    Ok(())
}

/// Resident memory of a process (Linux).
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("VmRSS")
}
