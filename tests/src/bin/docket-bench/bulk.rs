//! `scripts/bench bulk [--docs N]`: imports N synthetic contracts (default 2,000) as one zip
//! through the API, with a real worker process and a real scheduler (feeder) process, and
//! prints documents/min, chunks/s and its ratio to the raw model throughput measured in
//! this run, the peak queue depth (jobs waiting in Redis, all queues) and the peak memory
//! of each process; plus fairness: another tenant's single upload, ready-time beside the
//! import ÷ idle. Ends with an extrapolation to 50,000 contracts. With `--minutes M` it
//! measures for M minutes and cancels the rest (how `--docs 50000` is run on one machine:
//! the whole import would take hours, the steady-state rate is what extrapolates).

use anyhow::Context;
use docket_platform::jobs::{JobKind, Lane};
use docket_rag::chunk::{ChunkSettings, Chunker};
use docket_rag::embed::{EmbedSettings, Embedder};
use docket_tests::importing::zip_of;
use docket_tests::{TestApp, spawn_app, synthetic};
use serde_json::Value;
use std::time::{Duration, Instant};

fn flag(args: &[String], name: &str) -> Option<u64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// Peak resident memory (VmHWM) of a process, in MiB.
fn peak_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Jobs waiting in Redis over every queue (both lanes of each stage, plus `import`).
async fn queue_depth(queue: &docket_platform::jobs::JobQueue) -> i64 {
    let Ok(mut conn) = queue.redis().conn().await else {
        return -1;
    };
    let mut lists = vec![];
    for kind in [JobKind::Parse, JobKind::Chunk, JobKind::Embed, JobKind::Index] {
        for lane in Lane::ALL {
            lists.push(queue.config(kind, lane).active_jobs_list());
        }
    }
    lists.push(docket_platform::imports::job::config(queue).active_jobs_list());
    let mut total = 0;
    for l in lists {
        let n: i64 = redis::cmd("LLEN")
            .arg(&l)
            .query_async(&mut conn)
            .await
            .unwrap_or(0);
        total += n;
    }
    total
}

async fn time_to_ready(app: &TestApp, token: &str, name: &str, text: String) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let v: Value = app
        .upload_raw(token, name, text.into_bytes(), None)
        .await
        .json()
        .await?;
    let id = v["document_id"].as_str().context("id")?.to_owned();
    loop {
        let d = app.document(token, &id).await;
        anyhow::ensure!(d["status"] != "failed", "{d}");
        if d["status"] == "ready" {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "{name} never became ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the bulk benchmark.
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let docs = flag(args, "--docs").unwrap_or(2000);
    let limit = flag(args, "--minutes").map(|m| Duration::from_secs(m * 60));
    let app = spawn_app().await;
    let ingest = &app.config.ingest;
    println!("bulk benchmark: {docs} synthetic contracts in one zip, 1 worker process, 1 feeder process");

    // Raw model throughput on the chunks of the first 200 documents (as the pipeline cuts them).
    let chunker = Chunker::new(
        &ingest.model_dir.join("tokenizer.json"),
        ChunkSettings {
            max_tokens: ingest.chunk_max_tokens,
            overlap: ingest.chunk_overlap,
        },
    )?;
    let mut texts = vec![];
    for n in 0..docs.min(200) {
        let pages = [synthetic::contract(3, n)];
        texts.extend(chunker.chunk(&pages).into_iter().map(|c| c.text));
    }
    let raw = {
        let settings = EmbedSettings {
            model_dir: ingest.model_dir.clone(),
            library: ingest.ort_library.clone(),
            threads: ingest.embed_threads,
            batch: ingest.embed_batch,
        };
        let model = Embedder::load(&settings)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let started = Instant::now();
        model.embed(&refs)?;
        texts.len() as f64 / started.elapsed().as_secs_f64()
    };
    println!(
        "raw ONNX Runtime:        {raw:8.2} chunks/s ({} chunks, {:.2} per document)",
        texts.len(),
        texts.len() as f64 / docs.min(200) as f64
    );

    let a = app.create_tenant_on("bulk", "enterprise", "shared").await;
    let a_token = app.owner_token(&a).await;
    let b = app.create_tenant_on("single", "team", "shared").await;
    let b_token = app.owner_token(&b).await;
    let worker = app.spawn_worker_process("bench-worker", true);
    let feeder = app.spawn_scheduler_process("bench-feeder");
    let (worker_pid, feeder_pid) = (worker.id().to_string(), feeder.id().to_string());
    let _ = time_to_ready(&app, &b_token, "warm.txt", synthetic::contract(90, 0)).await?;
    let idle = time_to_ready(&app, &b_token, "idle.txt", synthetic::contract(90, 1)).await?;
    println!("single upload, idle:     {:8.2} s", idle.as_secs_f64());

    let entries: Vec<(String, Vec<u8>)> = (0..docs)
        .map(|n| (format!("bulk/{n:06}.txt"), synthetic::contract(4, n).into_bytes()))
        .collect();
    let zip = zip_of(&entries);
    drop(entries);
    let started = Instant::now();
    let r = app.import_zip(&a_token, zip).await;
    anyhow::ensure!(r.status() == 202, "import: {}", r.status());
    let id = r.json::<Value>().await?["import_id"]
        .as_str()
        .context("id")?
        .to_owned();
    let queue = docket_platform::jobs::JobQueue::new(
        docket_platform::redis_conn::Redis::new(&app.config.redis.url, &app.config.redis.prefix)?,
        5,
    );
    let (mut peak_depth, mut loaded) = (0i64, None);
    let status = loop {
        let s = app.import_status(&a_token, &id).await;
        peak_depth = peak_depth.max(queue_depth(&queue).await);
        let ready = s["ready"].as_i64().unwrap_or(0);
        if loaded.is_none() && ready >= (docs as i64 / 10).max(5) {
            loaded = Some(time_to_ready(&app, &b_token, "busy.txt", synthetic::contract(90, 2)).await?);
        }
        if s["status"] != "unpacking" && s["status"] != "running" {
            break s;
        }
        if limit.is_some_and(|l| started.elapsed() > l) {
            let path = format!("/v1/imports/{id}");
            let r = app
                .call(reqwest::Method::DELETE, &path, Some(&a_token), None)
                .await;
            anyhow::ensure!(r.status() == 200, "cancel: {}", r.status());
            break app.import_status(&a_token, &id).await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let elapsed = started.elapsed().as_secs_f64();
    let ready = status["ready"].as_i64().unwrap_or(0);
    if limit.is_none() {
        anyhow::ensure!(ready == docs as i64, "not all ready: {status}");
    }
    let chunks = status["chunks"].as_f64().unwrap_or(0.0);
    let per_min = ready as f64 / elapsed * 60.0;
    let e2e = chunks / elapsed;
    let cut = if limit.is_some() {
        " (time limit reached; the rest cancelled)"
    } else {
        ""
    };
    println!(
        "import:                  {ready} of {docs} documents ready, {chunks} chunks in {elapsed:.1} s{cut}"
    );
    println!("documents/min:           {per_min:8.1}");
    println!(
        "chunks/s end to end:     {e2e:8.2} (ratio to raw model {:.3})",
        e2e / raw
    );
    println!(
        "peak queue depth:        {peak_depth:8} jobs in Redis (all queues; apalis-redis fails near 8,000)"
    );
    println!(
        "peak memory:             api+bench {:.0} MiB, worker {:.0} MiB, feeder {:.0} MiB",
        peak_mib("self"),
        peak_mib(&worker_pid),
        peak_mib(&feeder_pid)
    );
    if let Some(l) = loaded {
        println!(
            "fairness:                single upload {:.2} s beside the import vs {:.2} s idle = {:.2}x (goal ≤ 3)",
            l.as_secs_f64(),
            idle.as_secs_f64(),
            l.as_secs_f64() / idle.as_secs_f64()
        );
    }
    let minutes_50k = 50_000.0 / per_min;
    println!(
        "extrapolation:           50,000 contracts ≈ {:.0} min on this machine; ≈ {} worker machines like it for < 60 min (embedding-bound, scales per machine)",
        minutes_50k,
        (minutes_50k / 60.0).ceil().max(1.0)
    );
    drop(worker);
    drop(feeder);
    Ok(())
}
