//! `scripts/bench governance`: what the governance chain adds to a request. One process
//! serves two routes on the same state: a bare handler, and the same handler behind the
//! full chain a question passes (authentication with the tenant and user re-read,
//! capability, plan entitlements, incident switches, input safety, the Redis rate limit and
//! the quota). Requests alternate between them over one keep-alive connection; the figure
//! is the difference of their latency percentiles. Goal: under 2 ms added at p50.

use crate::percentile;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use docket_api::auth::{Gate, TenantAuth};
use docket_api::error::ApiError;
use docket_api::state::AppState;
use docket_platform::authz::Capability;
use docket_tests::spawn_app;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const QUESTION: &str = "Which state's law governs this agreement?";

async fn bare() -> Json<Value> {
    Json(json!({"ok": true, "question": QUESTION}))
}

async fn governed(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<Value>, ApiError> {
    auth.govern(
        &state,
        Gate::new(Capability::QueriesAsk).question(QUESTION).metered(),
    )
    .await?;
    Ok(bare().await)
}

/// Runs the benchmark.
pub async fn run() -> anyhow::Result<()> {
    let app = spawn_app().await;
    let t = app.create_tenant_on("bench", "enterprise", "shared").await;
    let token = app.owner_token(&t).await;
    let unlimited = docketctl::RateOverride {
        class: "query".into(),
        per_minute: 1_000_000,
        burst: 1_000_000,
        expires_in: Duration::from_secs(3600),
        reason: "governance benchmark".into(),
    };
    docketctl::tenant_rate_override(&app.control, &app.auditor(), &t.slug, &unlimited).await?;

    let state = AppState::from_config(&app.config)?;
    tokio::spawn(docket_api::switchboard::run(
        state.switches.clone(),
        state.db.clone(),
    ));
    let router = Router::new()
        .route("/bare", post(bare))
        .route("/governed", post(governed))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let app = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let _ = axum::serve(listener, app).await;
    });
    let client = reqwest::Client::new();
    let send = |path: &'static str| {
        let req = client
            .post(format!("http://{addr}{path}"))
            .bearer_auth(&token)
            .json(&json!({"question": QUESTION}));
        async move {
            let started = Instant::now();
            let r = req.send().await?;
            anyhow::ensure!(r.status() == 200, "{path}: {}", r.status());
            r.bytes().await?;
            Ok::<f64, anyhow::Error>(started.elapsed().as_secs_f64() * 1000.0)
        }
    };
    for _ in 0..200 {
        send("/bare").await?;
        send("/governed").await?;
    }
    let n = 3000;
    let (mut b, mut g) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        b.push(send("/bare").await?);
        g.push(send("/governed").await?);
    }
    b.sort_by(f64::total_cmp);
    g.sort_by(f64::total_cmp);
    println!("governance benchmark: {n} requests each, alternating, one keep-alive connection");
    for (name, p) in [("p50", 50.0), ("p99", 99.0)] {
        let (bp, gp) = (percentile(&b, p), percentile(&g, p));
        println!(
            "{name}: bare {bp:6.3} ms, governed {gp:6.3} ms, added {:6.3} ms (ratio {:.2})",
            gp - bp,
            gp / bp
        );
    }
    println!("goal: under 2 ms added at p50");
    app.shutdown.cancel();
    Ok(())
}
