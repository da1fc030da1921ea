//! What keeps several worker processes from stepping on each other's vectors: the tenant's
//! index/tier-move lock is a PostgreSQL advisory lock (not a process-local mutex), the
//! placement switch is a compare-and-set, and one worker of a deployment checks a shared
//! index at start-up. The in-process engine has one owner, but the locks are the same ones
//! workers on a Qdrant server take, and another process is played by another connection.

use docket_platform::placement;
use docket_platform::tenants::IsolationTier;
use docket_tests::spawn_app;
use std::time::Duration;

#[tokio::test]
async fn an_index_job_waits_while_another_process_holds_the_tenants_vector_lock() {
    let app = spawn_app().await;
    let (_worker, ctx, _store) = app.spawn_worker_with_handles().await;
    let t = app.create_tenant("acme").await;
    let owner = app.owner_token(&t).await;
    let key = placement::vector_lock_key(t.id.as_uuid());

    // "Another worker process" (a tier move there) holds the lock.
    let other = app.pool_as("docket_app").await;
    let mut held = other.acquire().await.expect("conn");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut *held)
        .await
        .expect("lock");
    let r = app
        .upload_raw(
            &owner,
            "a.txt",
            b"Section 1. Fees are due monthly.".to_vec(),
            None,
        )
        .await;
    let id = r.json::<serde_json::Value>().await.expect("json")["document_id"]
        .as_str()
        .expect("id")
        .to_owned();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let d = app.document(&owner, &id).await;
    assert_eq!(d["status"], "processing", "{d}");
    assert_eq!(d["stage"], "index", "waiting for the lock, not indexing: {d}");
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut *held)
        .await
        .expect("unlock");
    let d = app.wait_processed(&owner, &id, Duration::from_secs(60)).await;
    assert_eq!(d["status"], "ready", "{d}");

    // And the worker's own lock is visible to other processes while held.
    let guard = ctx.lock_tenant_vectors(t.id.as_uuid()).await.expect("lock");
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&other)
        .await
        .expect("try");
    assert!(!free, "another process sees the tenant locked");
    drop(guard);
    let mut free = false;
    for _ in 0..50 {
        let mut conn = other.acquire().await.expect("conn");
        free = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .expect("try");
        if free {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(key)
                .execute(&mut *conn)
                .await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(free, "released when the guard is dropped");
}

#[tokio::test]
async fn the_placement_switch_is_a_compare_and_set() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let mut tx = app.db.begin_tenant(t.id).await.expect("tx");
    let start = placement::ensure(&mut tx).await.expect("placement");
    assert_eq!(start.current, IsolationTier::Shared);
    let first = placement::switch(&mut tx, IsolationTier::Shared, IsolationTier::Dedicated)
        .await
        .expect("switch");
    // A second worker that read "shared" before the first switched must not overwrite it.
    let second = placement::switch(&mut tx, IsolationTier::Shared, IsolationTier::Isolated)
        .await
        .expect("switch");
    let now = placement::read(&mut tx).await.expect("read");
    tx.commit().await.expect("commit");
    assert!(first);
    assert!(!second);
    assert_eq!(now.current, IsolationTier::Dedicated);
}

#[tokio::test]
async fn one_worker_of_a_deployment_checks_a_shared_index() {
    let app = spawn_app().await;
    let (_worker, ctx, _store) = app.spawn_worker_with_handles().await;
    // The worker above owns its in-process index and always checks it; for a shared index
    // the first claimant leads, the others skip while it runs and shortly after.
    let lease = docket_worker::vector_upkeep::claim(&ctx, true)
        .await
        .expect("claim")
        .expect("the first worker leads");
    let second = docket_worker::vector_upkeep::claim(&ctx, true)
        .await
        .expect("claim");
    assert!(
        second.is_none(),
        "a second worker does not check while the first does"
    );
    lease.finish(Some("worker-a")).await.expect("finish");
    let third = docket_worker::vector_upkeep::claim(&ctx, true)
        .await
        .expect("claim");
    assert!(third.is_none(), "a check that just finished is not repeated");
    let worker: String = sqlx::query_scalar("SELECT worker FROM vector_reconciliations")
        .fetch_one(app.db.platform_pool())
        .await
        .expect("row");
    assert_eq!(worker, "worker-a");
    // Its own directory, though, it checks however recently anyone checked anything.
    assert!(
        docket_worker::vector_upkeep::claim(&ctx, false)
            .await
            .expect("claim")
            .is_some()
    );
}
