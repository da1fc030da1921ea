//! `scripts/bench billing [--tenants N] [--events N] [--stripe-tenants N]`: a month's billing
//! run at scale. Seeds N tenants (default 10,000, the four plans in turn, active all month)
//! and a ledger of E rows (default 1,000,000) spread over June 2026, then runs
//! `docketctl billing run --period 2026-06` (a real process, which queues the jobs in slices
//! and waits for every invoice) against one real `docket-worker`, Stripe off: wall time,
//! invoices per second, the CLI's peak resident memory and the worker's growth. Then, with
//! Stripe on (localstripe, one emulator), S tenants (default 500) are invoiced and pushed:
//! invoices pushed per second.

use anyhow::Context;
use docket_tests::stripe::{KEY, LocalStripe};
use docket_tests::{TestApp, sibling_binary, spawn_app, spawn_app_with};
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

/// Samples the peak RSS of `pids` every 20 ms until `done`.
fn sample(pids: Vec<u32>, done: Arc<AtomicBool>) -> (Vec<Arc<AtomicU64>>, tokio::task::JoinHandle<()>) {
    let peaks: Vec<Arc<AtomicU64>> = pids.iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
    let p = peaks.clone();
    let handle = tokio::spawn(async move {
        while !done.load(Ordering::Relaxed) {
            for (pid, peak) in pids.iter().zip(&p) {
                peak.fetch_max(crate::rss_kib(*pid), Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (peaks, handle)
}

/// N tenants active since 2020 on the four plans in turn.
async fn seed_tenants(app: &TestApp, n: i64) -> anyhow::Result<()> {
    let su = app.pool_as("docket_test_super").await;
    sqlx::query(
        "INSERT INTO tenants (slug, name, plan_id)
         SELECT 'bench-' || g, 'Bench ' || g, (ARRAY['free', 'team', 'business', 'enterprise'])[1 + g % 4]
         FROM generate_series(1, $1) g",
    )
    .bind(n)
    .execute(&su)
    .await?;
    sqlx::query("UPDATE plan_history SET from_ts = '2020-01-01'")
        .execute(&su)
        .await?;
    sqlx::query("UPDATE status_history SET from_ts = '2020-01-01'")
        .execute(&su)
        .await?;
    su.close().await;
    Ok(())
}

/// E ledger rows over June 2026, the tenants and kinds in turn.
async fn seed_ledger(app: &TestApp, events: i64) -> anyhow::Result<()> {
    let su = app.pool_as("docket_test_super").await;
    sqlx::query(
        "WITH ids AS (SELECT array_agg(id ORDER BY slug) AS a, count(*) AS n FROM tenants)
         INSERT INTO usage_events (tenant_id, kind, quantity, actor, idempotency_key, occurred_at)
         SELECT ids.a[1 + g % ids.n], (ARRAY['embedding_tokens', 'query_tokens_in', 'query_tokens_out', 'pages_parsed'])[1 + g % 4],
                1 + (g * 7919) % 20000, 'bench', 'bench:' || g,
                '2026-06-01T00:00:00Z'::timestamptz + ((g * 104729) % 2592000) * interval '1 second'
         FROM ids, generate_series(1, $1) g",
    )
    .bind(events)
    .execute(&su)
    .await?;
    su.close().await;
    Ok(())
}

/// A worker process whose resident memory has settled (model sessions loaded).
async fn settled_worker(app: &TestApp, name: &str) -> (docket_tests::WorkerProcess, u64) {
    let worker = app.spawn_worker_process(name, false);
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
    (worker, before)
}

async fn invoices(app: &TestApp, pushed: bool) -> anyhow::Result<i64> {
    let sql = match pushed {
        true => "SELECT count(*) FROM invoices WHERE period = '2026-06-01' AND stripe_status = 'pushed'",
        false => "SELECT count(*) FROM invoices WHERE period = '2026-06-01'",
    };
    Ok(sqlx::query_scalar(sql).fetch_one(app.control.pool()).await?)
}

/// Runs the benchmark.
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let (n, events, stripe_n) = (
        arg(args, "--tenants", 10_000),
        arg(args, "--events", 1_000_000),
        arg(args, "--stripe-tenants", 500),
    );
    println!("billing benchmark: {n} tenants, {events} ledger rows in 2026-06, 1 docket-worker, Stripe off");
    let app = spawn_app().await;
    let t = Instant::now();
    seed_tenants(&app, n).await?;
    seed_ledger(&app, events).await?;
    println!("seeded in {:.1} s", t.elapsed().as_secs_f64());
    let (worker, before) = settled_worker(&app, "bench-billing-worker").await;

    let started = Instant::now();
    let mut cli = tokio::process::Command::new(sibling_binary("docketctl"))
        .env_clear()
        .envs(&app.env)
        .env("DOCKET_LOG", "warn")
        .args(["billing", "run", "--period", "2026-06"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("start docketctl")?;
    let done = Arc::new(AtomicBool::new(false));
    let cli_pid = cli.id().context("pid")?;
    let (peaks, sampler) = sample(vec![cli_pid, worker.id()], done.clone());
    let status = cli.wait().await?;
    let secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.await?;
    anyhow::ensure!(status.success(), "docketctl billing run failed: {status}");
    let made = invoices(&app, false).await?;
    anyhow::ensure!(made == n, "{made} invoices for {n} tenants");
    let total: i64 = sqlx::query_scalar("SELECT sum(total_cents)::bigint FROM invoices")
        .fetch_one(app.control.pool())
        .await?;
    let mib = |k: u64| k as f64 / 1024.0;
    let (cli_peak, worker_peak) = (peaks[0].load(Ordering::Relaxed), peaks[1].load(Ordering::Relaxed));
    println!(
        "run:                     {made} invoices in {secs:.1} s = {:.0} invoices/s (goal: < 60 s)",
        made as f64 / secs
    );
    println!("billed:                  {:.2} USD in all", total as f64 / 100.0);
    println!(
        "docketctl peak RSS:      {:8.1} MiB (goal: < 300 MiB)",
        mib(cli_peak)
    );
    println!(
        "worker RSS:              {:8.1} MiB before, {:.1} MiB peak: +{:.1} MiB for billing (the model sessions are the rest)",
        mib(before),
        mib(worker_peak),
        mib(worker_peak.saturating_sub(before))
    );
    drop(worker);
    drop(app);

    println!(
        "\nwith Stripe on: {stripe_n} tenants invoiced and pushed to localstripe (one emulator, 1 worker)"
    );
    let stripe = LocalStripe::start().await;
    let app = spawn_app_with(&[
        ("DOCKET_STRIPE_SECRET_KEY", KEY),
        ("DOCKET_STRIPE_API_BASE", &stripe.base()),
    ])
    .await;
    seed_tenants(&app, stripe_n).await?;
    let (worker, _) = settled_worker(&app, "bench-stripe-worker").await;
    let started = Instant::now();
    let status = tokio::process::Command::new(sibling_binary("docketctl"))
        .env_clear()
        .envs(&app.env)
        .env("DOCKET_LOG", "warn")
        .args(["billing", "run", "--period", "2026-06"])
        .stdout(std::process::Stdio::null())
        .status()
        .await?;
    anyhow::ensure!(status.success(), "docketctl billing run failed: {status}");
    loop {
        let pushed = invoices(&app, true).await?;
        if pushed == stripe_n {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "only {pushed} of {stripe_n} pushed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "pushed:                  {stripe_n} invoices in {secs:.1} s = {:.1} invoices/s to localstripe (customer, items, invoice, finalize, pay each)",
        stripe_n as f64 / secs
    );
    drop(worker);
    Ok(())
}
