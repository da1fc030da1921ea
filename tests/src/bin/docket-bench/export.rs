//! `scripts/bench export [--bytes N]`: an export of the 40 cuad-dev contracts (or, with
//! `--bytes`, a synthetic tenant of N bytes in 1 MiB documents) from a real `docket-worker`
//! into a bucket on the local S3 server: MB/s, the worker's peak resident memory, and the
//! ratio to a raw copy of the same originals to the same server measured in the same run
//! (one object at a time, as the export writes them).

use docket_tests::exporting::{bucket, request};
use docket_tests::spawn_app;
use object_store::{ObjectStoreExt, PutPayload};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A client for `bucket` configured as an export's destination client is.
fn unsigned_client(bucket_name: &str) -> Arc<dyn object_store::ObjectStore> {
    Arc::new(
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(docket_tests::exporting::s3_endpoint())
            .with_bucket_name(bucket_name)
            .with_region("us-east-1")
            .with_access_key_id("customer-key")
            .with_secret_access_key("customer-secret")
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_unsigned_payload(true)
            .build()
            .expect("client"),
    )
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are 12th, 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<f64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0
}

/// Runs the benchmark.
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let synthetic: Option<u64> = args
        .iter()
        .position(|a| a == "--bytes")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok());
    let docs: Vec<(String, Vec<u8>)> = match synthetic {
        None => (0..40)
            .map(|n| (format!("cuad-{n:02}.pdf"), docket_tests::contract(n)))
            .collect(),
        Some(total) => (0..total.div_ceil(1 << 20))
            .map(|i| {
                let body: Vec<u8> = format!("Synthetic contract {i}: the parties agree. ")
                    .into_bytes()
                    .into_iter()
                    .cycle()
                    .take(1 << 20)
                    .collect();
                (format!("synthetic-{i:05}.txt"), body)
            })
            .collect(),
    };
    let originals: u64 = docs.iter().map(|(_, b)| b.len() as u64).sum();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "export benchmark: {} documents, {:.1} MiB of originals, 1 docket-worker, local S3 server",
        docs.len(),
        mib(originals)
    );
    let app = spawn_app().await;
    let t = app.create_tenant_on("bench-export", "enterprise", "shared").await;
    let token = app.owner_token(&t).await;
    let raw_copy = docs.clone();
    app.seed_originals(t.id, docs).await;

    // Baseline: the same bytes, straight to the same server, one object at a time, with the
    // client settings the export uses (payload not hashed into the signature).
    let b = bucket().await;
    let store = unsigned_client(&b);
    let started = Instant::now();
    for (name, body) in raw_copy {
        store
            .put(
                &object_store::path::Path::from(format!("raw/{name}")),
                PutPayload::from(body),
            )
            .await?;
    }
    let raw_secs = started.elapsed().as_secs_f64();
    let raw_rate = mib(originals) / raw_secs;

    let worker = app.spawn_worker_process("bench-export-worker", false);
    let mut last = 0;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = crate::rss_kib(worker.id());
        if now > 0 && now.abs_diff(last) < 1024 {
            break;
        }
        last = now;
    }
    let before = crate::rss_kib(worker.id());
    let (peak, done) = (Arc::new(AtomicU64::new(before)), Arc::new(AtomicBool::new(false)));
    let sampler = {
        let (peak, done, pid) = (peak.clone(), done.clone(), worker.id());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(crate::rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let cpu_before = cpu_secs(worker.id());
    let started = Instant::now();
    let id = app.request_export(&token, request(&b, "export")).await;
    let status = app.wait_export(&token, &id, Duration::from_secs(3600)).await;
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs(worker.id()) - cpu_before;
    done.store(true, Ordering::Relaxed);
    sampler.await?;
    anyhow::ensure!(status["status"] == "done", "export did not finish: {status}");
    let bytes = status["bytes_done"].as_u64().unwrap_or(0);
    let rate = mib(bytes) / secs;
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "raw copy of the originals:  {:.1} MiB in {raw_secs:.2} s = {raw_rate:.1} MiB/s",
        mib(originals)
    );
    println!(
        "export (request → done):   {:.1} MiB in {secs:.2} s = {rate:.1} MiB/s, {} files",
        mib(bytes),
        status["files_done"]
    );
    println!("ratio export / raw copy:   {:.2} (goal ≥ 0.7)", rate / raw_rate);
    println!("worker CPU during export:  {cpu:.2} s");
    println!(
        "worker RSS:                {:.0} MiB before, {:.0} MiB peak: +{:.0} MiB (goal: peak < 300 MiB for the export itself)",
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak.saturating_sub(before) as f64 / 1024.0
    );
    drop(worker);
    // The emulator keeps every object in memory: leave nothing behind for the next run.
    let listed: Vec<_> = futures::TryStreamExt::try_collect(store.list(None)).await?;
    for o in listed {
        store.delete(&o.location).await?;
    }
    Ok(())
}
