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
