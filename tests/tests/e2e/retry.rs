//! A failed document never blocks its content: the same bytes uploaded again, or
//! `POST /v1/documents/{id}/retry`, run it through the pipeline again.

use docket_platform::documents;
use docket_platform::ids::DocumentId;
use docket_tests::actors::expect_error;
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

/// Fails a queued document the way the API does when its parse job cannot be pushed, and
/// removes every queue entry of this test (the job that never reached Redis).
async fn fail_as_unqueued(app: &docket_tests::TestApp, tenant: docket_platform::ids::TenantId, id: &str) {
    let mut tx = app.db.begin_tenant(tenant).await.expect("tx");
    let id = DocumentId(id.parse().expect("uuid"));
    documents::fail(&mut tx, id, "queue_unavailable", "the job queue was unavailable")
        .await
        .expect("fail");
    tx.commit().await.expect("commit");
    app.flush_redis().await;
}

#[tokio::test]
async fn a_failed_document_is_revived_by_uploading_it_again_or_by_retry() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let owner = app.owner_token(&t).await;
    let first = b"Section 1. Payment. Fees are due within thirty days.".to_vec();
    let second = b"Section 2. Term. This agreement lasts three years.".to_vec();
    let mut ids = vec![];
    for (name, bytes) in [("a.txt", &first), ("b.txt", &second)] {
        let r = app.upload_raw(&owner, name, bytes.clone(), None).await;
        assert_eq!(r.status(), 202);
        let v: Value = r.json().await.expect("json");
        ids.push(v["document_id"].as_str().expect("id").to_owned());
    }
    for id in &ids {
        fail_as_unqueued(&app, t.id, id).await;
    }
    let _worker = app.spawn_worker().await;

    // The same bytes again: not `duplicate: true` with the failed document, but a retry.
    let r = app.upload_raw(&owner, "a.txt", first.clone(), None).await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        v["document_id"],
        ids[0].as_str(),
        "the document itself is revived"
    );
    assert_eq!(v["retried"], true);
    assert_eq!(v["duplicate"], false);

    // The retry endpoint.
    let path = format!("/v1/documents/{}/retry", ids[1]);
    let r = app.call(Method::POST, &path, Some(&owner), None).await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.expect("json")["retried"], true);

    for id in &ids {
        let d = app.wait_processed(&owner, id, WAIT).await;
        assert_eq!(d["status"], "ready", "{d}");
        assert_eq!(d["error"], Value::Null, "the old error is gone: {d}");
    }
    // Once ready, the same bytes are a duplicate again and a retry is refused.
    let r = app.upload_raw(&owner, "a.txt", first, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json")["duplicate"], true);
    let r = app.call(Method::POST, &path, Some(&owner), None).await;
    expect_error(r, 409, "not_failed").await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM documents WHERE tenant_id = $1")
        .bind(t.id)
        .fetch_one(app.control.pool())
        .await
        .expect("count");
    assert_eq!(n, 2, "revival never makes a second document");
    assert_eq!(app.audit_count(t.id, "documents.retry", None).await, 1);
}

#[tokio::test]
async fn retry_is_refused_for_readers_other_tenants_and_unknown_ids() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let other = app.create_tenant("rival").await;
    let owner = app.owner_token(&t).await;
    let rival = app.owner_token(&other).await;
    let (_, viewer) = app.user_with_role(&t, &owner, "viewer").await;
    let r = app
        .upload_raw(&owner, "a.txt", b"Section 1. Terms.".to_vec(), None)
        .await;
    let id = r.json::<Value>().await.expect("json")["document_id"]
        .as_str()
        .expect("id")
        .to_owned();
    fail_as_unqueued(&app, t.id, &id).await;
    let path = format!("/v1/documents/{id}/retry");
    let r = app.call(Method::POST, &path, Some(&viewer), None).await;
    expect_error(r, 403, "forbidden").await;
    let r = app.call(Method::POST, &path, Some(&rival), None).await;
    expect_error(r, 404, "not_found").await;
    let unknown = format!("/v1/documents/{}/retry", uuid::Uuid::new_v4());
    let r = app.call(Method::POST, &unknown, Some(&owner), None).await;
    expect_error(r, 404, "not_found").await;
    let r = app
        .call(Method::POST, "/v1/documents/not-an-id/retry", Some(&owner), None)
        .await;
    expect_error(r, 404, "not_found").await;
    // Still failed: none of the refused attempts touched it.
    let d = app.document(&owner, &id).await;
    assert_eq!(d["status"], "failed");
}

/// A document that fails for its content fails again on retry, with fresh attempts (the
/// retry ran the pipeline again rather than answering from the old record).
#[tokio::test]
async fn a_retried_corrupt_document_runs_again_and_fails_again() {
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let t = app.create_tenant("acme").await;
    let owner = app.owner_token(&t).await;
    let truncated = docket_tests::contract(2)[..1500].to_vec();
    let r = app
        .upload_raw(&owner, "broken.pdf", truncated.clone(), None)
        .await;
    let id = r.json::<Value>().await.expect("json")["document_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let d = app.wait_processed(&owner, &id, WAIT).await;
    assert_eq!(d["status"], "failed");
    let first_finish = d["stages"][0]["finished_at"].clone();
    let r = app.upload_raw(&owner, "broken.pdf", truncated, None).await;
    assert_eq!(r.status(), 202);
    let d = app.wait_processed(&owner, &id, WAIT).await;
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["error"]["code"], "corrupt_file");
    assert_ne!(
        d["stages"][0]["finished_at"], first_finish,
        "the parse ran again: {d}"
    );
}
