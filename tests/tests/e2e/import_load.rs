//! Bulk imports under load: a single interactive upload stays fast while another tenant
//! imports 2,000 documents (fairness), and killing the worker and the feeder mid-import
//! loses nothing and does nothing twice (restart).

use docket_rag::vectors::{EdgeStore, Placement, TenantScope, VectorIndex};
use docket_tests::importing::assert_totals_add_up;
use docket_tests::{TestApp, spawn_app, synthetic};
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Uploads one document and returns how long it took to become ready (polled every 20 ms).
async fn time_to_ready(app: &TestApp, token: &str, name: &str, text: String) -> Duration {
    let started = Instant::now();
    let v: Value = app
        .upload_raw(token, name, text.into_bytes(), None)
        .await
        .json()
        .await
        .expect("json");
    let id = v["document_id"].as_str().expect("id").to_owned();
    loop {
        let d = app.document(token, &id).await;
        assert_ne!(d["status"], "failed", "{d}");
        if d["status"] == "ready" {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{name} never became ready: {d}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn in_pipeline(app: &TestApp, tenant: docket_platform::ids::TenantId) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM documents WHERE tenant_id = $1 AND feed_state IN ('admitted', 'pushed')
         AND status IN ('queued', 'processing')",
    )
    .bind(tenant)
    .fetch_one(app.control.pool())
    .await
    .expect("count")
}

#[tokio::test]
async fn a_single_upload_is_served_beside_a_2000_document_import() {
    let app = spawn_app().await;
    let a = app.create_tenant_on("importer", "business", "shared").await;
    let a_token = app.owner_token(&a).await;
    let b = app.create_tenant_on("single", "team", "shared").await;
    let b_token = app.owner_token(&b).await;
    let _worker = app.spawn_worker().await;
    let _feeder = app.spawn_feeder();

    // Idle: the same kind of document, twice (the first also warms the model).
    let _ = time_to_ready(&app, &b_token, "warm.txt", synthetic::contract(90, 0)).await;
    let idle = time_to_ready(&app, &b_token, "idle.txt", synthetic::contract(90, 1)).await;

    let id = app.import_synthetic(&a_token, "a", 5, 2000).await;
    // Wait until A's import runs at full speed: its share of the pipeline is full and
    // documents are coming out of it.
    let started = Instant::now();
    loop {
        let s = app.import_status(&a_token, &id).await;
        if in_pipeline(&app, a.id).await >= 6 && s["ready"].as_i64().unwrap_or(0) >= 10 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the import never got going: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let loaded = time_to_ready(&app, &b_token, "busy.txt", synthetic::contract(90, 2)).await;
    let s = app.import_status(&a_token, &id).await;
    println!(
        "fairness: B ready in {:?} idle, {:?} beside A's import ({:.2}x); A then: {s}",
        idle,
        loaded,
        loaded.as_secs_f64() / idle.as_secs_f64()
    );
    assert!(
        s["queued"].as_i64().unwrap_or(0) > 1000,
        "A still had most of its import ahead of it: {s}"
    );
    assert!(
        loaded.as_secs_f64() <= 3.0 * idle.as_secs_f64(),
        "B's upload took {loaded:?} beside the import, more than 3x the idle {idle:?}"
    );
    // The queue never held the import: at most the plan's share of A is in the pipeline.
    assert!(
        in_pipeline(&app, a.id).await <= 8,
        "A stays within import_concurrency"
    );

    // Cancel the rest; what was running finishes, and the totals still add up.
    let r = app
        .call(Method::DELETE, &format!("/v1/imports/{id}"), Some(&a_token), None)
        .await;
    assert_eq!(r.status(), 200);
    let cancelled_waiting = r.json::<Value>().await.expect("json")["cancelled"]
        .as_i64()
        .expect("n");
    assert!(
        cancelled_waiting > 0,
        "documents waiting for the feeder were cancelled"
    );
    let started = Instant::now();
    while in_pipeline(&app, a.id).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "in-flight documents never finished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let s = app.import_status(&a_token, &id).await;
    assert_eq!(s["status"], "cancelled");
    // Cancelled: the waiting documents, and the entries the unpack had not reached.
    let cancelled = s["cancelled"].as_i64().expect("cancelled");
    assert!(cancelled >= cancelled_waiting && cancelled > 1000, "{s}");
    assert_eq!(
        s["ready"].as_i64().unwrap_or(0) + s["failed"].as_i64().unwrap_or(0) + cancelled,
        2000,
        "{s}"
    );
    assert_totals_add_up(&s);
}

#[tokio::test]
async fn killing_the_worker_and_the_feeder_mid_import_loses_and_repeats_nothing() {
    const N: i64 = 120;
    let app = spawn_app().await;
    let t = app.create_tenant_on("restart", "business", "shared").await;
    let token = app.owner_token(&t).await;
    let mut worker = app.spawn_worker_process("w-first", true);
    let mut feeder = app.spawn_scheduler_process("feeder-first");

    let id = app.import_synthetic(&token, "r", 21, N as u64).await;
    let started = Instant::now();
    loop {
        let s = app.import_status(&token, &id).await;
        if s["ready"].as_i64().unwrap_or(0) >= 15 && s["processing"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "no progress: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.kill();
    feeder.kill();
    let _worker = app.spawn_worker_process("w-second", true);
    let _feeder = app.spawn_scheduler_process("feeder-second");

    let s = app.wait_import(&token, &id, Duration::from_secs(900)).await;
    assert_eq!(s["status"], "done", "{s}");
    assert_eq!(s["ready"], N, "{s}");
    assert_totals_add_up(&s);
    let count = |sql: &'static str| {
        let pool = app.control.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(t.id)
                .fetch_one(&pool)
                .await
                .expect("count")
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM documents WHERE tenant_id = $1").await,
        N
    );
    for kind in ["parse", "chunk", "embed", "index"] {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND kind = $2 AND status = 'succeeded'",
        )
        .bind(t.id)
        .bind(kind)
        .fetch_one(app.control.pool())
        .await
        .expect("jobs");
        assert_eq!(n, N, "one succeeded {kind} job per document");
    }
    assert_eq!(
        count("SELECT count(*) FROM usage_events WHERE tenant_id = $1 AND kind = 'pages_parsed'").await,
        N,
        "pages metered once per document"
    );
    let chunks = count("SELECT COALESCE(sum(chunks), 0)::bigint FROM documents WHERE tenant_id = $1").await;
    assert_eq!(
        count("SELECT count(*) FROM chunks WHERE tenant_id = $1").await,
        chunks
    );

    // The index has exactly one point per chunk.
    drop(_worker);
    let store = EdgeStore::open(&app.config.vector_dir, "test")
        .await
        .expect("open index");
    let scope = TenantScope::new(t.id.as_uuid(), Placement::Shared);
    assert_eq!(store.count(scope, None).await.expect("count") as i64, chunks);
}
