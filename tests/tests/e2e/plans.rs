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

/// An operator's change and its audit events are one transaction: when the platform chain
/// cannot take the event, the change does not happen either (and the tenant's chain does
/// not get a record of something that did not happen).
#[tokio::test]
async fn an_operator_change_that_cannot_be_audited_does_not_happen() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("atomic", "team", "shared").await;
    let op = app.operator_token().await;
    let su = app.pool_as("docket_test_super").await;
    // Stands for any failure of the platform append (a full disk, a lost connection): the
    // recorded actions only, so the operator's own authentication is unaffected.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.action IN ('ops.tenants.suspend', 'tenant.plan_change', 'tenant.rate_override', 'ops.switches.set') THEN
             RAISE EXCEPTION 'platform chain unavailable';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_audit BEFORE INSERT ON platform_audit_events
           FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
    )
    .execute(&su)
    .await
    .expect("trigger");
    let tid = t.id.as_uuid();
    let tenant_events = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_events WHERE tenant_id = $1")
            .bind(tid)
            .fetch_one(&pool)
            .await
            .expect("count")
    };
    let events_before = tenant_events(su.clone()).await;
    let suspend_path = format!("/ops/tenants/{}/suspend", t.id);
    let suspend = || {
        app.call(
            Method::POST,
            &suspend_path,
            Some(&op),
            Some(json!({"reason": "unpaid"})),
        )
    };

    let r = suspend().await;
    assert_eq!(r.status(), 500);
    docketctl::tenant_plan(&app.control, &app.auditor(), &t.slug, "business")
        .await
        .expect_err("plan change fails");
    let o = docket_platform::plans::RateOverride {
        class: "query".into(),
        per_minute: 5,
        burst: 1,
        expires_in: std::time::Duration::from_secs(60),
        reason: "incident".into(),
    };
    docketctl::tenant_rate_override(&app.control, &app.auditor(), &t.slug, &o)
        .await
        .expect_err("override fails");
    docketctl::switch_set(
        &app.control,
        &app.auditor(),
        "query",
        Some(&t.slug),
        "incident",
        None,
    )
    .await
    .expect_err("switch fails");

    let (status, plan): (String, String) =
        sqlx::query_as("SELECT status, plan_id FROM tenants WHERE id = $1")
            .bind(t.id.as_uuid())
            .fetch_one(app.control.pool())
            .await
            .expect("tenant");
    assert_eq!((status.as_str(), plan.as_str()), ("active", "team"));
    let overrides: i64 = sqlx::query_scalar("SELECT count(*) FROM rate_overrides WHERE tenant_id = $1")
        .bind(t.id.as_uuid())
        .fetch_one(app.control.pool())
        .await
        .expect("overrides");
    let switches: i64 = sqlx::query_scalar("SELECT count(*) FROM incident_switches WHERE target_tenant = $1")
        .bind(t.id.as_uuid())
        .fetch_one(app.control.pool())
        .await
        .expect("switches");
    assert_eq!((overrides, switches), (0, 0), "nothing was changed");
    assert_eq!(
        tenant_events(su.clone()).await,
        events_before,
        "and nothing recorded"
    );

    // With the chain back, the same change lands with one event in each chain.
    sqlx::raw_sql("DROP TRIGGER refuse_audit ON platform_audit_events")
        .execute(&su)
        .await
        .expect("drop");
    let r = suspend().await;
    assert_eq!(r.status(), 200);
    assert_eq!(tenant_events(su.clone()).await, events_before + 1);
    let platform: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platform_audit_events WHERE action = 'ops.tenants.suspend' AND target = $1",
    )
    .bind(format!("tenant:{}", t.id))
    .fetch_one(&su)
    .await
    .expect("platform");
    assert_eq!(platform, 1);
}
