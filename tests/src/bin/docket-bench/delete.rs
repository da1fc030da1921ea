//! `scripts/bench delete [--docs N] [--samples N]`: imports N synthetic contracts (default
//! 10,000) into one tenant through the real pipeline (a worker process, a feeder process),
//! then deletes `samples` of its documents one after another (default 20) and prints the
//! p50/p95/max time from the request to the certificate, against the same deletions from a
//! tenant holding only those documents (measured in the same run: what the tenant's size
//! adds, mostly the residue scan reading every row of the tenant), and the worker's
//! resident memory while deleting. Then it deletes each whole tenant (confirmed, the grace
//! period skipped by running the calendar's step as of its end) and prints the wall time
//! from the confirmation to the certificate and the worker's peak memory meanwhile.

use anyhow::Context;
use docket_tests::actors::TestTenant;
use docket_tests::importing::zip_of;
use docket_tests::{TestApp, spawn_app, synthetic};
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

fn flag(args: &[String], name: &str) -> Option<u64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// Imports `docs` synthetic contracts into `t` as one zip and waits until every document
/// is ready (signing in again every five minutes: a large import outlives an access token).
async fn import(app: &TestApp, t: &TestTenant, seed: u64, docs: u64) -> anyhow::Result<f64> {
    let mut token = app.owner_token(t).await;
    let mut signed_in = Instant::now();
    let entries: Vec<(String, Vec<u8>)> = (0..docs)
        .map(|n| {
            (
                format!("bulk/{n:06}.txt"),
                synthetic::contract(seed, n).into_bytes(),
            )
        })
        .collect();
    let started = Instant::now();
    let r = app.import_zip(&token, zip_of(&entries)).await;
    anyhow::ensure!(r.status() == 202, "import: {}", r.status());
    let id = r.json::<Value>().await?["import_id"]
        .as_str()
        .context("import id")?
        .to_owned();
    loop {
        if signed_in.elapsed() > Duration::from_secs(300) {
            token = app.owner_token(t).await;
            signed_in = Instant::now();
        }
        let s = app.import_status(&token, &id).await;
        if s["status"] != "unpacking" && s["status"] != "running" {
            anyhow::ensure!(s["ready"].as_u64() == Some(docs), "not all ready: {s}");
            return Ok(started.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Deletes each of `ids` in turn; the seconds from request to certificate of each, and the
/// worker's peak resident memory meanwhile (KiB).
async fn delete_each(
    app: &TestApp,
    token: &str,
    ids: &[String],
    worker: u32,
) -> anyhow::Result<(Vec<f64>, u64)> {
    let (mut times, mut peak) = (vec![], 0);
    for id in ids {
        let started = Instant::now();
        let (status, v) = app.delete_document(token, id, false).await;
        anyhow::ensure!(status == 202, "delete {id}: {status} {v}");
        let deletion = v["deletion_id"].as_str().context("deletion id")?.to_owned();
        loop {
            peak = peak.max(crate::rss_kib(worker));
            let r = app
                .call(
                    Method::GET,
                    &format!("/v1/deletions/{deletion}/certificate"),
                    Some(token),
                    None,
                )
                .await;
            if r.status() == 200 {
                break;
            }
            anyhow::ensure!(r.status() == 409, "certificate: {}", r.status());
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(300),
                "deletion {deletion} never finished"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times, peak))
}

/// Deletes the whole tenant of `token`: asks, confirms, runs the calendar's step as of
/// the end of the grace period, and waits for the certificate. Seconds from the
/// confirmation to the certificate, and the worker's peak resident memory meanwhile (KiB).
async fn delete_tenant(app: &TestApp, token: &str, worker: u32) -> anyhow::Result<(f64, u64)> {
    let body = serde_json::json!({"scope": "tenant"});
    let asked: Value = app
        .call(Method::POST, "/v1/deletions", Some(token), Some(body))
        .await
        .json()
        .await?;
    let id = asked["deletion_id"].as_str().context("deletion id")?.to_owned();
    let code = serde_json::json!({"confirmation_code": asked["confirmation_code"]});
    let started = Instant::now();
    let confirmed: Value = app
        .call(
            Method::POST,
            &format!("/v1/deletions/{id}/confirm"),
            Some(token),
            Some(code),
        )
        .await
        .json()
        .await?;
    let cert_token = confirmed["certificate_token"]
        .as_str()
        .context("certificate token")?
        .to_owned();
    let after_grace = chrono::Utc::now() + chrono::Duration::days(91);
    docket_platform::deletions::tenant::queue_due(&app.control, &app.job_queue(), after_grace).await?;
    let mut peak = 0;
    loop {
        peak = peak.max(crate::rss_kib(worker));
        let r = app
            .call(
                Method::GET,
                &format!("/v1/deletion-certificates/{id}"),
                Some(&cert_token),
                None,
            )
            .await;
        if r.status() == 200 {
            return Ok((started.elapsed().as_secs_f64(), peak));
        }
        anyhow::ensure!(r.status() == 409, "certificate: {}", r.status());
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "tenant deletion {id} never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ids of `n` ready documents of the tenant (spread over its documents).
async fn some_documents(
    app: &TestApp,
    t: docket_platform::ids::TenantId,
    n: u64,
) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id::text FROM documents WHERE tenant_id = $1 AND status = 'ready' ORDER BY md5(id::text) LIMIT $2",
    )
    .bind(t)
    .bind(n as i64)
    .fetch_all(app.control.pool())
    .await?)
}

/// Runs the deletion benchmark.
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let docs = flag(args, "--docs").unwrap_or(10_000);
    let samples = flag(args, "--samples").unwrap_or(20);
    let app = spawn_app().await;
    let worker = app.spawn_worker_process("bench-worker", true);
    let _feeder = app.spawn_scheduler_process("bench-feeder");
    println!(
        "delete benchmark: one document at a time from a tenant of {docs} synthetic contracts, {samples} deletions"
    );

    let small = app.create_tenant_on("small", "enterprise", "shared").await;
    import(&app, &small, 7, samples).await?;
    let big = app.create_tenant_on("large", "enterprise", "shared").await;
    let secs = import(&app, &big, 8, docs).await?;
    let (small_token, big_token) = (app.owner_token(&small).await, app.owner_token(&big).await);
    let rows: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM documents WHERE tenant_id = $1), (SELECT count(*) FROM chunks WHERE tenant_id = $1)",
    )
    .bind(big.id)
    .fetch_one(app.control.pool())
    .await?;
    println!(
        "large tenant:            {} documents, {} chunks (imported in {secs:.0} s)",
        rows.0, rows.1
    );

    let rss_before = crate::rss_kib(worker.id());
    let (base, _) = delete_each(
        &app,
        &small_token,
        &some_documents(&app, small.id, samples).await?,
        worker.id(),
    )
    .await?;
    let (large, peak) = delete_each(
        &app,
        &big_token,
        &some_documents(&app, big.id, samples).await?,
        worker.id(),
    )
    .await?;
    let p = |v: &[f64], q: f64| crate::percentile(v, q);
    println!(
        "tenant of {samples:>6} docs:    p50 {:.3} s  p95 {:.3} s  max {:.3} s (request to certificate)",
        p(&base, 50.0),
        p(&base, 95.0),
        p(&base, 100.0)
    );
    println!(
        "tenant of {:>6} docs:    p50 {:.3} s  p95 {:.3} s  max {:.3} s  = {:.2}x the small tenant's p50",
        rows.0,
        p(&large, 50.0),
        p(&large, 95.0),
        p(&large, 100.0),
        p(&large, 50.0) / p(&base, 50.0)
    );
    println!(
        "worker memory:           {:.0} MiB before the deletions, peak {:.0} MiB while deleting",
        rss_before as f64 / 1024.0,
        peak as f64 / 1024.0
    );

    let before = crate::rss_kib(worker.id());
    let (small_secs, _) = delete_tenant(&app, &small_token, worker.id()).await?;
    let (big_secs, big_peak) = delete_tenant(&app, &big_token, worker.id()).await?;
    // The small tenant has no document left (each was deleted above): the fixed cost.
    println!("whole tenant, no documents left:  {small_secs:.2} s (confirmation to certificate)");
    println!(
        "whole tenant of {:>6} docs:    {big_secs:.2} s = {:.1}x; worker {:.0} MiB before, peak {:.0} MiB while deleting",
        rows.0 - samples as i64,
        big_secs / small_secs,
        before as f64 / 1024.0,
        big_peak as f64 / 1024.0
    );
    Ok(())
}
