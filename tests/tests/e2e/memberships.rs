//! Rules about who may do what that must hold under concurrency and over time: the tenant
//! always keeps an active owner, and an API key never acts above its creator.

use docket_tests::actors::expect_error;
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};

async fn key_of(app: &docket_tests::TestApp, token: &str, role: &str) -> (String, String) {
    let body = json!({"name": format!("{role} automation"), "role": role});
    let r = app
        .call(Method::POST, "/v1/api-keys", Some(token), Some(body))
        .await;
    assert_eq!(r.status(), 201, "create a {role} key");
    let v: Value = r.json().await.expect("json");
    (
        v["api_key"]["id"].as_str().expect("id").to_owned(),
        v["key"].as_str().expect("secret").to_owned(),
    )
}

#[tokio::test]
async fn an_api_key_never_acts_above_its_creators_current_role() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let owner = app.owner_token(&t).await;
    let (admin_id, admin) = app.user_with_role(&t, &owner, "admin").await;
    let (_, key) = key_of(&app, &admin, "admin").await;
    let audit = || app.call(Method::GET, "/v1/audit-events", Some(&key), None);
    assert_eq!(audit().await.status(), 200, "an admin key reads the audit trail");

    let user = format!("/v1/users/{admin_id}");
    let r = app
        .call(
            Method::PATCH,
            &user,
            Some(&owner),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    expect_error(audit().await, 403, "forbidden").await;
    // Still a member's key: it may do what a member does.
    let r = app.call(Method::GET, "/v1/documents", Some(&key), None).await;
    assert_eq!(r.status(), 200);

    let r = app
        .call(
            Method::PATCH,
            &user,
            Some(&owner),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app.call(Method::GET, "/v1/documents", Some(&key), None).await;
    expect_error(r, 401, "api_key_creator_disabled").await;
}

#[tokio::test]
async fn an_admin_cannot_revoke_an_owners_key() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let owner = app.owner_token(&t).await;
    let (_, admin) = app.user_with_role(&t, &owner, "admin").await;
    let (owner_key, secret) = key_of(&app, &owner, "member").await;
    let (admin_key, _) = key_of(&app, &admin, "member").await;
    let path = format!("/v1/api-keys/{owner_key}");
    let r = app.call(Method::DELETE, &path, Some(&admin), None).await;
    expect_error(r, 403, "role_not_grantable").await;
    let r = app.call(Method::GET, "/v1/documents", Some(&secret), None).await;
    assert_eq!(r.status(), 200, "the owner's key still works");
    // Within one's own reach, revoking works; and the owner may revoke anyone's.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{admin_key}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = app.call(Method::DELETE, &path, Some(&owner), None).await;
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn two_owners_demoting_each_other_at_once_leave_one_owner() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let first = app.owner_token(&t).await;
    let (second_id, second) = app.user_with_role(&t, &first, "owner").await;
    let (mut a, mut b) = ((t.owner_id, first), (second_id, second));
    for round in 0..4 {
        let (pa, pb) = (format!("/v1/users/{}", b.0), format!("/v1/users/{}", a.0));
        let body = json!({"role": "admin"});
        let (ra, rb) = tokio::join!(
            app.call(Method::PATCH, &pa, Some(&a.1), Some(body.clone())),
            app.call(Method::PATCH, &pb, Some(&b.1), Some(body.clone())),
        );
        let statuses = [ra.status().as_u16(), rb.status().as_u16()];
        let owners: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM users WHERE tenant_id = $1 AND role = 'owner' AND status = 'active'",
        )
        .bind(t.id)
        .fetch_one(app.control.pool())
        .await
        .expect("count");
        assert_eq!(owners, 1, "round {round}: {statuses:?}");
        assert!(
            statuses.contains(&200),
            "round {round}: one demotion wins: {statuses:?}"
        );
        // The survivor promotes the other again (fresh tokens: roles are read per request).
        let survivor_is_a = statuses[0] == 200;
        if !survivor_is_a {
            std::mem::swap(&mut a, &mut b);
        }
        let r = app
            .call(
                Method::PATCH,
                &format!("/v1/users/{}", b.0),
                Some(&a.1),
                Some(json!({"role": "owner"})),
            )
            .await;
        assert_eq!(r.status(), 200, "round {round}: promote again");
    }
}
