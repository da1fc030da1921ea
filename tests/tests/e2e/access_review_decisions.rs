//! An owner's sign-off of an access review: decisions applied at once (the revoked user's
//! and key's next requests are 401), audited, refused clearly when they cannot be taken, and
//! the review completed only once every finding is decided.

use chrono::Utc;
use docket_platform::access_reviews::Quarter;
use docket_tests::actors::expect_error;
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn an_owners_decisions_are_applied_audited_and_close_the_review() {
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let t = app.create_tenant_on("decided", "team", "shared").await;
    let owner = app.owner_token(&t).await;
    let (admin_id, admin) = app.user_with_role(&t, &owner, "admin").await;
    let r = app
        .call(
            Method::POST,
            "/v1/api-keys",
            Some(&owner),
            Some(json!({"name": "ci", "role": "member"})),
        )
        .await;
    let k: Value = r.json().await.expect("json");
    let (key_id, key) = (
        k["api_key"]["id"].as_str().expect("id").to_owned(),
        k["key"].as_str().expect("key").to_owned(),
    );
    let other = app.create_tenant("rival").await;
    let rival = app.owner_token(&other).await;

    app.run_access_review(Quarter::of(Utc::now()), t.id).await;
    let id = app.wait_reviews_issued(&owner, WAIT).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let owner_id: String =
        sqlx::query_scalar("SELECT id::text FROM users WHERE tenant_id = $1 AND role = 'owner'")
            .bind(t.id)
            .fetch_one(app.control.pool())
            .await
            .expect("owner");
    let decide = |token: String, body: Value| {
        let (app, path) = (&app, format!("/v1/access-reviews/{id}/decisions"));
        async move { app.call(Method::POST, &path, Some(&token), Some(body)).await }
    };
    let one = |finding: String, decision: &str, reason: Option<&str>| json!({"decisions": [{"finding_id": finding, "decision": decision, "reason": reason}]});
    let admin_finding = format!("user:{admin_id}:privileged_user");
    let owner_finding = format!("user:{owner_id}:privileged_user");
    let key_finding = format!("api_key:{key_id}:never_used_key");

    // Admins read but do not decide; other tenants do not see it; bad decisions are refused
    // clearly and change nothing.
    assert_eq!(app.access_reviews(&admin).await.len(), 1);
    expect_error(
        decide(admin.clone(), one(key_finding.clone(), "revoke", None)).await,
        403,
        "forbidden",
    )
    .await;
    let r = app
        .call(
            Method::GET,
            &format!("/v1/access-reviews/{id}"),
            Some(&rival),
            None,
        )
        .await;
    expect_error(r, 404, "not_found").await;
    expect_error(
        decide(rival.clone(), one(key_finding.clone(), "revoke", None)).await,
        404,
        "not_found",
    )
    .await;
    expect_error(
        decide(owner.clone(), one(key_finding.clone(), "keep", None)).await,
        400,
        "reason_required",
    )
    .await;
    expect_error(
        decide(
            owner.clone(),
            one("user:nobody:dormant_user".into(), "keep", Some("x")),
        )
        .await,
        400,
        "unknown_finding",
    )
    .await;
    expect_error(
        decide(owner.clone(), one(key_finding.clone(), "delete", None)).await,
        400,
        "invalid_decision",
    )
    .await;
    expect_error(
        decide(owner.clone(), one(owner_finding.clone(), "revoke", None)).await,
        409,
        "cannot_modify_self",
    )
    .await;
    let r = app
        .call(
            Method::POST,
            &format!("/v1/access-reviews/{id}/complete"),
            Some(&owner),
            None,
        )
        .await;
    let err = expect_error(r, 409, "findings_undecided").await;
    assert!(err.to_string().contains("3 findings"), "{err}");
    let decided: i64 = sqlx::query_scalar("SELECT count(*) FROM access_review_decisions")
        .fetch_one(app.control.pool())
        .await
        .expect("count");
    assert_eq!(decided, 0, "refused requests recorded nothing");

    // Revocations take effect on the next request.
    let body = json!({"decisions": [
        {"finding_id": admin_finding, "decision": "revoke", "reason": "left the team"},
        {"finding_id": key_finding, "decision": "revoke"},
        {"finding_id": owner_finding, "decision": "keep", "reason": "the account owner"},
    ]});
    let r = decide(owner.clone(), body).await;
    assert_eq!(r.status(), 200);
    let applied: Value = r.json().await.expect("json");
    let effects: Vec<&str> = applied["applied"]
        .as_array()
        .expect("applied")
        .iter()
        .map(|a| a["effect"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(effects, ["user_disabled", "key_revoked", "none"]);
    assert_eq!(
        app.call(Method::GET, "/v1/documents", Some(&admin), None)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.call(Method::GET, "/v1/documents", Some(&key), None)
            .await
            .status(),
        401
    );
    expect_error(
        decide(
            owner.clone(),
            one(format!("user:{owner_id}:privileged_user"), "keep", Some("again")),
        )
        .await,
        409,
        "already_decided",
    )
    .await;
    assert_eq!(app.audit_count(t.id, "access_review.revoke", None).await, 2);
    assert_eq!(app.audit_count(t.id, "access_review.keep", None).await, 1);

    let r = app
        .call(
            Method::POST,
            &format!("/v1/access-reviews/{id}/complete"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let done: Value = r.json().await.expect("json");
    assert_eq!(done["access_review"]["status"], "completed");
    assert_eq!(done["access_review"]["completed_by"], format!("user:{owner_id}"));
    let full: Value = app
        .call(
            Method::GET,
            &format!("/v1/access-reviews/{id}"),
            Some(&owner),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(full["decisions"].as_array().map(Vec::len), Some(3));
    let r = decide(
        owner.clone(),
        one(format!("user:{owner_id}:privileged_user"), "keep", Some("late")),
    )
    .await;
    expect_error(r, 409, "review_not_open").await;
}

#[tokio::test]
async fn keys_never_revoke_themselves_nor_the_last_owner_and_unissued_reviews_cannot_be_decided() {
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let t = app.create_tenant_on("keyed", "team", "shared").await;
    let owner = app.owner_token(&t).await;
    let mut keys = vec![];
    for (name, role) in [("automation", "owner"), ("old", "member")] {
        let r = app
            .call(
                Method::POST,
                "/v1/api-keys",
                Some(&owner),
                Some(json!({"name": name, "role": role})),
            )
            .await;
        let k: Value = r.json().await.expect("json");
        keys.push((
            k["api_key"]["id"].as_str().expect("id").to_owned(),
            k["key"].as_str().expect("key").to_owned(),
        ));
    }
    // A review not issued yet: nothing to read, nothing to decide.
    let pending: String = sqlx::query_scalar(
        "INSERT INTO access_reviews (id, tenant_id, quarter, period_start, period_end, requested_by)
         VALUES (gen_random_uuid(), $1, '2025Q1', '2025-01-01', '2025-04-01', 'test') RETURNING id::text",
    )
    .bind(t.id)
    .fetch_one(app.control.pool())
    .await
    .expect("pending review");
    for path in [
        format!("/v1/access-reviews/{pending}.pdf"),
        format!("/v1/access-reviews/{pending}/report"),
    ] {
        let r = app.call(Method::GET, &path, Some(&owner), None).await;
        expect_error(r, 409, "review_not_issued").await;
    }
    let r = app
        .call(
            Method::POST,
            &format!("/v1/access-reviews/{pending}/decisions"),
            Some(&owner),
            Some(json!({"decisions": [{"finding_id": "x", "decision": "revoke"}]})),
        )
        .await;
    expect_error(r, 409, "review_not_open").await;

    app.run_access_review(Quarter::of(Utc::now()), t.id).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let id = loop {
        let all = app.access_reviews(&owner).await;
        if let Some(r) = all
            .iter()
            .find(|r| r["quarter"] != "2025Q1" && r["status"] == "open")
        {
            break r["id"].as_str().expect("id").to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "not issued: {all:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let path = format!("/v1/access-reviews/{id}/decisions");
    let automation = keys[0].1.clone();
    let one = |finding: String| json!({"decisions": [{"finding_id": finding, "decision": "revoke"}]});
    let r = app
        .call(
            Method::POST,
            &path,
            Some(&automation),
            Some(json!({"decisions": []})),
        )
        .await;
    expect_error(r, 400, "invalid_decisions").await;
    // The owner-role key used by now still has its `never_used_key` finding (a snapshot):
    // it cannot revoke itself.
    let r = app
        .call(
            Method::POST,
            &path,
            Some(&automation),
            Some(one(format!("api_key:{}:never_used_key", keys[0].0))),
        )
        .await;
    expect_error(r, 409, "cannot_modify_self").await;
    // Nor the only owner.
    let r = app
        .call(
            Method::POST,
            &path,
            Some(&automation),
            Some(one(format!("user:{}:privileged_user", t.owner_id))),
        )
        .await;
    expect_error(r, 409, "last_owner").await;
    assert_eq!(
        app.call(Method::GET, "/v1/documents", Some(&owner), None)
            .await
            .status(),
        200,
        "nothing applied"
    );
    // A key revoked since the report: the decision records that it already was.
    let r = app
        .call(
            Method::DELETE,
            &format!("/v1/api-keys/{}", keys[1].0),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    let r = app
        .call(
            Method::POST,
            &path,
            Some(&automation),
            Some(one(format!("api_key:{}:never_used_key", keys[1].0))),
        )
        .await;
    assert_eq!(r.status(), 200);
    let applied: Value = r.json().await.expect("json");
    assert_eq!(applied["applied"][0]["effect"], "already_revoked");
    let by: String =
        sqlx::query_scalar("SELECT decided_by FROM access_review_decisions WHERE tenant_id = $1")
            .bind(t.id)
            .fetch_one(app.control.pool())
            .await
            .expect("decided_by");
    assert_eq!(by, format!("api_key:{}", keys[0].0));
}
