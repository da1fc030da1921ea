//! docketctl commands, through the same library functions the binary calls.

use docket_tests::spawn_app;
use docketctl::TenantCreate;

fn args(slug: &str) -> TenantCreate {
    TenantCreate {
        slug: slug.into(),
        name: "Acme Corp".into(),
        plan: "team".into(),
        tier: "dedicated".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn tenant_create_and_list() {
    let app = spawn_app().await;
    let created = docketctl::tenant_create(&app.control, &app.auditor(), &args("acme"))
        .await
        .expect("create");
    assert_eq!(created["slug"], "acme");
    assert_eq!(created["tier"], "dedicated");
    assert_eq!(created["status"], "active");
    assert!(uuid::Uuid::parse_str(created["tenant_id"].as_str().expect("id")).is_ok());
    let list = docketctl::tenant_list(&app.control).await.expect("list");
    let slugs: Vec<_> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["slug"].clone())
        .collect();
    assert_eq!(slugs, vec![serde_json::json!("acme")]);
}

#[tokio::test]
async fn tenant_create_refuses_bad_input_with_a_sentence() {
    let app = spawn_app().await;
    docketctl::tenant_create(&app.control, &app.auditor(), &args("acme"))
        .await
        .expect("first");
    let dup = docketctl::tenant_create(&app.control, &app.auditor(), &args("acme"))
        .await
        .expect_err("duplicate");
    assert!(dup.to_string().contains("already exists"), "{dup}");
    let bad_slug = docketctl::tenant_create(&app.control, &app.auditor(), &args("Not A Slug"))
        .await
        .expect_err("slug");
    assert!(bad_slug.to_string().contains("invalid tenant slug"), "{bad_slug}");
    let mut a = args("other");
    a.plan = "platinum".into();
    let plan = docketctl::tenant_create(&app.control, &app.auditor(), &a)
        .await
        .expect_err("plan");
    assert!(plan.to_string().contains("unknown plan"), "{plan}");
    let mut a = args("other");
    a.tier = "galactic".into();
    let tier = docketctl::tenant_create(&app.control, &app.auditor(), &a)
        .await
        .expect_err("tier");
    assert!(tier.to_string().contains("unknown isolation tier"), "{tier}");
    let list = docketctl::tenant_list(&app.control).await.expect("list");
    assert_eq!(list.as_array().expect("array").len(), 1, "nothing half-created");
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let app = spawn_app().await;
    let first = docketctl::migrate(&app.config).await.expect("migrate");
    assert_eq!(first["migrated"], true);
    docketctl::migrate(&app.config).await.expect("again");
}

#[tokio::test]
async fn billing_run_dry_runs_one_tenant_and_refuses_bad_periods_with_a_sentence() {
    let app = spawn_app().await;
    let (a, b) = (app.create_tenant("cli-a").await, app.create_tenant("cli-b").await);
    app.active_since_before(a.id, "team").await;
    app.active_since_before(b.id, "team").await;
    let out = docketctl::billing_run(
        &app.config,
        &app.control,
        &app.auditor(),
        "2026-06",
        Some(&a.slug),
        true,
        None,
    )
    .await
    .expect("dry run");
    assert_eq!(out["tenants"], 1, "only the tenant asked for: {out}");
    assert_eq!(out["lines"][0]["preview"]["total_cents"], 4900, "{out}");
    assert_eq!(
        out["run_id"],
        serde_json::Value::Null,
        "a dry run records nothing"
    );
    for (period, says) in [("2026-6", "not a month"), ("2099-01", "not over yet")] {
        let e = docketctl::billing_run(
            &app.config,
            &app.control,
            &app.auditor(),
            period,
            None,
            false,
            None,
        )
        .await
        .expect_err(period);
        assert!(e.to_string().contains(says), "{period}: {e}");
    }
    let e = docketctl::billing_run(
        &app.config,
        &app.control,
        &app.auditor(),
        "2026-06",
        Some("nobody"),
        true,
        None,
    )
    .await
    .expect_err("unknown tenant");
    assert!(e.to_string().contains("no tenant"), "{e}");
}
