//! Consent records: a feature gated on a purpose is refused without a current grant, passes
//! the gate with one and is refused again after revocation; the history is kept, never
//! edited; only owners decide.

use docket_tests::actors::expect_error;
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};

const QUESTION: &str = "Which law governs this agreement?";

fn generative() -> Value {
    json!({"question": QUESTION, "mode": "generative"})
}

fn decision(purpose: &str, granted: bool, terms: &str) -> Value {
    json!({"purpose": purpose, "granted": granted, "terms_version": terms})
}

#[tokio::test]
async fn a_generative_question_needs_a_current_consent_and_the_history_is_kept() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("llm", "enterprise", "shared").await;
    let owner = app.owner_token(&t).await;
    let ask = |body: Value| app.call(Method::POST, "/v1/queries", Some(&owner), Some(body));

    // Nothing decided yet: not a grant.
    let err = expect_error(ask(generative()).await, 403, "consent_required").await;
    assert!(err.to_string().contains("external_llm_processing"), "{err}");
    // The extractive path needs no consent.
    let r = ask(json!({"question": QUESTION})).await;
    assert_eq!(r.status(), 202);

    let r = app
        .call(
            Method::POST,
            "/v1/consents",
            Some(&owner),
            Some(decision("external_llm_processing", true, "2026-10")),
        )
        .await;
    assert_eq!(r.status(), 201);
    let granted: Value = r.json().await.expect("json");
    assert_eq!(granted["granted"], true);
    // The next request passes the consent gate (this deployment has no language model, so
    // it is the generator that answers 503 now, not the gate).
    expect_error(ask(generative()).await, 503, "generator_unavailable").await;

    let r = app
        .call(
            Method::POST,
            "/v1/consents",
            Some(&owner),
            Some(decision("external_llm_processing", false, "2026-10")),
        )
        .await;
    assert_eq!(r.status(), 201);
    expect_error(ask(generative()).await, 403, "consent_required").await;

    let list: Value = app
        .call(Method::GET, "/v1/consents", Some(&owner), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["purposes"][0]["purpose"], "external_llm_processing");
    assert_eq!(list["purposes"][0]["granted"], false);
    assert_eq!(list["purposes"][0]["terms_version"], "2026-10");
    assert_eq!(list["purposes"][1]["purpose"], "usage_analytics");
    assert_eq!(list["purposes"][1]["decided_at"], Value::Null);
    let history = list["history"].as_array().expect("history");
    assert_eq!(history.len(), 2, "{list}");
    assert_eq!(history[0]["granted"], false, "newest first");
    assert_eq!(history[1]["id"], granted["id"], "the grant is kept as it was");
    assert_eq!(history[1]["granted"], true);
    assert!(
        history
            .iter()
            .all(|h| h["decided_by"].as_str().is_some_and(|d| d.starts_with("user:"))),
        "{list}"
    );

    // Audited either way: two refusals naming the purpose, one grant, one revocation.
    assert_eq!(
        app.audit_count(t.id, "consent.check", Some("consent_required"))
            .await,
        2
    );
    assert_eq!(app.audit_count(t.id, "consent.grant", None).await, 1);
    assert_eq!(app.audit_count(t.id, "consent.revoke", None).await, 1);
    let target: String = sqlx::query_scalar(
        "SELECT target FROM audit_events WHERE tenant_id = $1 AND action = 'consent.check' LIMIT 1",
    )
    .bind(t.id)
    .fetch_one(app.control.pool())
    .await
    .expect("target");
    assert_eq!(target, "purpose:external_llm_processing");

    // Never edited in place: the service role has no UPDATE, and even the owner of the
    // schema is stopped by the trigger.
    for role in ["docket_app", "docket_owner"] {
        let pool = app.pool_as(role).await;
        let mut tx = pool.begin().await.expect("tx");
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(t.id.to_string())
            .execute(&mut *tx)
            .await
            .expect("scope");
        let edit = sqlx::query("UPDATE consents SET granted = true")
            .execute(&mut *tx)
            .await;
        assert!(edit.is_err(), "{role} edited a consent record");
    }

    // Consent does not stand in for the plan: a plan without the feature is refused first.
    let small = app.create_tenant_on("small", "team", "shared").await;
    let small_owner = app.owner_token(&small).await;
    let r = app
        .call(
            Method::POST,
            "/v1/consents",
            Some(&small_owner),
            Some(decision("external_llm_processing", true, "1")),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .call(
            Method::POST,
            "/v1/queries",
            Some(&small_owner),
            Some(generative()),
        )
        .await;
    expect_error(r, 403, "feature_not_in_plan").await;
    // And the other tenant's decisions are not this one's.
    let theirs: Value = app
        .call(Method::GET, "/v1/consents", Some(&small_owner), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(theirs["history"].as_array().map(Vec::len), Some(1), "{theirs}");
}

#[tokio::test]
async fn only_owners_decide_and_bad_decisions_are_refused_clearly() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("acme", "enterprise", "shared").await;
    let owner = app.owner_token(&t).await;
    let (_, admin) = app.user_with_role(&t, &owner, "admin").await;
    let (_, member) = app.user_with_role(&t, &owner, "member").await;
    let post = |token: &str, body: Value| {
        let token = token.to_owned();
        let app = &app;
        async move {
            app.call(Method::POST, "/v1/consents", Some(&token), Some(body))
                .await
        }
    };

    expect_error(
        post(&admin, decision("usage_analytics", true, "1")).await,
        403,
        "forbidden",
    )
    .await;
    let r = app.call(Method::GET, "/v1/consents", Some(&admin), None).await;
    assert_eq!(r.status(), 200, "admins read them");
    let r = app.call(Method::GET, "/v1/consents", Some(&member), None).await;
    expect_error(r, 403, "forbidden").await;

    let err = expect_error(
        post(&owner, decision("marketing", true, "1")).await,
        400,
        "unknown_purpose",
    )
    .await;
    assert!(
        err.to_string().contains("usage_analytics"),
        "names the known ones: {err}"
    );
    expect_error(
        post(&owner, decision("usage_analytics", true, "v 1")).await,
        400,
        "invalid_terms_version",
    )
    .await;
    expect_error(
        post(&owner, json!({"purpose": "usage_analytics", "granted": true})).await,
        400,
        "invalid_body",
    )
    .await;
    let r = app
        .call(Method::GET, "/v1/consents?purpose=marketing", Some(&owner), None)
        .await;
    expect_error(r, 400, "unknown_purpose").await;

    let r = post(&owner, decision("usage_analytics", true, "v3.1")).await;
    assert_eq!(r.status(), 201);
    let only: Value = app
        .call(
            Method::GET,
            "/v1/consents?purpose=usage_analytics",
            Some(&owner),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(only["purposes"].as_array().map(Vec::len), Some(1), "{only}");
    assert_eq!(only["purposes"][0]["granted"], true);
    assert_eq!(only["history"].as_array().map(Vec::len), Some(1));
    // Refused attempts recorded nothing.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM consents WHERE tenant_id = $1")
        .bind(t.id)
        .fetch_one(app.control.pool())
        .await
        .expect("count");
    assert_eq!(rows, 1);
}
