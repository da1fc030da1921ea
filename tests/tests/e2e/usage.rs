//! The usage ledger as tenants and operators see it: by period and kind, from what the
//! workers recorded, never another tenant's.

use docket_tests::actors::expect_error;
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn usage_is_reported_by_period_and_kind_for_the_tenant_and_operators() {
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let (a, b) = (app.create_tenant("alpha").await, app.create_tenant("beta").await);
    let (ta, tb) = (app.owner_token(&a).await, app.owner_token(&b).await);
    let text = b"The Supplier shall deliver the goods within thirty days of each order.\n\nThis Agreement is governed by the laws of Delaware.".to_vec();
    app.upload_ready(&ta, "a.txt", text).await;

    let r = app.call(Method::GET, "/v1/usage", Some(&ta), None).await;
    assert_eq!(r.status(), 200);
    let mine: Value = r.json().await.expect("json");
    assert_eq!(mine["granularity"], "day");
    let tokens = mine["totals"]["embedding_tokens"]
        .as_i64()
        .expect("embedding tokens");
    assert!(tokens > 0, "{mine}");
    assert_eq!(mine["totals"]["pages_parsed"], 1, "{mine}");
    let ledger: i64 = sqlx::query_scalar(
        "SELECT sum(quantity)::bigint FROM usage_events WHERE tenant_id = $1 AND kind = 'embedding_tokens'",
    )
    .bind(a.id)
    .fetch_one(app.control.pool())
    .await
    .expect("ledger");
    assert_eq!(tokens, ledger, "the report is the ledger");

    let theirs: Value = app
        .call(Method::GET, "/v1/usage", Some(&tb), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(theirs["totals"], json!({}), "never another tenant's usage");
    assert_eq!(theirs["usage"], json!([]));

    let monthly: Value = app
        .call(
            Method::GET,
            "/v1/usage?granularity=month&from=2026-01-01",
            Some(&ta),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(monthly["totals"], mine["totals"]);
    assert!(
        monthly["usage"]
            .as_array()
            .expect("rows")
            .iter()
            .all(|r| r["period"].as_str().expect("p").contains("-01T00:00:00"))
    );

    for (q, code) in [
        ("granularity=week", "invalid_granularity"),
        ("from=yesterday", "invalid_period"),
        ("from=2026-03-01&to=2026-02-01", "invalid_period"),
        ("from=2020-01-01&to=2026-01-01", "invalid_period"),
        ("tenant=other", "invalid_query"),
    ] {
        expect_error(
            app.call(Method::GET, &format!("/v1/usage?{q}"), Some(&ta), None)
                .await,
            400,
            code,
        )
        .await;
    }

    let op = app.operator_token().await;
    let path = format!("/ops/tenants/{}/usage", a.id);
    let seen: Value = app
        .call(Method::GET, &path, Some(&op), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(seen["totals"], mine["totals"]);
    assert_eq!(
        app.call(Method::GET, &path, Some(&ta), None).await.status(),
        401,
        "tenant tokens are not operators'"
    );
    let nobody = format!("/ops/tenants/{}/usage", uuid::Uuid::new_v4());
    expect_error(
        app.call(Method::GET, &nobody, Some(&op), None).await,
        404,
        "not_found",
    )
    .await;
}
