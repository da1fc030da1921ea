//! Liveness, readiness and metrics.

use crate::state::AppState;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use docket_platform::heartbeat;
use docket_platform::imports::progress;
use serde::Serialize;
use std::time::{Duration, Instant};
use utoipa_axum::{router::OpenApiRouter, routes};

/// `/healthz`, `/readyz` (public: load balancers and orchestrators call them).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// `/metrics`, served only on the admin listener (`DOCKET_ADMIN_BIND`, loopback by
/// default): its figures come from cross-tenant queries with the control role.
pub fn admin_router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// How old the cross-tenant gauges may be when scraped: however often `/metrics` is
/// scraped, their queries run at most once per this period.
const GAUGES_EVERY: Duration = Duration::from_secs(5);

async fn refresh_gauges(state: &AppState) {
    match heartbeat::component_sum(&state.db, "isolation_violations", Duration::from_secs(60)).await {
        Ok(n) => metrics::gauge!("docket_vector_isolation_violations").set(n as f64),
        Err(e) => tracing::warn!(error = %e, "could not read worker counters for /metrics"),
    }
    // Stalled jobs (running far past their stage's norm) and the feeder's backlog: from the
    // job records, so every API process reports the same figures.
    match progress::stalled_by_kind(&state.control).await {
        Ok(kinds) => {
            for (kind, n) in kinds {
                metrics::gauge!("docket_jobs_stalled", "kind" => kind).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read stalled jobs for /metrics"),
    }
    match docket_platform::deletions::residue_found_total(&state.control).await {
        Ok(n) => metrics::gauge!("docket_deletions_residue_found").set(n as f64),
        Err(e) => tracing::warn!(error = %e, "could not read deletions with residue for /metrics"),
    }
    // Generative answers that fell back to extractive, by code (from the query records, so
    // it survives worker restarts and every API process reports the same figure).
    match docket_platform::queries::fallbacks_by_code(&state.control).await {
        Ok(codes) => {
            // Every known code, 0 included: a count that fell to 0 (a deleted tenant's
            // queries) must not keep showing its last value.
            for code in docket_platform::queries::FALLBACK_CODES {
                let n = codes.iter().find(|(c, _)| c == code).map_or(0, |(_, n)| *n);
                metrics::gauge!("docket_answer_fallbacks", "code" => *code).set(n as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read answer fallbacks for /metrics"),
    }
    match progress::feed_totals(&state.control).await {
        Ok((waiting, in_flight)) => {
            metrics::gauge!("docket_import_documents_waiting").set(waiting as f64);
            metrics::gauge!("docket_import_documents_in_flight").set(in_flight as f64);
        }
        Err(e) => tracing::warn!(error = %e, "could not read the import backlog for /metrics"),
    }
}

/// When the cross-tenant gauges were last computed (single-flight, like readiness).
#[derive(Debug, Default, Clone)]
pub struct GaugeSnapshot(std::sync::Arc<tokio::sync::Mutex<Option<Instant>>>);

/// The process is alive.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Liveness {
    /// Always `ok`.
    status: String,
}

/// Whether the service can take traffic, and which parts fail.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct ReadinessReport {
    /// `ready` or `not_ready`.
    status: String,
    /// The failing parts (empty when ready): names only, the causes are in the log.
    failing: Vec<String>,
    /// Each part's check.
    checks: ReadinessChecks,
}

/// Each part's check: `ok` or `error`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct ReadinessChecks {
    /// PostgreSQL: `ok` or `error`.
    postgres: String,
    /// Redis: `ok` or `error`.
    redis: String,
    /// The object store: `ok` or `error`.
    object_store: String,
    /// The vector store, from the workers' heartbeats: `ok` or `error`.
    vector_store: String,
    /// Whether the workers consume their job queues: `ok` or `error`.
    job_queues: String,
}

/// Check that the process is alive
///
/// The process is alive (no dependency is checked): always `{"status": "ok"}`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "Alive", body = Liveness))
)]
async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: "ok".into() })
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);
/// Readiness is probed at most once per this period, whatever the request rate: every
/// caller in between gets the cached verdict (the probe writes an object and queries
/// PostgreSQL, Redis and the heartbeats; anyone can call `/readyz`).
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// The last readiness verdict and when it was probed (single-flight: callers that find it
/// stale wait for the one probe in progress).
#[derive(Debug, Default, Clone)]
pub struct Readiness(std::sync::Arc<tokio::sync::Mutex<Option<(Instant, StatusCode, ReadinessReport)>>>);

/// Runs one check; the detail goes to the log, the answer says only `ok` or `error`.
async fn timed<F, E>(part: &str, f: F) -> bool
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    match tokio::time::timeout(CHECK_TIMEOUT, f).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(part, error = %e, "readiness check failed");
            false
        }
        Err(_) => {
            tracing::warn!(
                part,
                timeout_s = CHECK_TIMEOUT.as_secs(),
                "readiness check timed out"
            );
            false
        }
    }
}

/// Check that the service can take traffic
///
/// PostgreSQL, Redis, object store, vector store and the workers' job queues: 200, else
/// 503 naming the failing parts (names only; the causes are in the log). The vector store
/// is owned by a worker process (the API never opens it), so its health, like whether each
/// worker is consuming its queues, comes from the workers' fresh heartbeats. The body is
/// `{status, failing, checks}`: `status` is `ready` or `not_ready`, `failing` lists the
/// failing parts, `checks` maps `postgres`, `redis`, `object_store`, `vector_store` and
/// `job_queues` to `ok` or `error`. Probed at most once a second; callers in between get
/// the last verdict.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready: `status` is `ready`, `failing` is empty", body = ReadinessReport),
        (status = 503, description = "Not ready: `status` is `not_ready`, `failing` names the failing parts (not the error format)", body = ReadinessReport),
    )
)]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let mut cached = state.readiness.0.lock().await;
    if let Some((at, status, body)) = cached.as_ref()
        && at.elapsed() < PROBE_EVERY
    {
        return (*status, Json(body.clone()));
    }
    let (status, body) = probe(&state).await;
    metrics::counter!("docket_readiness_probes_total").increment(1);
    *cached = Some((Instant::now(), status, body.clone()));
    (status, Json(body))
}

async fn probe(state: &AppState) -> (StatusCode, ReadinessReport) {
    let max_age = state.config.heartbeat_interval * 3;
    let vector = async {
        match heartbeat::component_status(&state.db, "vector_store", max_age).await {
            Ok(Some(s)) if s == "ok" => Ok(()),
            Ok(Some(s)) => Err(s),
            Ok(None) => Err(format!(
                "no worker owning the vector store has reported in the last {}s",
                max_age.as_secs()
            )),
            Err(e) => Err(format!("cannot read worker heartbeats: {e}")),
        }
    };
    let consuming = async {
        match heartbeat::not_ok(&state.db, "job_queues", max_age).await {
            Ok(names) if names.is_empty() => Ok(()),
            Ok(names) => Err(format!(
                "workers not consuming their queues: {}",
                names.join(", ")
            )),
            Err(e) => Err(format!("cannot read worker heartbeats: {e}")),
        }
    };
    let (pg, redis, objects, vectors, queues) = tokio::join!(
        timed("postgres", state.db.ping()),
        timed("redis", state.redis.ping()),
        timed("object_store", state.blobs.health()),
        timed("vector_store", vector),
        timed("job_queues", consuming),
    );
    let checks = [
        ("postgres", pg),
        ("redis", redis),
        ("object_store", objects),
        ("vector_store", vectors),
        ("job_queues", queues),
    ];
    let failing: Vec<String> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(k, _)| (*k).to_owned())
        .collect();
    let word = |ok: bool| String::from(if ok { "ok" } else { "error" });
    let checks = ReadinessChecks {
        postgres: word(pg),
        redis: word(redis),
        object_store: word(objects),
        vector_store: word(vectors),
        job_queues: word(queues),
    };
    let (status, verdict) = if failing.is_empty() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    };
    let report = ReadinessReport {
        status: verdict.to_owned(),
        failing,
        checks,
    };
    (status, report)
}

/// Prometheus text format. Counters that only workers see (search hits dropped for naming
/// another tenant) come from their heartbeats, summed over live workers; stalled jobs and
/// the import backlog from the job records — refreshed at most every [`GAUGES_EVERY`].
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    {
        let mut last = state.gauges.0.lock().await;
        if last.is_none_or(|at| at.elapsed() >= GAUGES_EVERY) {
            refresh_gauges(&state).await;
            metrics::counter!("docket_metrics_gauge_refreshes_total").increment(1);
            *last = Some(Instant::now());
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        docket_platform::metrics::prometheus().render(),
    )
}
