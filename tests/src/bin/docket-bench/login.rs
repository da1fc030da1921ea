//! `scripts/bench login-flood`: what 500 concurrent bad logins against one tenant do to
//! that tenant's users. The users' requests (an authenticated listing, one after another)
//! are timed idle, then while 500 clients keep sending wrong passwords for the tenant's
//! accounts: once with the production pre-authentication limits, once with them lifted
//! (every attempt then reaches argon2, which runs with no database connection held).
//! Each attacker retries once a second (500 attempts/s in all, the rate of a modest
//! credential-stuffing run); a closed loop with no pause would measure the benchmark's own
//! client saturating the 2 cores it shares with the server. Goal: the users' p99 under the
//! flood within 2x of idle (with the limits).

use crate::percentile;
use docket_tests::{TestApp, spawn_app_with};
use reqwest::Method;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const ATTACKERS: usize = 500;
const SAMPLES: usize = 300;

/// The users' latencies (ms, sorted) and how many of their requests failed.
async fn user_latencies(app: &TestApp, token: &str) -> anyhow::Result<(Vec<f64>, usize)> {
    let mut out = Vec::with_capacity(SAMPLES);
    let mut failed = 0;
    for _ in 0..SAMPLES {
        let started = Instant::now();
        let sent = app
            .client
            .get(format!("{}/v1/documents", app.address))
            .bearer_auth(token)
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 200 => {
                r.bytes().await?;
            }
            _ => failed += 1,
        }
        out.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    out.sort_by(f64::total_cmp);
    Ok((out, failed))
}

/// One run: idle and flooded p50/p99 of the users' requests, and what the flood got.
async fn run_one(limits: &[(&str, &str)], label: &str) -> anyhow::Result<f64> {
    let app = Arc::new(spawn_app_with(limits).await);
    let t = app.create_tenant_on("flooded", "business", "shared").await;
    let token = app.owner_token(&t).await;
    // The users' own read limit is not what is measured.
    let unlimited = docketctl::RateOverride {
        class: "read".into(),
        per_minute: 1_000_000,
        burst: 1_000_000,
        expires_in: Duration::from_secs(3600),
        reason: "login-flood benchmark".into(),
    };
    docketctl::tenant_rate_override(&app.control, &app.auditor(), &t.slug, &unlimited).await?;
    for _ in 0..50 {
        app.call(Method::GET, "/v1/documents", Some(&token), None).await;
    }
    let (idle, _) = user_latencies(&app, &token).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let (refused, attempts) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut attackers = vec![];
    for n in 0..ATTACKERS {
        let (app, stop, refused, attempts, slug) = (
            app.clone(),
            stop.clone(),
            refused.clone(),
            attempts.clone(),
            t.slug.clone(),
        );
        attackers.push(tokio::spawn(async move {
            // Spread over the first second, then once a second each.
            tokio::time::sleep(Duration::from_millis((n as u64 * 1000) / ATTACKERS as u64)).await;
            while !stop.load(Ordering::Relaxed) {
                let next = Instant::now() + Duration::from_secs(1);
                let r = app
                    .login(
                        &slug,
                        &format!("victim{}@flooded.example.com", n % 50),
                        "guessing a password",
                    )
                    .await;
                attempts.fetch_add(1, Ordering::Relaxed);
                if r.status() == 429 {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep_until(next.into()).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (flooded, failed) = user_latencies(&app, &token).await?;
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        let _ = a.await;
    }
    let (i99, f99) = (percentile(&idle, 99.0), percentile(&flooded, 99.0));
    println!(
        "{label}: users' p50 {:.1} -> {:.1} ms, p99 {i99:.1} -> {f99:.1} ms (ratio {:.2}); \
         {failed} of {SAMPLES} users' requests failed; {} bad logins sent, {} refused with 429",
        percentile(&idle, 50.0),
        percentile(&flooded, 50.0),
        f99 / i99,
        attempts.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    let chain: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = 'auth.login'",
    )
    .bind(t.id)
    .fetch_one(app.control.pool())
    .await?;
    println!("{label}: {chain} auth.login events in the tenant's chain");
    Ok(f99 / i99)
}

/// Runs the benchmark.
pub async fn run() -> anyhow::Result<()> {
    let limited = run_one(
        &[
            ("DOCKET_PREAUTH_PER_MINUTE", "60"),
            ("DOCKET_PREAUTH_BURST", "30"),
        ],
        "production limits",
    )
    .await?;
    run_one(&[], "limits lifted").await?;
    println!("goal: p99 under the flood within 2x of idle with the limits: {limited:.2}x");
    Ok(())
}
