//! Authentication: login, throttle, refresh rotation and re-use, logout, keys, and every
//! malformed or hostile credential — each answered with its code and audited.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use docket_platform::identity::jwt::{self, Claims};
use docket_platform::identity::keyring::KeyRing;
use docket_tests::actors::{PASSWORD, expect_error};
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};

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
    // One event per account and window, not per attempt: the owner's four failures, the
    // unknown account's and the unknown tenant's; the lock and the first attempt refused
    // while locked.
    assert_eq!(app.audit_reasons("invalid_credentials").await, 3);
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
