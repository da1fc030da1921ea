//! Governance beyond rate limits: the monthly token quota (refused when used up, charged
//! from the ledger, never twice), per-plan upload and storage limits, input safety, the
//! order of the chain, and the operators' `/ops` plan and override endpoints.

use docket_platform::ids::QueryId;
use docket_platform::queries::job::AnswerJob;
use docket_tests::actors::expect_error;
use docket_tests::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// An operator's own plan: the team plan with `set` applied.
async fn plan_from_team(app: &TestApp, id: &str, set: &str) {
    let copy = format!(
        "INSERT INTO plans (id, name, price_cents_monthly, features, rate_limits, max_documents)
         SELECT '{id}', '{id}', 0, features, rate_limits, max_documents FROM plans WHERE id = 'team'"
    );
    let change = format!("UPDATE plans SET {set} WHERE id = '{id}'");
    for sql in [copy, change] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(app.control.pool())
            .await
            .expect("plan");
    }
}

async fn token_totals(app: &TestApp, t: docket_platform::ids::TenantId) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT COALESCE(sum(quantity), 0)::bigint FROM usage_events WHERE tenant_id = $1
                   AND kind IN ('query_tokens_in', 'query_tokens_out', 'embedding_tokens')),
                (SELECT COALESCE(sum(quantity), 0)::bigint FROM usage_monthly WHERE tenant_id = $1
                   AND kind IN ('query_tokens_in', 'query_tokens_out', 'embedding_tokens'))",
    )
    .bind(t)
    .fetch_one(app.control.pool())
    .await
    .expect("totals")
}

#[tokio::test]
async fn the_monthly_token_quota_refuses_when_used_up_and_charges_each_query_once() {
    let app = spawn_app().await;
    let (_worker, ctx, _store) = app.spawn_worker_with_handles().await;
    // A hard quota (no overage price) that one document and one question use up.
    plan_from_team(
        &app,
        "metered",
        "monthly_token_quota = 300, overage_cents_per_1k = NULL",
    )
    .await;
    let t = app.create_tenant_on("meter", "metered", "shared").await;
    let token = app.owner_token(&t).await;
    app.upload_ready(
        &token,
        "supply.txt",
        b"This Supply Agreement is governed by the laws of the State of Ohio. The Supplier delivers \
          widgets monthly and the Buyer pays within thirty days of each invoice."
            .to_vec(),
    )
    .await;
    let first = app
        .ask(&token, "Which law governs this agreement?", json!({}))
        .await;
    assert_eq!(first["status"], "answered", "{first}");
    let (ledger, monthly) = token_totals(&app, t.id).await;
    assert!(
        ledger < 300,
        "room left after the upload and one question: {ledger}"
    );
    let charged = first["usage"]["tokens_in"].as_i64().expect("in")
        + first["usage"]["tokens_out"].as_i64().expect("out");
    assert!(charged > 0);
    assert_eq!(ledger, monthly, "the monthly totals are the ledger's");

    // Use the rest up with more questions; the first one past the quota is refused.
    let mut refused = None;
    for i in 0..40 {
        let r = app
            .ask_raw(
                &token,
                &format!("Who pays the invoices, question {i}?"),
                json!({}),
                30,
            )
            .await;
        if r.status() == 429 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status(), 200);
    }
    let r = refused.expect("the quota ran out");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!(
        retry > 0 && retry <= 31 * 24 * 3600,
        "until the first of next month: {retry}"
    );
    let err = expect_error(r, 429, "quota_exceeded").await;
    assert!(err.to_string().contains("300 tokens a month"), "{err}");
    let up = app
        .upload_raw(
            &token,
            "more.txt",
            b"Another agreement of some length.".to_vec(),
            None,
        )
        .await;
    expect_error(up, 429, "quota_exceeded").await;
    assert!(app.audit_count(t.id, "quota.check", Some("quota_exceeded")).await >= 2);

    // The ledger's sum is what was charged; replaying an answered query's job charges nothing.
    let (ledger, monthly) = token_totals(&app, t.id).await;
    assert!(ledger >= 300 && ledger == monthly, "{ledger} / {monthly}");
    let id: QueryId = first["query_id"].as_str().expect("id").parse().expect("uuid");
    let job = AnswerJob {
        v: 1,
        tenant_id: t.id,
        query_id: id,
        request_id: None,
        actor: "system".into(),
    };
    for _ in 0..2 {
        docket_worker::jobs::answer::handle(
            job.clone(),
            apalis::prelude::Data::new(ctx.clone()),
            Default::default(),
        )
        .await
        .expect("replay is a no-op");
    }
    assert_eq!(
        token_totals(&app, t.id).await,
        (ledger, monthly),
        "no double charge"
    );
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM queries WHERE id = $1")
        .bind(id)
        .fetch_one(app.control.pool())
        .await
        .expect("attempts");
    assert_eq!(attempts, 1);

    // The monthly totals can be rebuilt from the ledger, exactly.
    let mut tx = ctx.db.begin_tenant(t.id).await.expect("tx");
    sqlx::query("UPDATE usage_monthly SET quantity = 0")
        .execute(tx.conn())
        .await
        .expect("corrupt");
    docket_platform::entitlements::rebuild_totals(&mut tx)
        .await
        .expect("rebuild");
    tx.commit().await.expect("commit");
    assert_eq!(token_totals(&app, t.id).await, (ledger, monthly));

    // With an overage price the same plan lets work continue (billed, not refused).
    sqlx::query("UPDATE plans SET overage_cents_per_1k = 0.2 WHERE id = 'metered'")
        .execute(app.control.pool())
        .await
        .expect("overage");
    let r = app.ask_raw(&token, "Who is the supplier?", json!({}), 30).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn plan_upload_size_and_storage_limits_are_refused_naming_them() {
    let app = spawn_app().await;
    plan_from_team(&app, "snug", "max_upload_bytes = 1000, max_storage_bytes = 1500").await;
    let t = app.create_tenant_on("snug", "snug", "shared").await;
    let token = app.owner_token(&t).await;
    let r = app
        .upload_raw(&token, "big.txt", "word ".repeat(400).into_bytes(), None)
        .await;
    let err = expect_error(r, 413, "too_large").await;
    assert!(err.to_string().contains("1000 bytes"), "{err}");
    let r = app
        .upload_raw(&token, "a.txt", "alpha ".repeat(150).into_bytes(), None)
        .await;
    assert_eq!(r.status(), 202);
    let r = app
        .upload_raw(&token, "b.txt", "bravo ".repeat(150).into_bytes(), None)
        .await;
    assert_eq!(r.status(), 202, "1800 bytes stored now, past the limit");
    let r = app.upload_raw(&token, "c.txt", b"charlie".to_vec(), None).await;
    let err = expect_error(r, 403, "plan_limit").await;
    assert!(err.to_string().contains("at most 1500 bytes"), "{err}");
    assert_eq!(app.audit_count(t.id, "plan.limit", Some("plan_limit")).await, 1);
}

#[tokio::test]
async fn the_plan_feature_gate_comes_before_the_incident_switches() {
    let app = spawn_app().await;
    let op = app.operator_token().await;
    let t = app.create_tenant_on("small", "free", "shared").await;
    let token = app.owner_token(&t).await;
    let r = app
        .call(
            Method::POST,
            "/ops/switches",
            Some(&op),
            Some(json!({"class": "admin", "reason": "maintenance"})),
        )
        .await;
    assert_eq!(r.status(), 201);
    // Wait for the snapshot, proven by another admin request that is switched off.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = app.call(Method::GET, "/v1/users", Some(&token), None).await;
        if r.status() == 503 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "switch never applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = app
        .call(
            Method::POST,
            "/v1/api-keys",
            Some(&token),
            Some(json!({"name": "ci", "role": "member"})),
        )
        .await;
    expect_error(r, 403, "feature_not_in_plan").await;
}

#[tokio::test]
async fn operators_change_plans_and_overrides_through_ops() {
    let app = spawn_app().await;
    let op = app.operator_token().await;
    let t = app.create_tenant_on("opsy", "free", "shared").await;
    let token = app.owner_token(&t).await;
    let key_body = json!({"name": "ci", "role": "member"});
    let r = app
        .call(Method::POST, "/v1/api-keys", Some(&token), Some(key_body.clone()))
        .await;
    expect_error(r, 403, "feature_not_in_plan").await;

    let path = format!("/ops/tenants/{}/plan", t.id);
    let r = app
        .call(Method::PUT, &path, Some(&op), Some(json!({"plan": "team"})))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["from"].as_str(), v["to"].as_str()),
        (Some("free"), Some("team"))
    );
    let r = app
        .call(Method::POST, "/v1/api-keys", Some(&token), Some(key_body))
        .await;
    assert_eq!(r.status(), 201, "the next request sees the new plan");
    let r = app
        .call(Method::PUT, &path, Some(&op), Some(json!({"plan": "platinum"})))
        .await;
    expect_error(r, 400, "invalid_limit").await;
    let nobody = format!("/ops/tenants/{}/plan", uuid::Uuid::new_v4());
    let r = app
        .call(Method::PUT, &nobody, Some(&op), Some(json!({"plan": "team"})))
        .await;
    expect_error(r, 404, "not_found").await;
    let r = app
        .call(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({"plan": "enterprise"})),
        )
        .await;
    assert_eq!(r.status(), 401, "tenant tokens do not reach /ops");

    // A one-request override for reads, lasting two seconds.
    let ov = format!("/ops/tenants/{}/rate-overrides/read", t.id);
    let body = json!({"per_minute": 1, "burst": 1, "expires_in_secs": 2, "reason": "abuse investigation"});
    let r = app.call(Method::PUT, &ov, Some(&op), Some(body)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.call(Method::GET, "/v1/documents", Some(&token), None)
            .await
            .status(),
        200
    );
    let r = app.call(Method::GET, "/v1/documents", Some(&token), None).await;
    expect_error(r, 429, "rate_limited").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        app.call(Method::GET, "/v1/documents", Some(&token), None)
            .await
            .status(),
        200,
        "the plan's limit is back after the expiry"
    );
    let bad = json!({"per_minute": 0, "burst": 1, "expires_in_secs": 60, "reason": "x"});
    let r = app.call(Method::PUT, &ov, Some(&op), Some(bad)).await;
    expect_error(r, 400, "invalid_limit").await;
    assert_eq!(app.call(Method::DELETE, &ov, Some(&op), None).await.status(), 204);
    assert_eq!(app.call(Method::DELETE, &ov, Some(&op), None).await.status(), 404);
    assert_eq!(app.audit_count(t.id, "tenant.plan_change", None).await, 1);
    assert_eq!(app.audit_count(t.id, "tenant.rate_override", None).await, 1);
    assert_eq!(
        app.audit_count(t.id, "tenant.rate_override_cleared", None).await,
        1
    );
}
