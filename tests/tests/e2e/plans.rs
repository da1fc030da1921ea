//! Plan entitlements enforced in the request path: features and the document limit, each
//! refused with its code and audited, and a plan change applying on the next request.

use docket_tests::actors::expect_error;
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_feature_outside_the_plan_is_refused_until_the_plan_includes_it() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("small", "free", "shared").await;
    let token = app.owner_token(&t).await;
    let body = json!({"name": "ci", "role": "member"});
    let r = app
        .call(Method::POST, "/v1/api-keys", Some(&token), Some(body.clone()))
        .await;
    let err = expect_error(r, 403, "feature_not_in_plan").await;
    assert!(err.to_string().contains("free"), "{err}");
    docketctl::tenant_plan(&app.control, &app.auditor(), &t.slug, "team")
        .await
        .expect("upgrade");
    let r = app
        .call(Method::POST, "/v1/api-keys", Some(&token), Some(body))
        .await;
    assert_eq!(r.status(), 201, "the next request sees the new plan");
    let refused = app
        .audit_count(t.id, "plan.feature", Some("feature_not_in_plan"))
        .await;
    assert_eq!(refused, 1);
}

#[tokio::test]
async fn uploads_past_the_plans_document_limit_are_refused_naming_it() {
    let app = spawn_app().await;
    // Plans are rows: an operator's own plan with room for two documents.
    sqlx::query(
        "INSERT INTO plans (id, name, price_cents_monthly, features, rate_limits, max_documents)
         SELECT 'tiny', 'Tiny', 0, features, rate_limits, 2 FROM plans WHERE id = 'team'",
    )
    .execute(app.control.pool())
    .await
    .expect("plan");
    let t = app.create_tenant_on("tiny", "tiny", "shared").await;
    let token = app.owner_token(&t).await;
    for n in 0..2 {
        let r = app
            .upload_raw(
                &token,
                &format!("{n}.txt"),
                format!("Agreement number {n}.").into_bytes(),
                None,
            )
            .await;
        assert_eq!(r.status(), 202);
    }
    let r = app
        .upload_raw(&token, "2.txt", b"Agreement number 2.".to_vec(), None)
        .await;
    let err = expect_error(r, 403, "plan_limit").await;
    assert!(err.to_string().contains("at most 2 documents"), "{err}");
    let listed: serde_json::Value = app
        .call(Method::GET, "/v1/documents", Some(&token), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["documents"].as_array().map(Vec::len),
        Some(2),
        "nothing stored"
    );
}
