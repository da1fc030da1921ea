//! The served contract: `/openapi.json` is exactly the committed `docs/openapi.json`, and
//! `/docs` serves Swagger UI with its assets from this server (the browser scenario in
//! `panel.rs` renders it offline).

use docket_tests::spawn_app;

#[tokio::test]
async fn the_served_spec_is_the_committed_one_and_the_reference_ui_is_served_locally() {
    let app = spawn_app().await;
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status(), 200);
    let served: serde_json::Value = r.json().await.expect("json");
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(docket_tests::workspace().join("docs/openapi.json"))
            .expect("docs/openapi.json"),
    )
    .expect("committed json");
    assert_eq!(served, committed, "docs/openapi.json is stale");
    assert_eq!(served["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
    for scheme in ["tenant_token", "api_key", "operator_token"] {
        assert!(
            served["components"]["securitySchemes"][scheme].is_object(),
            "{scheme}"
        );
    }
    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("https://"), "no asset from elsewhere: {html}");
    let css = app.get("/docs/swagger-ui.css").await;
    assert_eq!(css.status(), 200, "the UI's assets are served by the API itself");
}
