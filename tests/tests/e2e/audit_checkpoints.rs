//! Anchored audit: signed checkpoints of every chain's head in object storage catch what
//! the chain walk alone cannot — a tail dropped, or rewritten consistently, by someone with
//! database superuser rights — and keep catching it after the database (checkpoint index
//! included) is put back to an older state, since they live elsewhere.

use chrono::Utc;
use docket_platform::audit::{StoredEvent, checkpoint, row_hash};
use docket_platform::blobs::BlobStore;
use docket_platform::identity::keyring::KeyRing;
use docket_tests::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::Value;

async fn take(app: &TestApp) -> usize {
    let blobs = BlobStore::from_config(&app.config.objects).expect("blobs");
    let keys = KeyRing::new(
        app.db.clone(),
        app.config.master_key.clone(),
        app.config.auth.key_rotation_window,
    );
    checkpoint::take(&app.control, &blobs, &keys, Utc::now())
        .await
        .expect("take checkpoints")
}

async fn head(app: &TestApp, t: docket_platform::ids::TenantId) -> i64 {
    sqlx::query_scalar("SELECT max(seq) FROM audit_events WHERE tenant_id = $1")
        .bind(t)
        .fetch_one(app.control.pool())
        .await
        .expect("head")
}

/// Runs `sql` as a superuser with the chain's immutability trigger off (an attacker with
/// full database rights).
async fn as_superuser(app: &TestApp, sql: &str, t: docket_platform::ids::TenantId) {
    let su = app.pool_as("docket_test_super").await;
    let mut tx = su.begin().await.expect("begin");
    sqlx::query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_immutable")
        .execute(&mut *tx)
        .await
        .expect("disable trigger");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(t)
        .execute(&mut *tx)
        .await
        .expect(sql);
    sqlx::query("ALTER TABLE audit_events ENABLE TRIGGER audit_events_immutable")
        .execute(&mut *tx)
        .await
        .expect("enable trigger");
    tx.commit().await.expect("commit");
}

async fn checked(app: &TestApp, t: docket_platform::ids::TenantId) -> Value {
    docketctl::audit_verify_checkpoints(&app.config, &app.control, Some(t), None)
        .await
        .expect("verify --checkpoints")
}

#[tokio::test]
async fn a_truncated_tail_is_caught_by_its_checkpoint_even_after_a_database_restore() {
    let app = spawn_app().await;
    let t = app.create_tenant("anchored").await;
    let other = app.create_tenant("elsewhere").await;
    let token = app.owner_token(&t).await;
    app.owner_token(&t).await;
    assert!(take(&app).await >= 3, "the platform chain and both tenants'");
    assert_eq!(take(&app).await, 0, "an unchanged head is not signed again");
    let signed = head(&app, t.id).await;

    // The tenant reads its own chain's checkpoints, signed; another tenant only its own.
    let mine: Value = app
        .call(Method::GET, "/v1/audit-checkpoints", Some(&token), None)
        .await
        .json()
        .await
        .expect("json");
    let latest = &mine["checkpoints"][0];
    assert_eq!(latest["checkpoint"]["seq"], signed, "{mine}");
    assert_eq!(latest["checkpoint"]["chain"], t.id.to_string(), "{mine}");
    assert!(latest["signature"]["signature"].is_string(), "{mine}");
    let theirs: Value = app
        .call(
            Method::GET,
            "/v1/audit-checkpoints",
            Some(&app.owner_token(&other).await),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(!theirs.to_string().contains(&t.id.to_string()), "{theirs}");
    let op = app.operator_token().await;
    let all: Value = app
        .call(Method::GET, "/ops/audit-checkpoints", Some(&op), None)
        .await
        .json()
        .await
        .expect("json");
    assert!(
        all["checkpoints"]
            .as_array()
            .expect("list")
            .iter()
            .any(|c| c["chain"] == t.id.to_string() && c["seq"] == signed),
        "{all}"
    );
    assert_eq!(checked(&app, t.id).await["ok"], true);

    // The last two rows dropped as a superuser: the walk finds nothing wrong.
    as_superuser(
        &app,
        &format!(
            "DELETE FROM audit_events WHERE tenant_id = $1 AND seq > {}",
            signed - 2
        ),
        t.id,
    )
    .await;
    let walked = docketctl::audit_verify(&app.control, Some(t.id))
        .await
        .expect("verify");
    assert_eq!(
        walked["ok"], true,
        "the walk alone cannot see a dropped tail: {walked}"
    );
    let report = checked(&app, t.id).await;
    assert_eq!(report["ok"], false, "{report}");
    let problem = report["checkpoints"][0]["problem"]
        .as_str()
        .expect("problem")
        .to_owned();
    assert!(
        problem.contains(&format!("truncated: rows {}..={signed}", signed - 1)),
        "{problem}"
    );
    assert_eq!(report["checkpoints"][0]["chain"], t.id.to_string());

    // The database put back further (the checkpoint index too): still caught.
    let su = app.pool_as("docket_test_super").await;
    sqlx::query("DELETE FROM audit_checkpoint_heads")
        .execute(&su)
        .await
        .expect("restore");
    assert_eq!(checked(&app, t.id).await["ok"], false);
    // The other tenant's chain is untouched and agrees with its checkpoint.
    assert_eq!(checked(&app, other.id).await["ok"], true);
}

#[tokio::test]
async fn a_consistently_rewritten_row_is_caught_by_its_checkpoint() {
    let app = spawn_app().await;
    let t = app.create_tenant("rewritten").await;
    app.owner_token(&t).await;
    assert!(take(&app).await >= 2);
    let signed = head(&app, t.id).await;
    // The head row rewritten with a hash recomputed over the new content: the chain's links
    // all hold, so only the checkpoint can tell.
    let mut last: StoredEvent = sqlx::query_as(
        "SELECT seq, id, occurred_at, actor_kind, actor_id, action, target, outcome, reason, request_id,
                details, prev_hash, hash
         FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(t.id)
    .fetch_one(app.control.pool())
    .await
    .expect("head row");
    last.action = "nothing.happened".into();
    let forged = row_hash(&t.id.to_string(), &last);
    as_superuser(
        &app,
        &format!(
            "UPDATE audit_events SET action = 'nothing.happened', hash = '{forged}' WHERE tenant_id = $1 AND seq = {signed}"
        ),
        t.id,
    )
    .await;
    let walked = docketctl::audit_verify(&app.control, Some(t.id))
        .await
        .expect("verify");
    assert_eq!(
        walked["ok"], true,
        "a consistent rewrite passes the walk: {walked}"
    );
    let report = checked(&app, t.id).await;
    assert_eq!(report["ok"], false, "{report}");
    let problem = report["checkpoints"][0]["problem"].as_str().expect("problem");
    assert!(problem.contains(&format!("forked: row {signed}")), "{problem}");
}
