//! Signing-key rotation, account and tenant status on every request, operator/tenant token
//! separation, API keys, and strict JSON bodies.

use docket_platform::identity::jwt;
use docket_platform::identity::keyring;
use docket_tests::actors::{PASSWORD, expect_error};
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn rotated_keys_stay_valid_for_the_window_then_expire() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let old = app.owner_token(&t).await;
    let old_kid = jwt::header_kid(&old).expect("kid");
    let rotated = docketctl::keys_rotate(&app.control, &app.auditor(), &app.config)
        .await
        .expect("rotate");
    let new_kid = rotated["active_kid"].as_str().expect("kid").to_owned();
    assert_ne!(old_kid, new_kid);

    // JWKS publishes both while the old one is inside its window (every API process picks
    // a rotation up within its 10 s refresh).
    let mut kids: Vec<String> = vec![];
    let mut jwks = Value::Null;
    for _ in 0..30 {
        jwks = app
            .get("/.well-known/jwks.json")
            .await
            .json()
            .await
            .expect("json");
        kids = jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect();
        if kids.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(kids, vec![new_kid.clone(), old_kid.clone()]);
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");

    // Old tokens still work; new logins are signed with the new key (within the refresh interval).
    assert_eq!(
        app.call(Method::GET, "/v1/me", Some(&old), None).await.status(),
        200
    );
    let mut signed_with_new = false;
    for _ in 0..30 {
        let fresh = app.owner_token(&t).await;
        if jwt::header_kid(&fresh).expect("kid") == new_kid {
            signed_with_new = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(signed_with_new, "the API picks up the rotated key");

    // Past the window, the old key is refused (backdate its retirement past the window).
    keyring::backdate_retirement(
        &app.control,
        &old_kid,
        app.config.auth.key_rotation_window + Duration::from_secs(60),
    )
    .await
    .expect("backdate");
    let mut refused = false;
    for _ in 0..30 {
        let r = app.call(Method::GET, "/v1/me", Some(&old), None).await;
        if r.status() == 401 {
            expect_error(r, 401, "signing_key_retired").await;
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(refused, "a token signed with a key past its window is refused");
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        jwks["keys"].as_array().expect("keys").len(),
        1,
        "the retired key left the JWKS"
    );
}

#[tokio::test]
async fn suspended_tenants_and_disabled_users_are_refused() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let owner = app.owner_token(&t).await;
    let (member_id, member) = app.user_with_role(&t, &owner, "member").await;
    let op = app.operator_token().await;

    // Disable the member: their still-unexpired token is refused at once.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/users/{member_id}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    expect_error(
        app.call(Method::GET, "/v1/me", Some(&member), None).await,
        401,
        "user_disabled",
    )
    .await;

    // Suspend the tenant: every token and login is refused with tenant_suspended.
    let r = app
        .call(
            Method::POST,
            &format!("/ops/tenants/{}/suspend", t.id),
            Some(&op),
            Some(json!({"reason": "unpaid"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    expect_error(
        app.call(Method::GET, "/v1/me", Some(&owner), None).await,
        403,
        "tenant_suspended",
    )
    .await;
    expect_error(
        app.login(&t.slug, &t.owner_email, PASSWORD).await,
        403,
        "tenant_suspended",
    )
    .await;
    assert!(app.audit_reasons("tenant_suspended").await >= 2);

    let r = app
        .call(
            Method::POST,
            &format!("/ops/tenants/{}/resume", t.id),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.call(Method::GET, "/v1/me", Some(&owner), None).await.status(),
        200
    );
}

#[tokio::test]
async fn operator_and_tenant_tokens_never_cross() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let owner = app.owner_token(&t).await;
    let op = app.operator_token().await;
    expect_error(
        app.call(Method::GET, "/v1/me", Some(&op), None).await,
        401,
        "wrong_token_kind",
    )
    .await;
    expect_error(
        app.call(Method::GET, "/ops/tenants", Some(&owner), None).await,
        401,
        "wrong_token_kind",
    )
    .await;
    let r = app.call(Method::GET, "/ops/tenants", Some(&op), None).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["tenants"][0]["slug"], t.slug);
    assert!(app.audit_reasons("wrong_token_kind").await >= 2);
    let ops_events: i64 = sqlx::query_scalar("SELECT count(*) FROM platform_audit_events WHERE action = 'ops.tenants.list' AND outcome = 'allowed'")
        .fetch_one(app.control.pool())
        .await
        .expect("count");
    assert_eq!(ops_events, 1, "operator reads are audited");
    // Wrong operator password.
    let r = app
        .call(
            Method::POST,
            "/ops/auth/login",
            None,
            Some(json!({"email": "nobody@docket.example.com", "password": PASSWORD})),
        )
        .await;
    expect_error(r, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn api_keys_work_until_revoked_or_expired() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let owner = app.owner_token(&t).await;
    let r = app
        .call(
            Method::POST,
            "/v1/api-keys",
            Some(&owner),
            Some(json!({"name": "ci", "role": "viewer"})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.expect("json");
    let key = created["key"].as_str().expect("key").to_owned();
    let id = created["api_key"]["id"].as_str().expect("id").to_owned();
    let me: Value = app
        .call(Method::GET, "/v1/me", Some(&key), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["role"], "viewer");
    assert_eq!(me["principal"]["kind"], "api_key");
    // Shown once: the listing never contains the secret.
    let list = app
        .call(Method::GET, "/v1/api-keys", Some(&owner), None)
        .await
        .text()
        .await
        .expect("text");
    assert!(!list.contains(&key[key.len() - 20..]));
    assert!(list.contains("last_used_at"));
    // A key cannot outrank its creator, and a viewer key cannot manage keys.
    expect_error(
        app.call(
            Method::POST,
            "/v1/api-keys",
            Some(&key),
            Some(json!({"name": "x", "role": "owner"})),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    // Tampered secret.
    let tampered = format!("{}A", &key[..key.len() - 1]);
    let tampered = if tampered == key {
        format!("{}B", &key[..key.len() - 1])
    } else {
        tampered
    };
    expect_error(
        app.call(Method::GET, "/v1/me", Some(&tampered), None).await,
        401,
        "invalid_api_key",
    )
    .await;

    assert_eq!(
        app.call(Method::DELETE, &format!("/v1/api-keys/{id}"), Some(&owner), None)
            .await
            .status(),
        204
    );
    expect_error(
        app.call(Method::GET, "/v1/me", Some(&key), None).await,
        401,
        "api_key_revoked",
    )
    .await;

    // Expired keys.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let r = app
        .call(
            Method::POST,
            "/v1/api-keys",
            Some(&owner),
            Some(json!({"name": "short", "role": "member", "expires_at": soon})),
        )
        .await;
    let short: Value = r.json().await.expect("json");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    expect_error(
        app.call(
            Method::GET,
            "/v1/me",
            Some(short["key"].as_str().expect("key")),
            None,
        )
        .await,
        401,
        "api_key_expired",
    )
    .await;
    assert_eq!(app.audit_reasons("api_key_revoked").await, 1);
    assert_eq!(app.audit_reasons("api_key_expired").await, 1);
}

#[tokio::test]
async fn json_bodies_with_unknown_or_missing_fields_are_400() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let r = app
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"tenant": t.slug, "email": t.owner_email})),
        )
        .await;
    let body = expect_error(r, 400, "invalid_body").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("password"),
        "{body}"
    );
    let r = app
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"tenant": t.slug, "email": t.owner_email, "password": PASSWORD, "admin": true})),
        )
        .await;
    let body = expect_error(r, 400, "invalid_body").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("unknown field"),
        "{body}"
    );
    let r = app
        .client
        .post(format!("{}/v1/auth/login", app.address))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    expect_error(r, 400, "invalid_json").await;
    let r = app
        .client
        .post(format!("{}/v1/auth/login", app.address))
        .body("tenant=x")
        .send()
        .await
        .expect("send");
    expect_error(r, 415, "unsupported_media_type").await;
    expect_error(
        app.login(&t.slug, "not-an-email", PASSWORD).await,
        400,
        "invalid_email",
    )
    .await;
}
