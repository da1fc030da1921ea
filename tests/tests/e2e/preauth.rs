//! Endpoints anyone can call, and refusals that repeat: limited per client address before
//! any database work, indistinguishable for unknown organisations, throttled for operators,
//! and audited once per window instead of once per attempt.

use docket_tests::actors::{PASSWORD, expect_error};
use docket_tests::{spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn sign_in_requests_are_limited_per_client_address() {
    let app = spawn_app_with(&[("DOCKET_PREAUTH_PER_MINUTE", "6"), ("DOCKET_PREAUTH_BURST", "5")]).await;
    let t = app.create_tenant("acme").await;
    let mut statuses = vec![];
    for n in 0..12 {
        // A different account each time: the per-account throttle is not what is tested.
        let r = app
            .login(
                &t.slug,
                &format!("u{n}@acme.example.com"),
                "wrong password, wrong",
            )
            .await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            expect_error(r, 429, "too_many_requests").await;
        }
    }
    assert!(statuses[..5].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[6..].iter().all(|s| *s == 429), "{statuses:?}");
    // Refused before anything else: the limiter's refusals are audited once per window.
    assert_eq!(app.audit_reasons("too_many_requests").await, 1);
    // The refresh and operator endpoints share the address's budget.
    let r = app
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": "rt_x"})),
        )
        .await;
    expect_error(r, 429, "too_many_requests").await;
    let r = app
        .call(
            Method::POST,
            "/ops/auth/login",
            None,
            Some(json!({"email": "op@docket.example.com", "password": PASSWORD})),
        )
        .await;
    expect_error(r, 429, "too_many_requests").await;
}

#[tokio::test]
async fn an_unknown_organisation_throttles_like_a_known_one() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let mut known = vec![];
    let mut unknown = vec![];
    for _ in 0..7 {
        let r = app
            .login(&t.slug, &t.owner_email, "not the password at all")
            .await;
        known.push(r.status().as_u16());
        let r = app
            .login("no-such-org-1234", &t.owner_email, "not the password at all")
            .await;
        unknown.push((
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.expect("json")["error"]["code"].clone(),
        ));
    }
    let unknown_statuses: Vec<u16> = unknown.iter().map(|u| u.0).collect();
    assert_eq!(known, unknown_statuses, "the same answers, attempt by attempt");
    assert_eq!(known, vec![401, 401, 401, 401, 429, 429, 429]);
    assert_eq!(unknown[6].1, "login_throttled");
}

#[tokio::test]
async fn repeated_failed_logins_are_one_audit_event_per_window() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    for _ in 0..4 {
        let r = app
            .login(&t.slug, &t.owner_email, "not the password at all")
            .await;
        assert_eq!(r.status(), 401);
    }
    assert_eq!(
        app.audit_count(t.id, "auth.login", Some("invalid_credentials"))
            .await,
        1
    );
    // The fifth locks the account: a different event, recorded once; attempts while locked
    // add nothing.
    for _ in 0..6 {
        let r = app
            .login(&t.slug, &t.owner_email, "not the password at all")
            .await;
        assert_eq!(r.status(), 429);
    }
    assert_eq!(
        app.audit_count(t.id, "auth.login", Some("login_throttled")).await,
        2
    );
}

#[tokio::test]
async fn operator_logins_are_throttled_like_users() {
    let app = spawn_app().await;
    let email = "ops-throttle@docket.example.com";
    docketctl::operator_create(&app.control, &app.auditor(), email, PASSWORD)
        .await
        .expect("operator");
    let attempt = |password: &'static str| {
        app.call(
            Method::POST,
            "/ops/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
    };
    for _ in 0..4 {
        expect_error(
            attempt("wrong password entirely").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    expect_error(attempt("wrong password entirely").await, 429, "login_throttled").await;
    // Locked: even the right password waits out the lockout.
    expect_error(attempt(PASSWORD).await, 429, "login_throttled").await;
}

#[tokio::test]
async fn a_viewer_looping_on_a_forbidden_endpoint_is_rate_limited_before_it_is_audited() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let owner = app.owner_token(&t).await;
    let (_, viewer) = app.user_with_role(&t, &owner, "viewer").await;
    let mut limited = 0;
    for _ in 0..150 {
        let r = app
            .call(Method::GET, "/v1/authz/users.manage", Some(&viewer), None)
            .await;
        match r.status().as_u16() {
            403 => {}
            429 => limited += 1,
            s => panic!("unexpected {s}"),
        }
    }
    assert!(
        limited >= 30,
        "the admin class's burst is 100 on this plan: {limited} limited"
    );
    // Only the requests the limiter let through reached the capability check (and its
    // audit event); the limited ones were refused before it.
    let forbidden = app.audit_count(t.id, "authz.check", Some("forbidden")).await;
    assert_eq!(
        forbidden,
        150 - limited,
        "{forbidden} refusals audited, {limited} limited"
    );
    assert_eq!(
        app.audit_count(t.id, "ratelimit.check", Some("rate_limited"))
            .await,
        1
    );
}

/// Garbage tokens cost their sender nothing: a flood of them is one platform audit event
/// per address and code per window, not one per request (each would also queue on the
/// platform chain's lock).
#[tokio::test]
async fn a_flood_of_garbage_tokens_is_one_platform_audit_event() {
    let app = spawn_app().await;
    let count = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM platform_audit_events WHERE action = 'auth.authenticate' AND outcome = 'refused'",
        )
        .fetch_one(app.control.pool())
        .await
        .expect("count")
    };
    let before = count().await;
    let mut codes = std::collections::BTreeSet::new();
    for n in 0..40 {
        let r = app
            .call(Method::GET, "/v1/me", Some(&format!("garbage-{n}")), None)
            .await;
        let e = expect_error(r, 401, "invalid_token").await;
        codes.insert(e["error"]["code"].to_string());
    }
    assert_eq!(codes.len(), 1, "every request is still refused the same way");
    assert_eq!(count().await - before, 1, "recorded once for the window");
    // A different refusal from the same address is its own record.
    let r = app
        .client
        .get(format!("{}/v1/me", app.address))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    assert_eq!(count().await - before, 2);
}
