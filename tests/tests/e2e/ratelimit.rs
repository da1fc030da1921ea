//! Rate limits per tenant and endpoint class (GCRA in Redis): bursts, headers, overrides and
//! their expiry, plan changes, refusals in the audit trail, and what happens without Redis.

use docket_tests::actors::expect_error;
use docket_tests::{TestApp, spawn_app, spawn_app_with};
use reqwest::{Method, Response};
use std::time::Duration;

fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn set_override(app: &TestApp, slug: &str, class: &str, per_minute: u32, burst: u32, secs: u64) {
    let o = docketctl::RateOverride {
        class: class.into(),
        per_minute,
        burst,
        expires_in: Duration::from_secs(secs),
        reason: "test".into(),
    };
    docketctl::tenant_rate_override(&app.control, &app.auditor(), slug, &o)
        .await
        .expect("override");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_ten_times_the_limit_lets_exactly_the_burst_through() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let token = app.owner_token(&t).await;
    let other = app.create_tenant("other").await;
    let other_token = app.owner_token(&other).await;
    // 60 per minute (one token a second), burst 5.
    set_override(&app, &t.slug, "read", 60, 5, 3600).await;

    let requests = (0..50).map(|_| app.call(Method::GET, "/v1/documents", Some(&token), None));
    let responses = futures::future::join_all(requests).await;
    let mut accepted = 0;
    let mut refused = 0;
    let mut retry_after = 0;
    for r in &responses {
        assert!(!r.status().is_server_error(), "never a 5xx: {}", r.status());
        assert_eq!(header(r, "ratelimit-limit").as_deref(), Some("5"));
        match r.status().as_u16() {
            200 => accepted += 1,
            429 => {
                refused += 1;
                assert_eq!(header(r, "ratelimit-remaining").as_deref(), Some("0"));
                assert!(header(r, "ratelimit-reset").is_some());
                retry_after = retry_after.max(
                    header(r, "retry-after")
                        .expect("Retry-After")
                        .parse::<u64>()
                        .expect("secs"),
                );
            }
            s => panic!("unexpected status {s}"),
        }
    }
    assert!(
        (5..=6).contains(&accepted),
        "{accepted} accepted of 50 with burst 5"
    );
    assert_eq!(accepted + refused, 50);
    let body = expect_error(
        app.call(Method::GET, "/v1/documents", Some(&token), None).await,
        429,
        "rate_limited",
    )
    .await;
    assert!(body.to_string().contains("60 per minute"), "{body}");

    // Another tenant's bucket is its own.
    let r = app
        .call(Method::GET, "/v1/documents", Some(&other_token), None)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "ratelimit-limit").as_deref(),
        Some("200"),
        "team plan burst"
    );

    // After Retry-After, requests pass again.
    tokio::time::sleep(Duration::from_secs(retry_after.max(1))).await;
    let r = app.call(Method::GET, "/v1/documents", Some(&token), None).await;
    assert_eq!(r.status(), 200);

    // The refusals are in the tenant's audit trail with their rule: once per limited window
    // (a flood of 429s must not fill the chain), not once per request.
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = 'ratelimit.check'
         AND outcome = 'refused' AND reason = 'rate_limited'",
    )
    .bind(t.id)
    .fetch_one(app.control.pool())
    .await
    .expect("audit");
    assert!(refused > 1);
    assert_eq!(audited, 1, "{refused} refusals, one window");
}

#[tokio::test]
async fn overrides_expire_and_plan_changes_apply_on_the_next_request() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let token = app.owner_token(&t).await;
    set_override(&app, &t.slug, "admin", 60, 1, 2).await;
    assert_eq!(
        app.call(Method::GET, "/v1/users", Some(&token), None)
            .await
            .status(),
        200
    );
    let r = app.call(Method::GET, "/v1/users", Some(&token), None).await;
    assert_eq!(r.status(), 429, "burst 1 while the override lasts");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let r = app.call(Method::GET, "/v1/users", Some(&token), None).await;
    assert_eq!(r.status(), 200, "the plan's limit is back");
    assert_eq!(header(&r, "ratelimit-limit").as_deref(), Some("100"));

    let out = docketctl::tenant_plan(&app.control, &app.auditor(), &t.slug, "free")
        .await
        .expect("plan change");
    assert_eq!(out["from"], "team");
    let r = app.call(Method::GET, "/v1/documents", Some(&token), None).await;
    assert_eq!(
        header(&r, "ratelimit-limit").as_deref(),
        Some("30"),
        "free plan's read burst"
    );
    let changes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action IN ('tenant.plan_change', 'tenant.rate_override')",
    )
    .bind(t.id)
    .fetch_one(app.control.pool())
    .await
    .expect("audit");
    assert_eq!(changes, 2);
}

#[tokio::test]
async fn bad_operator_input_is_refused_with_a_sentence() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let bad = |class: &str, per_minute, burst, secs, reason: &str| docketctl::RateOverride {
        class: class.into(),
        per_minute,
        burst,
        expires_in: Duration::from_secs(secs),
        reason: reason.into(),
    };
    for (o, says) in [
        (bad("everything", 1, 1, 60, "r"), "unknown endpoint class"),
        (bad("read", 0, 1, 60, "r"), "at least 1"),
        (
            bad("read", 1, 1, 60, " "),
            "reason of 1-500 printable characters is required",
        ),
        (
            bad("read", 1, 1, 60, "line one\nline two"),
            "reason of 1-500 printable characters is required",
        ),
        (
            bad("read", 1, 1, 60, &"é".repeat(501)),
            "reason of 1-500 printable characters is required",
        ),
        (bad("read", 1, 1, 0, "r"), "expiry must be from 1 second"),
    ] {
        let err = docketctl::tenant_rate_override(&app.control, &app.auditor(), &t.slug, &o)
            .await
            .expect_err("refused");
        assert!(err.to_string().contains(says), "{err}");
    }
    // The limit is in characters: 500 two-byte characters are a valid reason.
    docketctl::tenant_rate_override(
        &app.control,
        &app.auditor(),
        &t.slug,
        &bad("read", 1, 1, 60, &"é".repeat(500)),
    )
    .await
    .expect("500 characters are within the limit, whatever their bytes");
    let err = docketctl::tenant_plan(&app.control, &app.auditor(), &t.slug, "platinum")
        .await
        .expect_err("no such plan");
    assert!(err.to_string().contains("no plan"), "{err}");
    let err = docketctl::tenant_plan(&app.control, &app.auditor(), "nobody", "team")
        .await
        .expect_err("no such tenant");
    assert!(err.to_string().contains("no tenant"), "{err}");
}

#[tokio::test]
async fn without_redis_reads_proceed_and_work_creating_requests_fail_closed() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let app = spawn_app_with(&[("DOCKET_REDIS_URL", "redis://127.0.0.1:1/0")]).await;
    let t = app.create_tenant("acme").await;
    let token = app.owner_token(&t).await;
    let r = app.call(Method::GET, "/v1/documents", Some(&token), None).await;
    assert_eq!(r.status(), 200, "reads are served from PostgreSQL");
    assert!(header(&r, "ratelimit-limit").is_none(), "no decision, no headers");
    let r = app
        .upload_raw(&token, "a.txt", b"A short agreement.".to_vec(), None)
        .await;
    let retry = header(&r, "retry-after");
    expect_error(r, 503, "rate_limiter_unavailable").await;
    assert_eq!(retry.as_deref(), Some("5"));
}
