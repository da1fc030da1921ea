//! Liveness, readiness, request ids and metrics.

use docket_tests::{spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn healthz_is_ok_without_dependencies() {
    let app = spawn_app_with(&[("DOCKET_REDIS_URL", "redis://127.0.0.1:1/0")]).await;
    let resp = app.get("/healthz").await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn readyz_names_redis_when_it_is_unreachable() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let app = spawn_app_with(&[("DOCKET_REDIS_URL", "redis://127.0.0.1:1/0")]).await;
    let _worker = app.spawn_worker().await;
    wait_for_heartbeat(&app).await;
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["status"], "not_ready");
    // The worker cannot reach its queues either, and says so in its heartbeat.
    assert_eq!(
        body["failing"],
        serde_json::json!(["redis", "job_queues"]),
        "{body}"
    );
    // Part names and a verdict only: the cause (addresses, client errors) is in the log.
    assert_eq!(body["checks"]["redis"], "error", "{body}");
    assert_eq!(body["checks"]["postgres"], "ok");
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
}

#[tokio::test]
async fn readyz_probes_at_most_once_per_second_whatever_the_request_rate() {
    let app = spawn_app().await;
    let probes = || async {
        let text = app.admin_get("/metrics").await.text().await.expect("text");
        text.lines()
            .find(|l| l.starts_with("docket_readiness_probes_total"))
            .and_then(|l| l.split_whitespace().last())
            .map(|n| n.parse::<f64>().expect("number"))
            .unwrap_or(0.0)
    };
    let before = probes().await;
    let started = std::time::Instant::now();
    let calls = (0..200).map(|_| app.get("/readyz"));
    let answers = futures::future::join_all(calls).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(answers.iter().all(|r| r.status() == 503), "no worker: not ready");
    let made = probes().await - before;
    // One probe per started second (and the first), however many callers.
    assert!(
        made <= elapsed.ceil() + 1.0,
        "{made} probes for 200 calls in {elapsed:.2}s"
    );
    assert!(made >= 1.0);
}

#[tokio::test]
async fn readyz_is_200_when_everything_answers() {
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    wait_for_heartbeat(&app).await;
    let resp = app.get("/readyz").await;
    let status = resp.status();
    let body: Value = resp.json().await.expect("json");
    assert_eq!(status, 200, "{body}");
    for part in ["postgres", "redis", "object_store", "vector_store"] {
        assert_eq!(body["checks"][part], "ok", "{part}: {body}");
    }
}

#[tokio::test]
async fn readyz_names_the_vector_store_when_no_worker_owns_it() {
    let app = spawn_app().await;
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["failing"], serde_json::json!(["vector_store"]), "{body}");
}

#[tokio::test]
async fn readyz_names_postgres_when_it_is_unreachable() {
    let app = spawn_app_with(&[(
        "DOCKET_DATABASE_URL",
        "postgres://docket_app:docket_app@127.0.0.1:1/docket",
    )])
    .await;
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.expect("json");
    let failing = body["failing"].as_array().expect("array");
    assert!(failing.contains(&Value::from("postgres")), "{body}");
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = spawn_app().await;
    let resp = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", "client-chosen-42")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.headers()["x-request-id"], "client-chosen-42");

    let resp = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .expect("send");
    let generated = resp.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert_ne!(generated, "bad id with spaces");
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");

    let resp = app.get("/no-such-route").await;
    assert_eq!(resp.status(), 404);
    assert!(resp.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn metrics_are_exposed_in_prometheus_format() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    let resp = app.admin_get("/metrics").await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    let text = resp.text().await.expect("text");
    assert!(text.contains("docket_http_request_duration_seconds"), "{text}");
    assert!(text.contains("route=\"/healthz\""), "{text}");
}

async fn wait_for_heartbeat(app: &docket_tests::TestApp) {
    for _ in 0..50 {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM service_heartbeats")
            .fetch_one(app.db.platform_pool())
            .await
            .expect("count");
        if n > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the worker never sent a heartbeat");
}

/// Connections the server dropped (a restart, an idle timeout) are replaced, not handed to
/// a request.
#[tokio::test]
async fn connections_the_server_dropped_are_replaced_not_handed_out() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let token = app.owner_token(&t).await;
    let list = || app.call(Method::GET, "/v1/queries", Some(&token), None);
    assert_eq!(list().await.status(), 200);

    // What a server restart or an idle timeout does to the pools' connections.
    let su = app.pool_as("docket_test_super").await;
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid()) k",
    )
    .fetch_one(&su)
    .await
    .expect("terminate");
    assert!(killed >= 1, "the app held connections");
    // At once, not after some idle time: every checkout is checked.

    for _ in 0..5 {
        let r = list().await;
        assert_eq!(r.status(), 200, "{:?}", r.text().await);
    }
}

/// `/metrics` runs cross-tenant queries with the control role: it is not on the public
/// listener, and however often it is scraped its gauges are computed at most every 5 s.
#[tokio::test]
async fn metrics_live_on_the_admin_listener_and_scrapes_share_one_snapshot() {
    let app = spawn_app().await;
    let public = app.get("/metrics").await;
    assert_eq!(public.status(), 404, "not on the public listener");
    let refreshes = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("docket_metrics_gauge_refreshes_total"))
            .and_then(|l| l.split_whitespace().last())
            .map(|n| n.parse::<f64>().expect("number"))
            .unwrap_or(0.0)
    };
    let scrapes = (0..50).map(|_| app.admin_get("/metrics"));
    let mut last = 0.0;
    for r in futures::future::join_all(scrapes).await {
        assert_eq!(r.status(), 200);
        last = refreshes(&r.text().await.expect("text"));
    }
    assert!(
        (1.0..=2.0).contains(&last),
        "{last} gauge refreshes for 50 scrapes"
    );
}
