//! Tenant A calling every endpoint of this wave with tenant B's ids: 404, nothing changes.

use docket_tests::actors::expect_error;
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn another_tenants_ids_are_not_found_and_nothing_changes() {
    let app = spawn_app().await;
    let a = app.create_tenant("alpha").await;
    let b = app.create_tenant("beta").await;
    let a_owner = app.owner_token(&a).await;
    let b_owner = app.owner_token(&b).await;
    let (b_member, _) = app.user_with_role(&b, &b_owner, "member").await;
    let r = app
        .call(
            Method::POST,
            "/v1/api-keys",
            Some(&b_owner),
            Some(json!({"name": "b", "role": "member"})),
        )
        .await;
    let b_key: Value = r.json().await.expect("json");
    let b_key_id = b_key["api_key"]["id"].as_str().expect("id").to_owned();
    let b_audit_before: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE tenant_id = $1")
        .bind(b.id)
        .fetch_one(app.control.pool())
        .await
        .expect("count");

    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/v1/users/{b_member}"),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::PATCH,
            format!("/v1/users/{}", b.owner_id),
            Some(json!({"status": "disabled"})),
        ),
        (Method::DELETE, format!("/v1/users/{b_member}"), None),
        (Method::DELETE, format!("/v1/api-keys/{b_key_id}"), None),
    ] {
        let r = app.call(method.clone(), &path, Some(&a_owner), body).await;
        expect_error(r, 404, "not_found").await;
    }
    // A's listings contain nothing of B's.
    for path in ["/v1/users", "/v1/api-keys", "/v1/audit-events"] {
        let text = app
            .call(Method::GET, path, Some(&a_owner), None)
            .await
            .text()
            .await
            .expect("text");
        assert!(
            !text.contains(&b_member.to_string())
                && !text.contains(&b_key_id)
                && !text.contains(&b.id.to_string()),
            "{path} leaks B: {text}"
        );
    }
    // An audit filter naming B's user finds nothing in A's trail.
    let r: Value = app
        .call(
            Method::GET,
            &format!("/v1/audit-events?actor=user:{}", b.owner_id),
            Some(&a_owner),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(r["events"], json!([]));

    // Nothing of B's changed.
    let users: Value = app
        .call(Method::GET, "/v1/users", Some(&b_owner), None)
        .await
        .json()
        .await
        .expect("json");
    for u in users["users"].as_array().expect("users") {
        assert_eq!(u["status"], "active");
        assert_ne!(u["role"], "admin");
    }
    let me = app
        .call(
            Method::GET,
            "/v1/me",
            Some(b_key["key"].as_str().expect("key")),
            None,
        )
        .await;
    assert_eq!(me.status(), 200, "B's key still works");
    let b_audit_after: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE tenant_id = $1")
        .bind(b.id)
        .fetch_one(app.control.pool())
        .await
        .expect("count");
    assert_eq!(
        b_audit_after, b_audit_before,
        "A's attempts wrote nothing into B's trail"
    );
}
