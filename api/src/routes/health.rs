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
use serde_json::{Map, Value, json};
use std::time::Duration;

/// `/healthz`, `/readyz`, `/metrics`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is alive (no dependency is checked).
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

async fn timed<F, E>(f: F) -> String
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    match tokio::time::timeout(CHECK_TIMEOUT, f).await {
        Ok(Ok(())) => "ok".into(),
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => format!("error: no answer within {}s", CHECK_TIMEOUT.as_secs()),
    }
}

/// PostgreSQL, Redis, object store and vector store reachable: 200, else 503 naming the
/// failing parts. The vector store is owned by a worker process (the API never opens it),
/// so its health comes from that worker's fresh heartbeat.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
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
    let (pg, redis, objects, vectors) = tokio::join!(
        timed(state.db.ping()),
        timed(state.redis.ping()),
        timed(state.blobs.health()),
        timed(vector),
    );
    let checks = [
        ("postgres", pg),
        ("redis", redis),
        ("object_store", objects),
        ("vector_store", vectors),
    ];
    let failing: Vec<&str> = checks
        .iter()
        .filter(|(_, v)| v != "ok")
        .map(|(k, _)| *k)
        .collect();
    let map: Map<String, Value> = checks
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
        .collect();
    let (status, word) = if failing.is_empty() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    };
    (
        status,
        Json(json!({"status": word, "failing": failing, "checks": map})),
    )
}

/// Prometheus text format. Counters that only workers see (search hits dropped for naming
/// another tenant) come from their heartbeats, summed over live workers; stalled jobs and
/// the import backlog from the job records.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
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
    match progress::feed_totals(&state.control).await {
        Ok((waiting, in_flight)) => {
            metrics::gauge!("docket_import_documents_waiting").set(waiting as f64);
            metrics::gauge!("docket_import_documents_in_flight").set(in_flight as f64);
        }
        Err(e) => tracing::warn!(error = %e, "could not read the import backlog for /metrics"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        docket_platform::metrics::prometheus().render(),
    )
}
