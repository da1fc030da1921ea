//! Every role × capability pair through real HTTP, for users and for API keys, plus the
//! real endpoints of this wave per role.

use docket_platform::authz::{self, Capability, Role};
use docket_tests::actors::expect_error;
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn every_role_and_capability_pair() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let owner = app.owner_token(&t).await;
    let mut principals: Vec<(Role, String, String)> = vec![(Role::Owner, "user".into(), owner.clone())];
    for role in [Role::Admin, Role::Member, Role::Viewer] {
        let (_, token) = app.user_with_role(&t, &owner, role.as_str()).await;
        principals.push((role, "user".into(), token));
    }
    for role in Role::ALL {
        let r = app
            .call(
                Method::POST,
                "/v1/api-keys",
                Some(&owner),
                Some(json!({"name": role.as_str(), "role": role.as_str()})),
            )
            .await;
        let v: Value = r.json().await.expect("json");
        principals.push((role, "api_key".into(), v["key"].as_str().expect("key").to_owned()));
    }
    let mut refused = 0;
    for (role, kind, token) in &principals {
        for cap in Capability::ALL {
            let r = app
                .call(Method::GET, &format!("/v1/authz/{cap}"), Some(token), None)
                .await;
            if authz::allows(*role, cap) {
                assert_eq!(r.status(), 200, "{kind} {role} should hold {cap}");
            } else {
                let body = expect_error(r, 403, "forbidden").await;
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .expect("m")
                        .contains(cap.as_str())
                );
                refused += 1;
            }
        }
    }
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'authz.check' AND outcome = 'refused' AND reason = 'forbidden'")
        .fetch_one(app.control.pool())
        .await
        .expect("count");
    assert_eq!(audited, refused, "every refusal audited");

    // The real endpoints agree with the table.
    for (role, _, token) in &principals {
        for (path, cap) in [
            ("/v1/users", Capability::UsersManage),
            ("/v1/api-keys", Capability::KeysManage),
            ("/v1/audit-events", Capability::AuditRead),
        ] {
            let status = app
                .call(Method::GET, path, Some(token), None)
                .await
                .status()
                .as_u16();
            let want = if authz::allows(*role, cap) { 200 } else { 403 };
            assert_eq!(status, want, "{role} GET {path}");
        }
    }
    let unknown = app
        .call(Method::GET, "/v1/authz/rockets.launch", Some(&owner), None)
        .await;
    expect_error(unknown, 404, "not_found").await;
}

#[tokio::test]
async fn roles_cannot_grant_above_themselves_or_lock_the_tenant_out() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let owner = app.owner_token(&t).await;
    let (admin_id, admin) = app.user_with_role(&t, &owner, "admin").await;
    let (member_id, _) = app.user_with_role(&t, &owner, "member").await;
    let r = app
        .call(
            Method::POST,
            "/v1/users",
            Some(&admin),
            Some(json!({"email": "x@acme.example.com", "role": "owner"})),
        )
        .await;
    expect_error(r, 403, "role_not_grantable").await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/users/{}", t.owner_id),
            Some(&admin),
            Some(json!({"status": "disabled"})),
        )
        .await;
    expect_error(r, 403, "role_not_grantable").await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/users/{admin_id}"),
            Some(&admin),
            Some(json!({"role": "viewer"})),
        )
        .await;
    expect_error(r, 409, "cannot_modify_self").await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/users/{member_id}"),
            Some(&admin),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/users/{member_id}"),
            Some(&admin),
            Some(json!({"role": "superuser"})),
        )
        .await;
    expect_error(r, 400, "invalid_role").await;
    let r = app
        .call(
            Method::POST,
            "/v1/users",
            Some(&owner),
            Some(json!({"email": "weak@acme.example.com", "password": "short", "role": "member"})),
        )
        .await;
    expect_error(r, 400, "weak_password").await;
    let r = app
        .call(
            Method::POST,
            "/v1/users",
            Some(&owner),
            Some(json!({"email": t.owner_email.to_uppercase(), "role": "member"})),
        )
        .await;
    expect_error(r, 409, "email_taken").await;
    // The last owner cannot be demoted (by another owner) — the tenant keeps an owner.
    let (owner2_id, owner2) = app.user_with_role(&t, &owner, "owner").await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/users/{}", t.owner_id),
            Some(&owner2),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/users/{owner2_id}"),
            Some(&owner),
            Some(json!({"role": "admin"})),
        )
        .await;
    expect_error(r, 403, "role_not_grantable").await; // the first owner is an admin now: cannot manage owners
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/users/{owner2_id}"),
            Some(&admin),
            None,
        )
        .await;
    expect_error(r, 403, "role_not_grantable").await;
    // An owner-role API key (no user of its own) cannot remove the last active owner.
    let r = app
        .call(
            Method::POST,
            "/v1/api-keys",
            Some(&owner2),
            Some(json!({"name": "root", "role": "owner"})),
        )
        .await;
    let key: Value = r.json().await.expect("json");
    let key = key["key"].as_str().expect("key");
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/users/{owner2_id}"),
            Some(key),
            Some(json!({"role": "member"})),
        )
        .await;
    expect_error(r, 409, "last_owner").await;
    let me: Value = app
        .call(Method::GET, "/v1/me", Some(&owner2), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["role"], "owner", "the refused change was rolled back");
}
