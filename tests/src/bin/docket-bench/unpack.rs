//! `scripts/bench unpack [--mib N]`: the memory a worker process needs to unpack a large zip
//! import. Builds an N MiB archive (default 1,024) of 1 MiB synthetic contracts stored
//! uncompressed (so the archive's size is its content's), imports it through the API into
//! a real worker process, samples the worker's resident memory every 20 ms while it unpacks,
//! and prints the resident memory before, the peak during the unpack and the growth — also
//! as a fraction of the archive (holding the archive in memory, as the worker used to, is a
//! growth of at least 1.0, twice that with its encrypted copy). No feeder runs: the
//! documents stay waiting, so the figure is the unpack's, not the pipeline's.

use anyhow::Context;
use docket_tests::{spawn_app, synthetic};
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use zip::write::SimpleFileOptions;

/// `mib` entries of 1 MiB each, every one different (the import skips duplicates).
fn archive(mib: u64) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::with_capacity(
        ((mib + 1) << 20) as usize,
    )));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for n in 0..mib {
        let mut text = format!("Contract {n}\n\n");
        let mut page = 0;
        while text.len() < 1 << 20 {
            text.push_str(&synthetic::contract(page, n));
            page += 1;
        }
        text.truncate(1 << 20);
        w.start_file(format!("contracts/{n:05}.txt"), opts)
            .expect("entry");
        w.write_all(text.as_bytes()).expect("write");
    }
    w.finish().expect("finish").into_inner()
}

/// Runs the benchmark.
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let mib = args
        .iter()
        .position(|a| a == "--mib")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024u64);
    let app = spawn_app().await;
    let t = app.create_tenant_on("unpack", "enterprise", "shared").await;
    let token = app.owner_token(&t).await;
    let zip = archive(mib);
    let archive_mib = zip.len() as f64 / (1 << 20) as f64;
    println!(
        "unpack benchmark: a {archive_mib:.0} MiB zip of {mib} entries (1 MiB each, stored), 1 worker process, no feeder"
    );

    let worker = app.spawn_worker_process("unpack-worker", true);
    let pid = worker.id();
    // Started when its resident memory stops growing (the model sessions are loaded).
    let mut last = 0;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = crate::rss_kib(pid);
        if now > 0 && now.abs_diff(last) < 1024 {
            break;
        }
        last = now;
    }
    let before = crate::rss_kib(pid);
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(crate::rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let r = app.import_zip(&token, zip).await;
    anyhow::ensure!(r.status() == 202, "import: {}", r.status());
    let id = r.json::<Value>().await?["import_id"]
        .as_str()
        .context("id")?
        .to_owned();
    let started = Instant::now();
    let status = loop {
        let s = app.import_status(&token, &id).await;
        if s["status"] != "queued" && s["status"] != "unpacking" {
            break s;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "unpack never ended: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.await?;
    // `running`: every entry is a waiting document (unpacked), none failed.
    anyhow::ensure!(
        status["status"] == "running" && status["failed"] == 0,
        "the unpack did not succeed: {status}"
    );
    let total = status["total"].as_i64().unwrap_or(-1);
    let (before, peak) = (
        before as f64 / 1024.0,
        peak.load(Ordering::Relaxed) as f64 / 1024.0,
    );
    let growth = peak - before;
    println!("unpacked:                {total} entries in {secs:.1} s");
    println!("worker RSS before:       {before:8.0} MiB (model sessions loaded)");
    println!("worker RSS peak:         {peak:8.0} MiB during the unpack");
    println!(
        "growth while unpacking:  {growth:8.0} MiB = {:.3} x the archive (goal < 300 MiB)",
        growth / archive_mib
    );
    drop(worker);
    Ok(())
}
