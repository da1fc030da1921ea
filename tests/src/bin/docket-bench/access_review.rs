//! `scripts/bench access-review [--users N] [--keys N] [--events N]`: one tenant's quarterly
//! access review at scale. Seeds a tenant with N users (default 1,000), K API keys (500)
//! and E audit events (1,000,000) spread over the last complete quarter (sign-ins, questions,
//! reads and uploads of every user; one in a thousand a role change, one a key made), the
//! events' actors pseudonymized with the tenant's key as the auditor writes them, then runs
//! `docketctl access-review run` (a real process, which queues the job and waits for the
//! report) against one real `docket-worker`: wall time against the floor of reading the
//! quarter's events once (a bare count over the same rows, in the same run), the worker's
//! peak resident memory, and the PDF's rendering time and size.

use anyhow::Context;
use chrono::Utc;
use docket_platform::access_reviews::Quarter;
use docket_tests::{TestApp, sibling_binary, spawn_app};
use reqwest::Method;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str, default: i64) -> i64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Users and keys dated back a year, and the events of `q` with pseudonymous actors.
async fn seed(
    app: &TestApp,
    t: docket_platform::ids::TenantId,
    q: Quarter,
    users: i64,
    keys: i64,
    events: i64,
) -> anyhow::Result<()> {
    let su = app.pool_as("docket_test_super").await;
    sqlx::query("UPDATE tenants SET created_at = now() - interval '400 days' WHERE id = $1")
        .bind(t)
        .execute(&su)
        .await?;
    sqlx::query(
        "INSERT INTO users (tenant_id, email, role, status, created_at)
         SELECT $1, 'user' || g || '@bench.example.com', (ARRAY['admin', 'member', 'member', 'viewer'])[1 + g % 4],
                CASE WHEN g % 50 = 0 THEN 'disabled' ELSE 'active' END, now() - interval '300 days'
         FROM generate_series(1, $2) g",
    )
    .bind(t)
    .bind(users - 1)
    .execute(&su)
    .await?;
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, role, key_hash, created_at, expires_at, last_used_at)
         SELECT gen_random_uuid(), $1, 'key-' || g, 'member', 'x', now() - interval '200 days',
                CASE WHEN g % 10 = 0 THEN now() - interval '5 days' END,
                CASE WHEN g % 3 = 0 THEN NULL ELSE now() - interval '20 days' END
         FROM generate_series(1, $2) g",
    )
    .bind(t)
    .bind(keys)
    .execute(&su)
    .await?;
    // The actors' pseudonyms, as the auditor computes them.
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM users WHERE tenant_id = $1 ORDER BY id")
        .bind(t)
        .fetch_all(&su)
        .await?;
    let auditor = app.auditor();
    let mut tx = app.db.begin_tenant(t).await?;
    let pseudonyms = auditor.tenant_pseudonyms(&mut tx).await?;
    tx.commit().await?;
    let aliases: Vec<String> = ids
        .iter()
        .map(|id| pseudonyms.of(&format!("user:{id}")))
        .collect();
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM audit_events WHERE tenant_id = $1")
        .bind(t)
        .fetch_one(&su)
        .await?;
    let span = (q.end() - q.start()).num_seconds();
    // In slices, so the insert's memory and WAL stay bounded.
    let slice = 200_000;
    let mut done = 0;
    while done < events {
        let n = slice.min(events - done);
        sqlx::query(
            "INSERT INTO audit_events (tenant_id, seq, occurred_at, actor_kind, actor_id, action, target, outcome, details, prev_hash, hash)
             SELECT $1, $2 + g, $3 + ((g * 7919) % $4) * interval '1 second', 'user', ($5::text[])[1 + (g / 8) % array_length($5, 1)],
                    CASE g % 1000 WHEN 0 THEN 'users.update' WHEN 1 THEN 'api_keys.create'
                         ELSE (ARRAY['auth.login', 'queries.ask', 'documents.read', 'documents.list', 'documents.upload', 'queries.ask'])[1 + g % 6] END,
                    NULL, CASE WHEN g % 17 = 0 THEN 'refused' ELSE 'allowed' END,
                    CASE WHEN g % 1000 = 0 THEN '{\"role\": \"member\", \"status\": \"active\"}'::jsonb ELSE '{}'::jsonb END,
                    'bench', 'bench'
             FROM generate_series($6, $7) g",
        )
        .bind(t)
        .bind(head)
        .bind(q.start())
        .bind(span)
        .bind(&aliases)
        .bind(done + 1)
        .bind(done + n)
        .execute(&su)
        .await?;
        done += n;
    }
    sqlx::query("ANALYZE audit_events").execute(&su).await?;
    su.close().await;
    Ok(())
}

/// Runs the benchmark.
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let (users, keys, events) = (
        arg(args, "--users", 1_000),
        arg(args, "--keys", 500),
        arg(args, "--events", 1_000_000),
    );
    let quarter = Quarter::of(Utc::now()).previous();
    println!(
        "access-review benchmark: one tenant, {users} users, {keys} API keys, {events} audit events in {quarter}, 1 docket-worker"
    );
    let app = spawn_app().await;
    let t = app.create_tenant_on("reviewed", "business", "shared").await;
    let started = Instant::now();
    seed(&app, t.id, quarter, users, keys, events).await?;
    println!("seeded in {:.1} s", started.elapsed().as_secs_f64());

    // The floor: reading the quarter's events once.
    let floor = Instant::now();
    let counted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3",
    )
    .bind(t.id)
    .bind(quarter.start())
    .bind(quarter.end())
    .fetch_one(app.control.pool())
    .await?;
    let floor = floor.elapsed().as_secs_f64();

    let worker = app.spawn_worker_process("bench-review-worker", false);
    let mut before = 0;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = crate::rss_kib(worker.id());
        if now > 0 && now.abs_diff(before) < 1024 {
            break;
        }
        before = now;
    }
    let before = crate::rss_kib(worker.id());
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(before));
    let sampler = {
        let (done, peak, pid) = (done.clone(), peak.clone(), worker.id());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(crate::rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let run = Instant::now();
    let status = tokio::process::Command::new(sibling_binary("docketctl"))
        .env_clear()
        .envs(&app.env)
        .env("DOCKET_LOG", "warn")
        .args([
            "access-review",
            "run",
            "--quarter",
            &quarter.to_string(),
            "--tenant",
            &t.slug,
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .context("docketctl")?;
    let secs = run.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.await?;
    anyhow::ensure!(status.success(), "docketctl access-review run failed: {status}");
    let (findings, size): (Option<i32>, Option<i32>) = sqlx::query_as(
        "SELECT findings, length(report) FROM access_reviews WHERE tenant_id = $1 AND quarter = $2 AND status = 'open'",
    )
    .bind(t.id)
    .bind(quarter.to_string())
    .fetch_one(app.control.pool())
    .await?;
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM access_reviews WHERE tenant_id = $1")
        .bind(t.id)
        .fetch_one(app.control.pool())
        .await?;
    let token = app.owner_token(&t).await;
    let pdf_started = Instant::now();
    let pdf = app
        .call(
            Method::GET,
            &format!("/v1/access-reviews/{id}.pdf"),
            Some(&token),
            None,
        )
        .await;
    anyhow::ensure!(pdf.status() == 200, "PDF: {}", pdf.status());
    let pdf = pdf.bytes().await?;
    let pdf_secs = pdf_started.elapsed().as_secs_f64();
    let mib = |k: u64| k as f64 / 1024.0;
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "report:                  {secs:.2} s from the command to the signed report ({counted} events; a bare count of them: {floor:.2} s, {:.1}x)",
        secs / floor.max(1e-3)
    );
    println!(
        "findings:                {} ({} KiB signed JSON)",
        findings.unwrap_or(0),
        size.unwrap_or(0) / 1024
    );
    println!(
        "worker RSS:              {:8.1} MiB before, {:.1} MiB peak: +{:.1} MiB for the review",
        mib(before),
        mib(peak),
        mib(peak.saturating_sub(before))
    );
    println!(
        "PDF:                     {pdf_secs:.2} s to render and send, {} KiB",
        pdf.len() / 1024
    );
    drop(worker);
    Ok(())
}
