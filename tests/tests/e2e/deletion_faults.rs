//! Document deletion under faults and alongside the rest of the pipeline: deleted while
//! being embedded (ends deleted, never searchable), a worker SIGKILLed mid-deletion (one
//! certificate), the queue's finished payloads, an imported document's import report.

use docket_tests::deleting::{cited, points, upload_until_embedding};
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn a_document_deleted_while_it_is_embedded_ends_deleted_and_is_never_searchable() {
    let app = spawn_app().await;
    let (_worker, _ctx, store) = app.spawn_worker_with_handles().await;
    let t = app.create_tenant("racer").await;
    let token = app.owner_token(&t).await;
    let id = upload_until_embedding(&app, &token, docket_tests::contract(23)).await;
    let (status, asked) = app.delete_document(&token, &id, false).await;
    assert_eq!(status, 202, "{asked}");
    let deletion = asked["deletion_id"].as_str().expect("id").to_owned();
    let done = app
        .wait_deletion(&token, &deletion, Duration::from_secs(180))
        .await;
    assert_eq!(done["status"], "done", "{done}");
    let doc: uuid::Uuid = id.parse().expect("uuid");
    // Whatever the stages did meanwhile, nothing of it is left, and nothing comes back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(points(&store, t.id, Some(doc)).await, 0);
    assert_eq!(points(&store, t.id, None).await, 0);
    assert_eq!(app.rows_naming(&id).await, Default::default());
    assert_eq!(app.objects_naming(&id), Vec::<String>::new());
    assert_eq!(app.redis_naming(&id).await, Vec::<String>::new());
    let answer = app
        .ask(&token, "What law governs this agreement?", json!({}))
        .await;
    assert!(!cited(&answer, &id), "{answer}");
}

#[tokio::test]
async fn a_worker_killed_mid_deletion_resumes_and_issues_one_certificate() {
    let app = spawn_app().await;
    let mut first = app.spawn_worker_process("deleter-1", true);
    let t = app.create_tenant("killed").await;
    let token = app.owner_token(&t).await;
    let id = upload_until_embedding(&app, &token, docket_tests::contract(23)).await;
    let (status, asked) = app.delete_document(&token, &id, false).await;
    assert_eq!(status, 202, "{asked}");
    let deletion = asked["deletion_id"].as_str().expect("id").to_owned();
    // It starts, and waits for the embedding already under way: kill it there.
    app.wait_deletion_running(&deletion).await;
    first.kill();
    let _second = app.spawn_worker_process("deleter-2", true);
    let done = app
        .wait_deletion(&token, &deletion, Duration::from_secs(240))
        .await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(
        app.audit_count(t.id, "deletions.certificate_issued", None).await,
        1
    );
    assert_eq!(app.audit_count(t.id, "deletions.started", None).await, 1);
    let text = app
        .call(
            Method::GET,
            &format!("/v1/deletions/{deletion}/certificate"),
            Some(&token),
            None,
        )
        .await
        .text()
        .await
        .expect("certificate");
    let file = app.dirs.path().join("certificate.json");
    std::fs::write(&file, &text).expect("write");
    let (code, report) = app.verify_certificate(&file).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(app.rows_naming(&id).await, Default::default());
    assert_eq!(app.objects_naming(&id), Vec::<String>::new());
    assert_eq!(app.redis_naming(&id).await, Vec::<String>::new());
}

#[tokio::test]
async fn finished_queue_payloads_are_vacuumed_and_unfinished_ones_kept() {
    use docket_platform::jobs::finished;
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let t = app.create_tenant("vacuum").await;
    let token = app.owner_token(&t).await;
    let doc = app
        .upload_ready(
            &token,
            "v.txt",
            b"The Supplier shall deliver the goods promptly.".to_vec(),
        )
        .await;
    let id = doc["id"].as_str().expect("id").to_owned();
    let kept_by_queue = app.redis_naming(&id).await;
    assert!(
        kept_by_queue.len() >= 4,
        "the finished stages' payloads: {kept_by_queue:?}"
    );
    // A task on a queue nobody consumes: never finished.
    let queue = app.job_queue();
    let nobody = format!("{}queue:nobody", app.config.redis.prefix);
    let config = docket_platform::billing::job::config(&queue).queue(nobody.clone());
    let task = docket_platform::jobs::task_id("nobody", uuid::Uuid::new_v4(), 0);
    queue
        .push_task(config, json!({"waiting_for": id}), task)
        .await
        .expect("push");

    // The vacuum keeps what finished in the last hour.
    assert_eq!(finished::vacuum(&queue).await.expect("vacuum"), 0);
    assert_eq!(app.redis_naming(&id).await.len(), kept_by_queue.len() + 1);
    // Past that age, every finished payload goes; the waiting task stays, whole.
    let gone = finished::forget_finished(&queue, &|_| true, Duration::ZERO)
        .await
        .expect("forget");
    assert!(gone.removed >= 4 && gone.kept == 1, "{gone:?}");
    assert_eq!(app.redis_naming(&id).await, vec![format!("{nobody}:data")]);
    let again = finished::forget_finished(&queue, &|_| true, Duration::ZERO)
        .await
        .expect("forget");
    assert_eq!((again.removed, again.kept), (0, 1));
}

#[tokio::test]
async fn an_imported_documents_deletion_keeps_its_imports_report_whole() {
    use docket_tests::importing::{assert_totals_add_up, zip_of};
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let _feeder = app.spawn_feeder();
    let t = app.create_tenant_on("imported", "business", "shared").await;
    let token = app.owner_token(&t).await;
    let entries: Vec<(String, Vec<u8>)> = (0..3)
        .map(|n| {
            (
                format!("c{n}.txt"),
                docket_tests::synthetic::contract(11, n).into_bytes(),
            )
        })
        .collect();
    let r = app.import_zip(&token, zip_of(&entries)).await;
    assert_eq!(r.status(), 202);
    let import = r.json::<Value>().await.expect("json")["import_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let s = app.wait_import(&token, &import, Duration::from_secs(180)).await;
    assert_eq!(s["ready"], 3, "{s}");
    let doc: String = sqlx::query_scalar("SELECT id::text FROM documents WHERE import_id = $1::uuid LIMIT 1")
        .bind(&import)
        .fetch_one(app.control.pool())
        .await
        .expect("document");
    let (status, asked) = app.delete_document(&token, &doc, false).await;
    assert_eq!(status, 202, "{asked}");
    let deletion = asked["deletion_id"].as_str().expect("id");
    let done = app
        .wait_deletion(&token, deletion, Duration::from_secs(120))
        .await;
    assert_eq!(done["status"], "done", "{done}");
    let s = app.import_status(&token, &import).await;
    assert_eq!(
        (s["ready"].as_i64(), s["deleted"].as_i64()),
        (Some(2), Some(1)),
        "{s}"
    );
    assert_eq!(
        (s["queued"].as_i64(), s["eta_seconds"].as_i64()),
        (Some(0), Some(0)),
        "{s}"
    );
    assert_totals_add_up(&s);
}
