//! The worker process lifecycle.

use docket_tests::spawn_app;

#[tokio::test]
async fn a_second_worker_on_the_same_vector_directory_fails_clearly() {
    let app = spawn_app().await;
    let _first = app.spawn_worker().await;
    let mut config = app.config.clone();
    config.worker_name = "second-worker".into();
    let err = docket_worker::Worker::start(config)
        .await
        .expect_err("the directory is owned");
    let msg = err.to_string();
    assert!(msg.contains("already owned by another worker process"), "{msg}");
    assert!(msg.contains(&app.config.worker_name), "names the holder: {msg}");
}

#[tokio::test]
async fn the_vector_directory_is_released_when_the_worker_stops() {
    let app = spawn_app().await;
    let first = docket_worker::Worker::start(app.config.clone())
        .await
        .expect("first");
    drop(first);
    docket_worker::Worker::start(app.config.clone())
        .await
        .expect("a new worker can take over");
}

#[tokio::test]
async fn shutdown_removes_the_heartbeat() {
    let app = spawn_app().await;
    let worker = docket_worker::Worker::start(app.config.clone())
        .await
        .expect("start");
    let stop = tokio_util::sync::CancellationToken::new();
    let s = stop.clone();
    let handle = tokio::spawn(async move { worker.run(async move { s.cancelled().await }).await });
    let mut seen = 0;
    for _ in 0..50 {
        seen = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM service_heartbeats WHERE name = $1")
            .bind(&app.config.worker_name)
            .fetch_one(app.db.platform_pool())
            .await
            .expect("count");
        if seen == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 1, "heartbeat written");
    stop.cancel();
    handle.await.expect("join").expect("clean stop");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM service_heartbeats WHERE name = $1")
        .bind(&app.config.worker_name)
        .fetch_one(app.db.platform_pool())
        .await
        .expect("count");
    assert_eq!(left, 0);
}

/// Redis unreachable for far longer than the old restart budget (50 immediate restarts,
/// spent in well under a second): the worker backs off instead of giving up, `/readyz`
/// names the job queues meanwhile, and once Redis is back jobs flow again without
/// restarting anything.
#[tokio::test]
async fn a_worker_cut_off_from_redis_consumes_again_when_it_returns() {
    use docket_tests::proxy::Relay;
    use std::time::Duration;
    let app = spawn_app().await;
    let relay = Relay::start("127.0.0.1:6379".parse().expect("addr")).await;
    let mut env = app.env.clone();
    env.insert("DOCKET_REDIS_URL".into(), format!("redis://{}/0", relay.addr));
    let config = docket_platform::config::Config::load(&env).expect("config");
    let worker = docket_worker::Worker::start(config).await.expect("worker starts");
    let stop = app.shutdown.clone();
    let running = tokio::spawn(async move { worker.run(async move { stop.cancelled().await }).await });

    let t = app.create_tenant("acme").await;
    let token = app.owner_token(&t).await;
    app.upload_ready(&token, "before.txt", b"Section 1. Fees are due monthly.".to_vec())
        .await;

    relay.cut();
    let started = std::time::Instant::now();
    let mut named = false;
    while started.elapsed() < Duration::from_secs(8) {
        let resp = app.get("/readyz").await;
        let body: serde_json::Value = resp.json().await.expect("json");
        if body["failing"]
            .as_array()
            .expect("failing")
            .contains(&"job_queues".into())
        {
            assert_eq!(body["checks"]["job_queues"], "error", "{body}");
            named = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        named,
        "/readyz never named the job queues while Redis was cut off"
    );
    assert!(
        !running.is_finished(),
        "the worker must not give up while the process lives"
    );

    // Queued while the worker cannot see the queue (the API's own Redis is fine).
    let resp = app
        .upload_raw(
            &token,
            "during.txt",
            b"Section 2. Either party may terminate.".to_vec(),
            None,
        )
        .await;
    assert_eq!(resp.status(), 202);
    let id = resp.json::<serde_json::Value>().await.expect("json")["document_id"]
        .as_str()
        .expect("id")
        .to_owned();
    relay.restore();
    let d = app.wait_processed(&token, &id, Duration::from_secs(90)).await;
    assert_eq!(d["status"], "ready", "{d}");
    let mut ready = false;
    for _ in 0..60 {
        if app.get("/readyz").await.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(ready, "/readyz stayed 503 after Redis returned");
}
