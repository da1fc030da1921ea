//! Whole-tenant deletion under faults: a tenant deleted while one of its documents is being
//! embedded, with the worker SIGKILLed while the sweep waits for that stage: a new worker
//! resumes, the document ends deleted (never indexed after the sweep), exactly one
//! certificate, the keys destroyed, nothing left.

use chrono::Utc;
use docket_platform::deletions::tenant;
use docket_tests::deleting::upload_until_embedding;
use docket_tests::spawn_app;

#[tokio::test]
async fn a_worker_killed_mid_tenant_deletion_resumes_and_issues_one_certificate() {
    let app = spawn_app().await;
    let mut first = app.spawn_worker_process("tenant-deleter-1", true);
    let t = app.create_tenant("doomed").await;
    let token = app.owner_token(&t).await;
    upload_until_embedding(&app, &token, docket_tests::contract(23)).await;
    let (deletion, cert_token) = app.delete_tenant_confirmed(&token).await;
    let later = Utc::now() + chrono::Duration::days(8);
    let queue = app.job_queue();
    assert_eq!(
        tenant::queue_due(&app.control, &queue, later).await.expect("due"),
        1
    );
    // The sweep starts, and waits for the embedding under way: kill the worker there.
    app.wait_deletion_running(&deletion).await;
    first.kill();
    let _second = app.spawn_worker_process("tenant-deleter-2", true);
    let text = app.tenant_certificate(&deletion, &cert_token).await;
    let cert: serde_json::Value = serde_json::from_str(&text).expect("certificate json");
    assert_eq!(cert["certificate"]["scope"], "tenant", "{cert}");
    assert_eq!(
        cert["certificate"]["residue"]["found"],
        serde_json::json!([]),
        "{cert}"
    );
    assert_eq!(
        app.audit_count(t.id, "deletions.certificate_issued", None).await,
        1
    );
    assert_eq!(app.audit_count(t.id, "deletions.started", None).await, 1);
    let file = app.dirs.path().join("tenant-certificate.json");
    std::fs::write(&file, &text).expect("write");
    let (code, report) = app.verify_certificate(&file).await;
    assert_eq!(code, 0, "{report}");
    let id = t.id.to_string();
    app.forget_tenant_deletion_tasks().await;
    let documents: i64 = sqlx::query_scalar("SELECT count(*) FROM documents WHERE tenant_id = $1")
        .bind(t.id)
        .fetch_one(app.control.pool())
        .await
        .expect("documents");
    assert_eq!(documents, 0, "a document outlived its tenant");
    assert_eq!(app.objects_naming(&id), Vec::<String>::new(), "objects left");
    assert_eq!(
        app.redis_naming(&id).await,
        Vec::<String>::new(),
        "redis keys left"
    );
}
