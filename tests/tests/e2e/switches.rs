//! Incident switches: global and per-tenant, expiry, lifting, audit with the switch id, and
//! failing closed when the switch state cannot be read.

use docket_tests::actors::expect_error;
use docket_tests::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Polls until `path` answers `status` for `token` (switches apply within a second).
async fn until_status(app: &TestApp, token: &str, path: &str, status: u16) -> reqwest::Response {
    until_status_within(app, token, path, status, Duration::from_millis(1500)).await
}

async fn until_status_within(
    app: &TestApp,
    token: &str,
    path: &str,
    status: u16,
    limit: Duration,
) -> reqwest::Response {
    let started = Instant::now();
    loop {
        let r = app.call(Method::GET, path, Some(token), None).await;
        if r.status().as_u16() == status {
            return r;
        }
        assert!(
            started.elapsed() < limit,
            "{path} still {} after {limit:?}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post_switch(app: &TestApp, op: &str, body: Value) -> reqwest::Response {
    app.call(Method::POST, "/ops/switches", Some(op), Some(body))
        .await
}

#[tokio::test]
async fn global_and_tenant_switches_refuse_with_the_reason_until_lifted_or_expired() {
    let app = spawn_app().await;
    let op = app.operator_token().await;
    let (a, b) = (app.create_tenant("alpha").await, app.create_tenant("beta").await);
    let (ta, tb) = (app.owner_token(&a).await, app.owner_token(&b).await);
    assert_eq!(
        app.call(Method::GET, "/v1/documents", Some(&ta), None)
            .await
            .status(),
        200
    );

    // Per tenant: only alpha's reads stop.
    let r = post_switch(
        &app,
        &op,
        json!({"class": "read", "tenant_id": a.id, "reason": "investigating abuse"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let sw: Value = r.json().await.expect("json");
    let body = expect_error(
        until_status(&app, &ta, "/v1/documents", 503).await,
        503,
        "disabled_by_operator",
    )
    .await;
    assert!(body.to_string().contains("investigating abuse"), "{body}");
    assert_eq!(
        app.call(Method::GET, "/v1/documents", Some(&tb), None)
            .await
            .status(),
        200
    );
    let audited: (String, Value) = sqlx::query_as(
        "SELECT reason, details FROM audit_events WHERE tenant_id = $1 AND action = 'switch.check' LIMIT 1",
    )
    .bind(a.id)
    .fetch_one(app.control.pool())
    .await
    .expect("audited");
    assert_eq!(audited.0, "disabled_by_operator");
    assert_eq!(audited.1["switch"], sw["id"]);

    // Lifted: alpha reads again.
    let id = sw["id"].as_str().expect("id");
    let r = app
        .call(Method::DELETE, &format!("/ops/switches/{id}"), Some(&op), None)
        .await;
    assert_eq!(r.status(), 204);
    until_status(&app, &ta, "/v1/documents", 200).await;
    let r = app
        .call(Method::DELETE, &format!("/ops/switches/{id}"), Some(&op), None)
        .await;
    assert_eq!(r.status(), 404, "already lifted");

    // Global, expiring: everyone's admin requests stop, then come back by themselves.
    let r = post_switch(
        &app,
        &op,
        json!({"class": "admin", "reason": "maintenance", "expires_in_secs": 2}),
    )
    .await;
    assert_eq!(r.status(), 201);
    until_status(&app, &ta, "/v1/users", 503).await;
    until_status(&app, &tb, "/v1/users", 503).await;
    assert_eq!(
        app.call(Method::GET, "/v1/documents", Some(&tb), None)
            .await
            .status(),
        200,
        "other classes run"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    until_status(&app, &tb, "/v1/users", 200).await;
}

#[tokio::test]
async fn switches_refuse_bad_input_and_tenant_tokens() {
    let app = spawn_app().await;
    let op = app.operator_token().await;
    let t = app.create_tenant("alpha").await;
    let tenant_token = app.owner_token(&t).await;
    for (body, code) in [
        (json!({"class": "everything", "reason": "x"}), "invalid_class"),
        (json!({"class": "read", "reason": " "}), "invalid_reason"),
        (
            json!({"class": "read", "reason": "é".repeat(501)}),
            "invalid_reason",
        ),
        (json!({"class": "read", "reason": "tab\there"}), "invalid_reason"),
        // JSON's 1.0 is the integer 1 (JSON Schema): read as one, then judged as one.
        (
            json!({"class": "read", "reason": "x", "expires_in_secs": 0.0}),
            "invalid_expiry",
        ),
        (
            json!({"class": "read", "reason": "x", "expires_in_secs": 0}),
            "invalid_expiry",
        ),
        // Past a year the database's interval would overflow: a 400, not a 500.
        (
            json!({"class": "read", "reason": "x", "expires_in_secs": u64::MAX}),
            "invalid_expiry",
        ),
    ] {
        expect_error(
            app.call(Method::POST, "/ops/switches", Some(&op), Some(body))
                .await,
            400,
            code,
        )
        .await;
    }
    // The reason's limit is in characters: 500 two-byte ones are accepted.
    let wide =
        json!({"class": "read", "reason": "é".repeat(500), "expires_in_secs": 60.0, "tenant_id": t.id});
    let r = app
        .call(Method::POST, "/ops/switches", Some(&op), Some(wide))
        .await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let unknown = json!({"class": "read", "reason": "x", "tenant_id": uuid::Uuid::new_v4()});
    expect_error(
        app.call(Method::POST, "/ops/switches", Some(&op), Some(unknown))
            .await,
        404,
        "not_found",
    )
    .await;
    let r = app
        .call(
            Method::POST,
            "/ops/switches",
            Some(&tenant_token),
            Some(json!({"class": "read", "reason": "x"})),
        )
        .await;
    assert_eq!(r.status(), 401, "a tenant token is never an operator's");
}

#[tokio::test]
async fn requests_fail_closed_when_the_switches_cannot_be_read() {
    let app = spawn_app().await;
    let t = app.create_tenant("alpha").await;
    let token = app.owner_token(&t).await;
    assert_eq!(
        app.call(Method::GET, "/v1/documents", Some(&token), None)
            .await
            .status(),
        200
    );
    // The service role loses access to the switch table (as if it were unreachable).
    let owner = app.pool_as("docket_owner").await;
    sqlx::query("REVOKE SELECT ON incident_switches FROM docket_app")
        .execute(&owner)
        .await
        .expect("revoke");
    // Stale after 2 s of failed refreshes: refused from then on.
    let r = until_status_within(&app, &token, "/v1/documents", 503, Duration::from_secs(4)).await;
    expect_error(r, 503, "switches_unavailable").await;
    sqlx::query("GRANT SELECT ON incident_switches TO docket_app")
        .execute(&owner)
        .await
        .expect("grant");
    until_status(&app, &token, "/v1/documents", 200).await;
}

#[tokio::test]
async fn docketctl_sets_lists_and_lifts_switches() {
    let app = spawn_app().await;
    let t = app.create_tenant("alpha").await;
    let token = app.owner_token(&t).await;
    let sw = docketctl::switch_set(
        &app.control,
        &app.auditor(),
        "read",
        Some(&t.slug),
        "disk full",
        None,
    )
    .await
    .expect("set");
    let listed = docketctl::switch_list(&app.control).await.expect("list");
    assert_eq!(listed["switches"][0]["id"], sw["id"]);
    until_status(&app, &token, "/v1/documents", 503).await;
    let id: uuid::Uuid = sw["id"].as_str().expect("id").parse().expect("uuid");
    docketctl::switch_lift(&app.control, &app.auditor(), id)
        .await
        .expect("lift");
    until_status(&app, &token, "/v1/documents", 200).await;
    let again = docketctl::switch_lift(&app.control, &app.auditor(), id)
        .await
        .expect_err("lifted");
    assert!(again.to_string().contains("no active switch"), "{again}");
    let bad = docketctl::switch_set(&app.control, &app.auditor(), "all", None, "x", None)
        .await
        .expect_err("bad class");
    assert!(bad.to_string().contains("unknown endpoint class"), "{bad}");
    let bad = docketctl::switch_set(&app.control, &app.auditor(), "read", None, "  ", None)
        .await
        .expect_err("no reason");
    assert!(bad.to_string().contains("--reason"), "{bad}");
}
