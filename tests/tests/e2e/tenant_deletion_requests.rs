//! Asking for a whole-tenant deletion and changing one's mind: cancelling in the grace
//! period (owner and operator) loses nothing, codes expire, one request at a time, an
//! operator needs a reason; once the sweep is queued the tenant answers nothing and the
//! certificate waits; the sweep's table catalog empties every non-retained tenant table
//! of one tenant only. The sweep itself on every tier: `tenant_deletion.rs`.

use chrono::Utc;
use docket_platform::deletions::document::Target;
use docket_platform::deletions::{tenant, tenant_sweep};
use docket_platform::ids::DocumentId;
use docket_tests::actors::expect_error;
use docket_tests::deleting::kept_by_tenant_deletion;
use docket_tests::{seed, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[tokio::test]
async fn a_tenant_deletion_is_cancelled_in_its_grace_period_and_nothing_is_lost() {
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let t = app.create_tenant_on("wavering", "business", "shared").await;
    let token = app.owner_token(&t).await;
    let doc = app
        .upload_ready(
            &token,
            "note.txt",
            b"The term of this agreement is five years.".to_vec(),
        )
        .await;
    let rows = app.tenant_rows(t.id).await;

    // An owner's request, confirmed, then cancelled: the tenant answers again.
    let (deletion, _) = app.delete_tenant_confirmed(&token).await;
    expect_error(
        app.call(
            Method::POST,
            "/v1/deletions",
            Some(&token),
            Some(json!({"scope": "tenant"})),
        )
        .await,
        403,
        "tenant_suspended",
    )
    .await;
    let r = app
        .call(
            Method::POST,
            &format!("/v1/deletions/{deletion}/cancel"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let cancelled: Value = r.json().await.expect("json");
    assert_eq!(cancelled["tenant_status"], "active", "{cancelled}");
    expect_error(
        app.call(
            Method::POST,
            &format!("/v1/deletions/{deletion}/cancel"),
            Some(&token),
            None,
        )
        .await,
        409,
        "invalid_state",
    )
    .await;
    let later = Utc::now() + chrono::Duration::days(30);
    assert_eq!(
        tenant::queue_due(&app.control, &app.job_queue(), later)
            .await
            .expect("due"),
        0
    );
    let id = doc["id"].as_str().expect("id");
    assert_eq!(app.document(&token, id).await["status"], "ready");

    // Asking twice while one is pending; a code that expired.
    let r = app
        .call(
            Method::POST,
            "/v1/deletions",
            Some(&token),
            Some(json!({"scope": "tenant"})),
        )
        .await;
    let asked: Value = r.json().await.expect("json");
    let second = asked["deletion_id"].as_str().expect("id").to_owned();
    expect_error(
        app.call(
            Method::POST,
            "/v1/deletions",
            Some(&token),
            Some(json!({"scope": "tenant"})),
        )
        .await,
        409,
        "deletion_pending",
    )
    .await;
    sqlx::query("UPDATE deletions SET confirm_before = now() - interval '1 second' WHERE id = $1::uuid")
        .bind(&second)
        .execute(&app.pool_as("docket_test_super").await)
        .await
        .expect("expire");
    let code = asked["confirmation_code"].as_str().expect("code");
    expect_error(
        app.call(
            Method::POST,
            &format!("/v1/deletions/{second}/confirm"),
            Some(&token),
            Some(json!({"confirmation_code": code})),
        )
        .await,
        410,
        "confirmation_expired",
    )
    .await;
    tenant::queue_due(&app.control, &app.job_queue(), Utc::now())
        .await
        .expect("due");
    let d: Value = app
        .call(
            Method::GET,
            &format!("/v1/deletions/{second}"),
            Some(&token),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(d["status"], "cancelled", "{d}");

    // An operator's deletion needs a reason; it can be cancelled the same way.
    let op = app.operator_token().await;
    let path = format!("/ops/tenants/{}/deletion", t.id);
    expect_error(
        app.call(Method::POST, &path, Some(&op), Some(json!({}))).await,
        400,
        "reason_required",
    )
    .await;
    let r = app
        .call(
            Method::POST,
            &path,
            Some(&op),
            Some(json!({"reason": "contract ended"})),
        )
        .await;
    assert_eq!(r.status(), 202);
    let by_op: Value = r.json().await.expect("json");
    let op_deletion = by_op["deletion_id"].as_str().expect("id");
    expect_error(
        app.call(Method::GET, "/v1/documents", Some(&token), None).await,
        403,
        "tenant_suspended",
    )
    .await;
    let r = app
        .call(
            Method::POST,
            &format!("/ops/deletions/{op_deletion}/cancel"),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.document(&token, id).await["status"], "ready");
    // Nothing of the tenant's data moved (only the deletions and the audit trail grew).
    let now: BTreeMap<String, i64> = app.tenant_rows(t.id).await;
    for (table, n) in &rows {
        if ![
            "deletions",
            "audit_events",
            "status_history",
            "usage_events",
            "usage_monthly",
        ]
        .contains(&table.as_str())
        {
            assert_eq!(now.get(table), Some(n), "{table} changed");
        }
    }
    assert!(app.audit_count(t.id, "deletions.cancelled", None).await >= 1);
}

#[tokio::test]
async fn the_sweep_empties_every_tenant_table_but_the_retained_ones_and_only_the_tenants() {
    let app = spawn_app().await;
    let a = seed::tenant(&app.control, "gone").await;
    let b = seed::tenant(&app.control, "kept").await;
    seed::rows_in_every_tenant_table(&app.control, a).await;
    seed::rows_in_every_tenant_table(&app.control, b).await;
    let before_a = app.tenant_rows(a).await;
    let before_b = app.tenant_rows(b).await;
    let t = Target {
        deletion: uuid::Uuid::new_v4(),
        tenant: a,
        document: DocumentId(uuid::Uuid::nil()),
    };
    tenant_sweep::sweep_rows(&app.db, &app.auditor(), &t)
        .await
        .expect("the sweep deletes from every table it lists (a DELETE grant missing fails here)");
    let after_a = app.tenant_rows(a).await;
    for (table, n) in &before_a {
        assert!(*n > 0, "{table}: the seed must give A rows here");
        match kept_by_tenant_deletion(table) {
            true => assert_eq!(after_a[table], *n, "{table}: retained rows were deleted"),
            false => assert_eq!(after_a[table], 0, "{table}: rows of the deleted tenant left"),
        }
    }
    assert_eq!(
        app.tenant_rows(b).await,
        before_b,
        "another tenant's rows changed"
    );
}

#[tokio::test]
async fn once_the_sweep_is_queued_the_tenant_answers_nothing_and_the_certificate_waits() {
    // No worker: the sweep stays queued.
    let app = spawn_app().await;
    let t = app.create_tenant_on("swept", "team", "shared").await;
    let token = app.owner_token(&t).await;
    let (deletion, cert_token) = app.delete_tenant_confirmed(&token).await;
    let path = format!("/v1/deletion-certificates/{deletion}");
    expect_error(
        app.call(Method::GET, &path, None, None).await,
        401,
        "missing_credentials",
    )
    .await;
    expect_error(
        app.call(Method::GET, &path, Some("dct_0000"), None).await,
        401,
        "invalid_token",
    )
    .await;
    expect_error(
        app.call(Method::GET, &path, Some(&cert_token), None).await,
        409,
        "certificate_not_ready",
    )
    .await;
    let later = Utc::now() + chrono::Duration::days(8);
    assert_eq!(
        tenant::queue_due(&app.control, &app.job_queue(), later)
            .await
            .expect("due"),
        1
    );
    for (method, p) in [
        (Method::GET, format!("/v1/deletions/{deletion}")),
        (Method::POST, format!("/v1/deletions/{deletion}/cancel")),
    ] {
        let body = expect_error(
            app.call(method, &p, Some(&token), None).await,
            403,
            "tenant_suspended",
        )
        .await;
        assert!(body.to_string().contains("being deleted"), "{body}");
    }
    let op = app.operator_token().await;
    expect_error(
        app.call(
            Method::POST,
            &format!("/ops/deletions/{deletion}/cancel"),
            Some(&op),
            None,
        )
        .await,
        409,
        "invalid_state",
    )
    .await;
}
