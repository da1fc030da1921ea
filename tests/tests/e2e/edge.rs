//! The HTTP edge: refused text, duplicate credentials, error bodies for every refusal the
//! router itself makes, body limits and the headers every response carries.

use docket_tests::actors::expect_error;
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn nul_bytes_are_refused_with_400_wherever_they_arrive() {
    let app = spawn_app().await;
    // A plan with bulk imports: the body of an import is read only when the plan has them.
    let t = app.create_tenant_on("acme", "business", "shared").await;
    let owner = app.owner_token(&t).await;
    let op = app.operator_token().await;

    // Unauthenticated JSON (it used to reach PostgreSQL and answer 500).
    let body = json!({"tenant": "x\u{0}y", "email": "a@b.example.com", "password": "pw"});
    let resp = app.call(Method::POST, "/v1/auth/login", None, Some(body)).await;
    expect_error(resp, 400, "invalid_text").await;
    // In a query string, percent-encoded.
    let resp = app
        .call(Method::GET, "/v1/audit-events?action=%00", Some(&owner), None)
        .await;
    expect_error(resp, 400, "invalid_text").await;
    let resp = app
        .call(Method::POST, "/v1/imports?filename=a%00b.zip", Some(&owner), None)
        .await;
    expect_error(resp, 400, "invalid_text").await;
    // Nested inside a body: an S3 source's region, an operator's plan change.
    let body = json!({"s3": {"bucket": "b", "prefix": "p", "region": "eu\u{0}"}});
    let resp = app
        .call(Method::POST, "/v1/imports", Some(&owner), Some(body))
        .await;
    expect_error(resp, 400, "invalid_text").await;
    let body = json!({"plan": "te\u{0}am", "reason": "upgrade"});
    let path = format!("/ops/tenants/{}/plan", t.id);
    let resp = app.call(Method::PUT, &path, Some(&op), Some(body)).await;
    expect_error(resp, 400, "invalid_text").await;
    // Other control characters too, and in a path segment.
    let resp = app
        .call(Method::GET, "/v1/documents/%1b%5b31m", Some(&owner), None)
        .await;
    expect_error(resp, 400, "invalid_text").await;

    // Ordinary text that merely looks unusual still passes.
    let resp = app
        .call(
            Method::GET,
            "/v1/audit-events?action=caf%C3%A9",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let owner = app.owner_token(&t).await;
    let resp = app
        .client
        .get(format!("{}/v1/me", app.address))
        .header("authorization", format!("Bearer {owner}"))
        .header("authorization", "Bearer someone-else")
        .send()
        .await
        .expect("send");
    expect_error(resp, 400, "duplicate_authorization").await;
    // One header still works.
    assert_eq!(
        app.call(Method::GET, "/v1/me", Some(&owner), None).await.status(),
        200
    );
}

#[tokio::test]
async fn the_router_answers_its_own_refusals_in_the_error_format() {
    let app = spawn_app().await;
    expect_error(app.get("/no-such-route").await, 404, "not_found").await;
    expect_error(app.get("/v1/documents/").await, 404, "not_found").await;
    let resp = app.call(Method::DELETE, "/v1/auth/login", None, None).await;
    expect_error(resp, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn an_oversized_json_body_is_413_too_large() {
    let app = spawn_app().await;
    let big = "x".repeat(3 * 1024 * 1024);
    let body = json!({"tenant": "acme", "email": "a@b.example.com", "password": big});
    let resp = app.call(Method::POST, "/v1/auth/login", None, Some(body)).await;
    expect_error(resp, 413, "too_large").await;
}

#[tokio::test]
async fn responses_are_not_sniffed_and_tokens_are_not_cached() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let resp = app.login(&t.slug, &t.owner_email, &t.password).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let tokens: serde_json::Value = resp.json().await.expect("json");

    let body = json!({"refresh_token": tokens["refresh_token"]});
    let resp = app.call(Method::POST, "/v1/auth/refresh", None, Some(body)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");

    let access = tokens["access_token"].as_str().expect("token");
    let body = json!({"name": "ci", "role": "member"});
    let resp = app
        .call(Method::POST, "/v1/api-keys", Some(access), Some(body))
        .await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["cache-control"], "no-store");

    // Errors and unauthenticated answers carry them too.
    let resp = app.get("/no-such-route").await;
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let resp = app.get("/healthz").await;
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
}
