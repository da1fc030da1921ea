//! Redis loses everything (a restart without persistence, here a flush of this test's keys)
//! in the middle of an import, interactive uploads and questions: the reaper finds what
//! PostgreSQL says is still owed and pushes it again; every document reaches `ready`
//! exactly once and every question ends.

use docket_platform::jobs::reaper::ReaperSettings;
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

fn quick() -> ReaperSettings {
    ReaperSettings {
        interval: Duration::from_millis(500),
        queued_after: Duration::from_secs(3),
        running_after: Duration::from_secs(30),
        question_after: Duration::from_secs(5),
        max_repushes: 3,
    }
}

#[tokio::test]
async fn work_lost_from_redis_is_pushed_again_and_done_exactly_once() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("acme", "business", "shared").await;
    let owner = app.owner_token(&t).await;
    let _worker = app.spawn_worker().await;
    let _feeder = app.spawn_feeder();
    let _reaper = app.spawn_reaper(quick());
    app.upload_ready(
        &owner,
        "supply.txt",
        b"SUPPLY AGREEMENT. Section 9. Governing Law. This agreement is governed by the laws of Ohio."
            .to_vec(),
    )
    .await;

    let import = app.import_synthetic(&owner, "batch", 17, 12).await;
    let mut uploads = vec![];
    for n in 0..4 {
        let body = format!("Section {n}. Term. This lease number {n} runs for {n} years from signing.");
        let r = app
            .upload_raw(&owner, &format!("lease-{n}.txt"), body.into_bytes(), None)
            .await;
        assert_eq!(r.status(), 202);
        uploads.push(
            r.json::<Value>().await.expect("json")["document_id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let mut questions = vec![];
    for q in [
        "Which law governs?",
        "How long does the lease run?",
        "Who supplies?",
    ] {
        let r = app.ask_raw(&owner, q, serde_json::json!({}), 0).await;
        assert!(r.status() == 202 || r.status() == 200, "{}", r.status());
        questions.push(
            r.json::<Value>().await.expect("json")["query_id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    // Everything is queued or under way; the queue forgets all of it.
    assert!(app.flush_redis().await > 0, "there were queue entries to lose");

    let s = app.wait_import(&owner, &import, Duration::from_secs(240)).await;
    assert_eq!(s["status"], "done", "{s}");
    assert_eq!(s["ready"], 12, "{s}");
    for id in &uploads {
        let d = app.wait_processed(&owner, id, Duration::from_secs(120)).await;
        assert_eq!(d["status"], "ready", "{d}");
    }
    let started = Instant::now();
    for id in &questions {
        loop {
            let q: Value = app
                .call(Method::GET, &format!("/v1/queries/{id}"), Some(&owner), None)
                .await
                .json()
                .await
                .expect("json");
            let status = q["status"].as_str().unwrap_or_default().to_owned();
            if ["answered", "no_answer"].contains(&status.as_str()) {
                break;
            }
            if status == "failed" {
                assert!(q["error"]["code"].is_string(), "a clear failure: {q}");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "question {id} still {status}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Exactly once: one row per document, every stage succeeded, and each stage's work was
    // done by one attempt (a re-push is not a second run).
    let (docs, ready): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'ready') FROM documents WHERE tenant_id = $1",
    )
    .bind(t.id)
    .fetch_one(app.control.pool())
    .await
    .expect("count");
    assert_eq!((docs, ready), (17, 17));
    let jobs: Vec<(String, String, i32)> =
        sqlx::query_as("SELECT kind, status, attempts FROM jobs WHERE tenant_id = $1 ORDER BY kind")
            .bind(t.id)
            .fetch_all(app.control.pool())
            .await
            .expect("jobs");
    assert_eq!(jobs.len(), 17 * 4, "{jobs:?}");
    for (kind, status, attempts) in &jobs {
        assert_eq!(status, "succeeded", "{kind}");
        assert_eq!(*attempts, 1, "{kind} ran more than once: {jobs:?}");
    }
    let chunks_agree: bool = sqlx::query_scalar(
        "SELECT bool_and(d.chunks = (SELECT count(*) FROM chunks c WHERE c.document_id = d.id))
         FROM documents d WHERE d.tenant_id = $1",
    )
    .bind(t.id)
    .fetch_one(app.control.pool())
    .await
    .expect("chunks");
    assert!(chunks_agree, "no document was chunked twice over");
}

#[tokio::test]
async fn a_job_lost_more_often_than_the_cap_fails_with_a_sentence() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let owner = app.owner_token(&t).await;
    // No worker: the queue entry is lost again after every re-push.
    let r = app
        .upload_raw(&owner, "a.txt", b"Section 1. Terms.".to_vec(), None)
        .await;
    let id = r.json::<Value>().await.expect("json")["document_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let settings = ReaperSettings {
        queued_after: Duration::from_secs(1),
        max_repushes: 2,
        ..quick()
    };
    let _reaper = app.spawn_reaper(settings);
    let started = Instant::now();
    let d = loop {
        app.flush_redis().await;
        let d = app.document(&owner, &id).await;
        if d["status"] == "failed" {
            break d;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never given up: {d}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(d["error"]["code"], "job_lost", "{d}");
    assert!(
        d["error"]["message"].as_str().expect("m").contains("retry"),
        "{d}"
    );
    let repushes: i32 = sqlx::query_scalar("SELECT repushes FROM jobs WHERE target_id = $1::uuid")
        .bind(&id)
        .fetch_one(app.control.pool())
        .await
        .expect("row");
    assert_eq!(repushes, 2);
    // And the document can be retried once the queue keeps its entries again.
    let path = format!("/v1/documents/{id}/retry");
    assert_eq!(
        app.call(Method::POST, &path, Some(&owner), None).await.status(),
        202
    );
}
