//! Tenant A calling every endpoint of this wave with tenant B's ids: 404, nothing changes.

use docket_tests::actors::expect_error;
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn another_tenants_ids_are_not_found_and_nothing_changes() {
    let app = spawn_app().await;
    let a = app.create_tenant("alpha").await;
    let b = app.create_tenant("beta").await;
    let a_owner = app.owner_token(&a).await;
    let b_owner = app.owner_token(&b).await;
    let (b_member, _) = app.user_with_role(&b, &b_owner, "member").await;
    let r = app
        .call(
            Method::POST,
            "/v1/api-keys",
            Some(&b_owner),
            Some(json!({"name": "b", "role": "member"})),
        )
        .await;
    let b_key: Value = r.json().await.expect("json");
    let b_key_id = b_key["api_key"]["id"].as_str().expect("id").to_owned();
    let b_audit_before: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE tenant_id = $1")
        .bind(b.id)
        .fetch_one(app.control.pool())
        .await
        .expect("count");

    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/v1/users/{b_member}"),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::PATCH,
            format!("/v1/users/{}", b.owner_id),
            Some(json!({"status": "disabled"})),
        ),
        (Method::DELETE, format!("/v1/users/{b_member}"), None),
        (Method::DELETE, format!("/v1/api-keys/{b_key_id}"), None),
    ] {
        let r = app.call(method.clone(), &path, Some(&a_owner), body).await;
        expect_error(r, 404, "not_found").await;
    }
    // A's listings contain nothing of B's.
    for path in ["/v1/users", "/v1/api-keys", "/v1/audit-events"] {
        let text = app
            .call(Method::GET, path, Some(&a_owner), None)
            .await
            .text()
            .await
            .expect("text");
        assert!(
            !text.contains(&b_member.to_string())
                && !text.contains(&b_key_id)
                && !text.contains(&b.id.to_string()),
            "{path} leaks B: {text}"
        );
    }
    // An audit filter naming B's user finds nothing in A's trail.
    let r: Value = app
        .call(
            Method::GET,
            &format!("/v1/audit-events?actor=user:{}", b.owner_id),
            Some(&a_owner),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(r["events"], json!([]));

    // Nothing of B's changed.
    let users: Value = app
        .call(Method::GET, "/v1/users", Some(&b_owner), None)
        .await
        .json()
        .await
        .expect("json");
    for u in users["users"].as_array().expect("users") {
        assert_eq!(u["status"], "active");
        assert_ne!(u["role"], "admin");
    }
    let me = app
        .call(
            Method::GET,
            "/v1/me",
            Some(b_key["key"].as_str().expect("key")),
            None,
        )
        .await;
    assert_eq!(me.status(), 200, "B's key still works");
    let b_audit_after: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE tenant_id = $1")
        .bind(b.id)
        .fetch_one(app.control.pool())
        .await
        .expect("count");
    assert_eq!(
        b_audit_after, b_audit_before,
        "A's attempts wrote nothing into B's trail"
    );
}

/// The lexical index is tenant data: a word only tenant A's contract holds finds A's chunk
/// for A, and nothing for B — neither through the lexical search nor through B's answers
/// (and B's document frequencies do not count A's chunks).
#[tokio::test]
async fn lexical_search_stays_inside_the_tenant() {
    use docket_platform::documents::lexical;
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let (a, b) = (app.create_tenant("lexa").await, app.create_tenant("lexb").await);
    let (ta, tb) = (app.owner_token(&a).await, app.owner_token(&b).await);
    let secret = "The Quokkafrost consignment shall be delivered to the Supplier's depot by barge.";
    app.upload_ready(&ta, "a.txt", format!("1. Delivery. {secret}\n").into_bytes())
        .await;
    app.upload_ready(
        &tb,
        "b.txt",
        b"1. Payment. The Buyer pays each invoice within 30 days.\n".to_vec(),
    )
    .await;
    let search = |t: docket_platform::ids::TenantId| {
        let db = app.db.clone();
        async move {
            let mut tx = db.begin_tenant(t).await.expect("tx");
            let rows = lexical::search(
                &mut tx,
                "Where is the quokkafrost consignment delivered?",
                &[],
                64,
            )
            .await
            .expect("lexical search");
            tx.commit().await.expect("commit");
            rows
        }
    };
    let own = search(a.id).await;
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0].tenant_id, a.id.as_uuid());
    assert!(own[0].text.contains("Quokkafrost"));
    assert!(
        search(b.id)
            .await
            .iter()
            .all(|r| r.tenant_id == b.id.as_uuid() && !r.text.contains("Quokkafrost"))
    );
    let v = app
        .ask(&tb, "Where is the Quokkafrost consignment delivered?", json!({}))
        .await;
    assert!(!v["answer"].as_str().unwrap_or("").contains("by barge"), "{v}");
    for c in v["citations"].as_array().into_iter().flatten() {
        assert!(!c["quote"].as_str().unwrap_or("").contains("Quokkafrost"), "{v}");
    }
    // Odd characters in a question are words like any other, never a query error.
    let mut tx = app.db.begin_tenant(a.id).await.expect("tx");
    for q in ["it's \\ 'quoted' & | ! <-> :* (", "", "the of and"] {
        lexical::search(&mut tx, q, &[], 5)
            .await
            .expect("any question is a valid query");
    }
    tx.commit().await.expect("commit");
}
