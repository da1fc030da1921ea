//! Panel sessions over plain HTTP: how they end (idle, absolute expiry, a disabled
//! operator, signing in again), that a CSRF token belongs to its own session, that htmx's
//! background refresh neither keeps a session alive nor swaps the sign-in page into a
//! table, and that the panel's read pages show real rows by the `/metrics` rules.

use crate::panel_forms::{client, get, operator, post, refused, session, sign_in};
use docket_tests::spawn_app;
use reqwest::header::{COOKIE, SET_COOKIE};

#[tokio::test]
async fn sessions_end_when_idle_when_expired_and_when_the_operator_is_disabled() {
    let app = spawn_app().await;
    let email = operator(&app).await;
    let s = session(&app, &email).await;
    assert_eq!(get(&app, "/ops/panel/jobs", Some(&s.cookie)).await.status(), 200);
    sqlx::query("UPDATE operator_sessions SET last_seen_at = now() - interval '31 minutes'")
        .execute(app.control.pool())
        .await
        .expect("age");
    let r = get(&app, "/ops/panel/jobs", Some(&s.cookie)).await;
    assert_eq!(r.status(), 303, "idle for longer than the limit");
    assert!(
        r.headers()[SET_COOKIE]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0")
    );

    // In use all along, but past its absolute expiry.
    let s = session(&app, &email).await;
    sqlx::query(
        "UPDATE operator_sessions SET expires_at = now() - interval '1 second' WHERE ended_at IS NULL",
    )
    .execute(app.control.pool())
    .await
    .expect("expire");
    assert_eq!(get(&app, "/ops/panel/jobs", Some(&s.cookie)).await.status(), 303);

    let s = session(&app, &email).await;
    sqlx::query("UPDATE operators SET status = 'disabled' WHERE lower(email) = lower($1)")
        .bind(&email)
        .execute(app.control.pool())
        .await
        .expect("disable");
    assert_eq!(get(&app, "/ops/panel/jobs", Some(&s.cookie)).await.status(), 303);
    let r = post(
        &app,
        "/ops/panel/logout",
        &s.cookie,
        Some(&app.address),
        &[("csrf", &s.csrf)],
    )
    .await;
    refused(r, 401, "session_required").await;
    // Ended for good: enabling the account again does not revive the cookie.
    sqlx::query("UPDATE operators SET status = 'active' WHERE lower(email) = lower($1)")
        .bind(&email)
        .execute(app.control.pool())
        .await
        .expect("enable");
    assert_eq!(get(&app, "/ops/panel/jobs", Some(&s.cookie)).await.status(), 303);
}

#[tokio::test]
async fn a_csrf_token_opens_only_its_own_session_and_signing_in_again_ends_the_old_one() {
    let app = spawn_app().await;
    let (one, two) = (operator(&app).await, operator(&app).await);
    let (a, b) = (session(&app, &one).await, session(&app, &two).await);
    let t = app.create_tenant("csrf").await;
    let suspend = format!("/ops/panel/tenants/{}/suspend", t.id);
    let me = Some(app.address.as_str());
    let r = post(
        &app,
        &suspend,
        &b.cookie,
        me,
        &[("csrf", &a.csrf), ("reason", "r")],
    )
    .await;
    refused(r, 403, "csrf_token_invalid").await;

    // The same browser signs in again: the session it came with ends.
    let r = client()
        .post(format!("{}/ops/panel/login", app.address))
        .header(COOKIE, &a.cookie)
        .header("origin", &app.address)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email={}&password={}",
            urlencode(&one),
            urlencode(docket_tests::actors::PASSWORD)
        ))
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 303);
    assert_eq!(
        get(&app, "/ops/panel/jobs", Some(&a.cookie)).await.status(),
        303,
        "the old session ended"
    );
    let starts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platform_audit_events WHERE action = 'ops.panel.session_start' AND target LIKE 'session:%'",
    )
    .fetch_one(app.control.pool())
    .await
    .expect("audit");
    assert_eq!(starts, 3, "each session's start is audited with its id");
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn htmx_refreshes_neither_keep_a_session_alive_nor_swap_in_the_sign_in_page() {
    let app = spawn_app().await;
    let email = operator(&app).await;
    let s = session(&app, &email).await;
    sqlx::query("UPDATE operator_sessions SET last_seen_at = now() - interval '10 minutes'")
        .execute(app.control.pool())
        .await
        .expect("age");
    let poll = || {
        client()
            .get(format!("{}/ops/panel/imports/rows", app.address))
            .header(COOKIE, &s.cookie)
            .header("hx-request", "true")
            .send()
    };
    assert_eq!(poll().await.expect("poll").status(), 200);
    let idle: f64 =
        sqlx::query_scalar("SELECT extract(epoch FROM now() - last_seen_at)::float8 FROM operator_sessions")
            .fetch_one(app.control.pool())
            .await
            .expect("last seen");
    assert!(
        idle > 590.0,
        "a background refresh is not activity (idle {idle} s)"
    );
    sqlx::query("UPDATE operator_sessions SET ended_at = now()")
        .execute(app.control.pool())
        .await
        .expect("end");
    let r = poll().await.expect("poll");
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["hx-redirect"], "/ops/panel/login");
}

#[tokio::test]
async fn form_text_that_docket_refuses_everywhere_and_missing_fields_are_400s() {
    let app = spawn_app().await;
    let email = operator(&app).await;
    let s = session(&app, &email).await;
    let t = app.create_tenant("text").await;
    let me = Some(app.address.as_str());
    let plan = format!("/ops/panel/tenants/{}/plan", t.id);
    refused(
        post(&app, &plan, &s.cookie, me, &[("csrf", &s.csrf), ("plan", "a\0b")]).await,
        400,
        "invalid_text",
    )
    .await;
    let r = post(
        &app,
        "/ops/panel/switches",
        &s.cookie,
        me,
        &[
            ("csrf", &s.csrf),
            ("tenant", "x\u{1b}y"),
            ("class", "query"),
            ("reason", "r"),
        ],
    )
    .await;
    refused(r, 400, "invalid_text").await;
    refused(
        post(&app, &plan, &s.cookie, me, &[("csrf", &s.csrf)]).await,
        400,
        "invalid_form",
    )
    .await;
    let r = get(&app, "/ops/panel/tenants?q=a&q=b", Some(&s.cookie)).await;
    refused(r, 400, "invalid_query").await;
    // An API reason with a control character is refused by the shared function too.
    let op = app.operator_token().await;
    let r = app
        .call(
            reqwest::Method::POST,
            &format!("/ops/tenants/{}/suspend", t.id),
            Some(&op),
            Some(serde_json::json!({"reason": "   "})),
        )
        .await;
    docket_tests::actors::expect_error(r, 400, "invalid_reason").await;
    let _ = sign_in;
}

#[tokio::test]
async fn the_jobs_page_lists_failed_and_stalled_pipeline_jobs_with_their_errors() {
    let app = spawn_app().await;
    let email = operator(&app).await;
    let s = session(&app, &email).await;
    let t = app.create_tenant("jobs").await;
    for (kind, status, code, age) in [
        ("parse", "failed", Some("pdf_encrypted"), "1 minute"),
        ("embed", "running", None, "2 hours"),
        ("answer", "running", None, "2 hours"),
        ("chunk", "running", None, "10 seconds"),
    ] {
        sqlx::query(
            "INSERT INTO jobs (tenant_id, kind, status, attempts, error_code, error_message, started_at, updated_at)
             VALUES ($1, $2, $3, 1, $4, CASE WHEN $4 IS NULL THEN NULL ELSE 'the PDF is encrypted' END,
                     now() - $5::interval, now() - $5::interval)",
        )
        .bind(t.id)
        .bind(kind)
        .bind(status)
        .bind(code)
        .bind(age)
        .execute(app.control.pool())
        .await
        .expect("job");
    }
    let html = get(&app, "/ops/panel/jobs", Some(&s.cookie))
        .await
        .text()
        .await
        .expect("html");
    assert!(html.contains("pdf_encrypted: the PDF is encrypted"), "{html}");
    assert!(
        html.contains("<td>embed</td><td class=\"num\">0</td><td class=\"num\">1</td>"),
        "embed counted as stalled: {html}"
    );
    assert!(!html.contains("<td>answer</td>"), "not a pipeline stage");
    assert!(
        !html.contains("<td>chunk</td>"),
        "running for seconds is not stalled"
    );
}
