//! Authentication: login, throttle, refresh rotation and re-use, logout, keys, and every
//! malformed or hostile credential — each answered with its code and audited.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use docket_platform::identity::jwt::{self, Claims};
use docket_platform::identity::keyring::{self, KeyRing};
use docket_tests::actors::{PASSWORD, expect_error};
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn login_me_refresh_logout() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let tokens = app.tokens(&t.slug, &t.owner_email).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    let access = tokens["access_token"].as_str().expect("access");
    let me: Value = app
        .call(Method::GET, "/v1/me", Some(access), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["tenant"]["id"], t.id.to_string());
    assert_eq!(me["role"], "owner");
    assert_eq!(me["principal"]["user"]["email"], t.owner_email);

    // Refresh rotates: a new refresh token, and the new access token works.
    let rt1 = tokens["refresh_token"].as_str().expect("refresh").to_owned();
    let resp = app
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": rt1})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let rotated: Value = resp.json().await.expect("json");
    let rt2 = rotated["refresh_token"].as_str().expect("refresh").to_owned();
    assert_ne!(rt1, rt2);
    let resp = app
        .call(
            Method::GET,
            "/v1/me",
            Some(rotated["access_token"].as_str().expect("a")),
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);

    // Logout revokes the family: the current refresh token stops working.
    let resp = app
        .call(
            Method::POST,
            "/v1/auth/logout",
            None,
            Some(json!({"refresh_token": rt2})),
        )
        .await;
    assert_eq!(resp.status(), 204);
    let resp = app
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": rt2})),
        )
        .await;
    expect_error(resp, 401, "invalid_refresh_token").await;

    let chain = docketctl::audit_verify(&app.control, Some(t.id))
        .await
        .expect("verify");
    assert_eq!(chain["ok"], true, "{chain}");
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events WHERE tenant_id = $1 ORDER BY seq")
            .bind(t.id)
            .fetch_all(app.control.pool())
            .await
            .expect("actions");
    for a in ["tenant.create", "auth.login", "auth.refresh", "auth.logout"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let tokens = app.tokens(&t.slug, &t.owner_email).await;
    let rt1 = tokens["refresh_token"].as_str().expect("rt").to_owned();
    let rotated: Value = app
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": rt1})),
        )
        .await
        .json()
        .await
        .expect("json");
    let rt2 = rotated["refresh_token"].as_str().expect("rt").to_owned();
    // The thief replays the spent token …
    let resp = app
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": rt1})),
        )
        .await;
    expect_error(resp, 401, "refresh_token_reused").await;
    // … and the legitimate holder's newer token is dead too.
    let resp = app
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": rt2})),
        )
        .await;
    expect_error(resp, 401, "invalid_refresh_token").await;
    assert_eq!(app.audit_reasons("refresh_token_reused").await, 1);
    // A new login starts a fresh family that works.
    let fresh = app.tokens(&t.slug, &t.owner_email).await;
    let resp = app
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": fresh["refresh_token"]})),
        )
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn wrong_passwords_are_throttled_per_account() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    for _ in 0..4 {
        expect_error(
            app.login(&t.slug, &t.owner_email, "wrong password here").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    // The 5th failure (DOCKET_LOGIN_MAX_FAILURES default) locks the account …
    let resp = app.login(&t.slug, &t.owner_email, "wrong password here").await;
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!((1..=300).contains(&retry));
    expect_error(resp, 429, "login_throttled").await;
    // … even for the right password, until the lockout ends.
    expect_error(
        app.login(&t.slug, &t.owner_email, PASSWORD).await,
        429,
        "login_throttled",
    )
    .await;
    // Unknown accounts and unknown tenants look exactly like wrong passwords.
    expect_error(
        app.login(&t.slug, "nobody@example.com", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    expect_error(
        app.login("no-such-tenant", &t.owner_email, PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert!(app.audit_reasons("invalid_credentials").await >= 6);
    assert_eq!(app.audit_reasons("login_throttled").await, 2);
    // No email address is stored in any audit row.
    let leaked: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM audit_events WHERE row_to_json(audit_events)::text LIKE '%example.com%')
              + (SELECT count(*) FROM platform_audit_events WHERE row_to_json(platform_audit_events)::text LIKE '%example.com%')",
    )
    .fetch_one(app.control.pool())
    .await
    .expect("scan");
    assert_eq!(leaked, 0, "emails must be pseudonymized in audit rows");
}

#[tokio::test]
async fn malformed_and_hostile_credentials_are_refused_with_codes() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let good = app.owner_token(&t).await;
    let send = |header: Option<&'static str>, token: Option<String>| {
        let mut req = app.client.get(format!("{}/v1/me", app.address));
        if let Some(h) = header {
            req = req.header("authorization", h);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let r = send(None, None).await.expect("send");
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"docket\"");
    expect_error(r, 401, "missing_credentials").await;
    expect_error(
        send(Some("Basic dXNlcjpwYXNz"), None).await.expect("send"),
        401,
        "invalid_authorization_header",
    )
    .await;
    expect_error(
        send(Some("Bearer"), None).await.expect("send"),
        401,
        "invalid_authorization_header",
    )
    .await;
    expect_error(
        send(None, Some("garbage".into())).await.expect("send"),
        401,
        "invalid_token",
    )
    .await;
    expect_error(
        send(None, Some("a.b.c".into())).await.expect("send"),
        401,
        "invalid_token",
    )
    .await;

    // alg: none with the real claims.
    let claims_part = good.split('.').nth(1).expect("claims");
    let none = format!(
        "{}.{claims_part}.",
        B64.encode(br#"{"alg":"none","typ":"JWT","kid":"x"}"#)
    );
    expect_error(
        send(None, Some(none)).await.expect("send"),
        401,
        "unsupported_token_algorithm",
    )
    .await;
    // HS256 "signed" with the public key (algorithm confusion).
    let hs = format!(
        "{}.{claims_part}.c2ln",
        B64.encode(br#"{"alg":"HS256","typ":"JWT","kid":"x"}"#)
    );
    expect_error(
        send(None, Some(hs)).await.expect("send"),
        401,
        "unsupported_token_algorithm",
    )
    .await;

    // A well-formed token signed by a key this deployment never issued.
    let claims: Claims = serde_json::from_slice(&B64.decode(claims_part).expect("b64")).expect("claims");
    let stranger = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    expect_error(
        send(None, Some(jwt::sign("stranger-kid", &stranger, &claims)))
            .await
            .expect("send"),
        401,
        "unknown_signing_key",
    )
    .await;
    // Right kid, wrong key.
    let kid = jwt::header_kid(&good).expect("kid");
    expect_error(
        send(None, Some(jwt::sign(&kid, &stranger, &claims)))
            .await
            .expect("send"),
        401,
        "invalid_signature",
    )
    .await;

    // Expired, signed with the real key.
    let ring = KeyRing::new(
        app.db.clone(),
        app.config.master_key.clone(),
        app.config.auth.key_rotation_window,
    );
    let (kid, key) = ring.signer().await.expect("signer");
    let mut expired = claims.clone();
    expired.exp = chrono::Utc::now().timestamp() - 1;
    expect_error(
        send(None, Some(jwt::sign(&kid, &key, &expired)))
            .await
            .expect("send"),
        401,
        "token_expired",
    )
    .await;

    for code in [
        "missing_credentials",
        "invalid_authorization_header",
        "invalid_token",
        "unsupported_token_algorithm",
        "unknown_signing_key",
        "invalid_signature",
        "token_expired",
    ] {
        assert!(app.audit_reasons(code).await >= 1, "{code} audited");
    }
    let still: Value = app
        .call(Method::GET, "/v1/me", Some(&good), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(still["role"], "owner", "the good token still works");
}

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
