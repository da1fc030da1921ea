//! Billing as tenants and operators see it: invoices read and downloaded only by their
//! tenant, the operators' views (invoices, runs, margins, failures), the upgrade hint, and
//! corrections on the next invoice.

use docket_platform::billing::run::{self, Origin, RunRequest};
use docket_platform::billing::{LineKind, Month};
use docket_tests::actors::expect_error;
use docket_tests::billing::{queue, request, wait_invoiced};
use docket_tests::{spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

#[tokio::test]
async fn tenants_read_and_download_only_their_own_invoices() {
    let app = spawn_app().await;
    let (a, b) = (app.create_tenant("alpha").await, app.create_tenant("beta").await);
    app.active_since_before(a.id, "team").await;
    app.ledger(a.id, "embedding_tokens", 6_000_000, "2026-06-03T00:00:00Z")
        .await;
    app.bill(a.id, "2026-06").await;
    let (ta, tb) = (app.owner_token(&a).await, app.owner_token(&b).await);

    let list: Value = app
        .call(Method::GET, "/v1/invoices", Some(&ta), None)
        .await
        .json()
        .await
        .expect("json");
    let inv = &list["invoices"][0];
    let id = inv["id"].as_str().expect("id").to_owned();
    assert_eq!(inv["period"], "2026-06");
    let one: Value = app
        .call(Method::GET, &format!("/v1/invoices/{id}"), Some(&ta), None)
        .await
        .json()
        .await
        .expect("json");
    let total = one["invoice"]["total_cents"].as_i64().expect("total");
    assert_eq!(total, 4900 + 200, "1,000,000 tokens over at 0.2 cents per 1,000");
    let sum: i64 = one["invoice"]["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["amount_cents"].as_i64().expect("amount"))
        .sum();
    assert_eq!(sum, total);

    let pdf = app
        .call(Method::GET, &format!("/v1/invoices/{id}.pdf"), Some(&ta), None)
        .await;
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let bytes = pdf.bytes().await.expect("bytes");
    let file = app.dirs.path().join("invoice.pdf");
    std::fs::write(&file, &bytes).expect("write");
    let out = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext is installed (scripts/test installs poppler-utils)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let number = one["invoice"]["number"].as_str().expect("number");
    for needle in [
        number,
        "51.00 USD",
        "2026-06-01 to 2026-06-30",
        "alpha Inc.",
        "Total",
    ] {
        assert!(text.contains(needle), "{needle:?} not in the PDF:\n{text}");
    }

    // Another tenant: not found, for the JSON and the PDF alike; its own list is empty.
    for path in [format!("/v1/invoices/{id}"), format!("/v1/invoices/{id}.pdf")] {
        expect_error(
            app.call(Method::GET, &path, Some(&tb), None).await,
            404,
            "not_found",
        )
        .await;
    }
    let theirs: Value = app
        .call(Method::GET, "/v1/invoices", Some(&tb), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(theirs["invoices"], serde_json::json!([]));
    expect_error(
        app.call(Method::GET, "/v1/invoices/not-an-id.pdf", Some(&ta), None)
            .await,
        404,
        "not_found",
    )
    .await;
    // Members do not read billing.
    let (_, member) = app.user_with_role(&a, &ta, "member").await;
    expect_error(
        app.call(Method::GET, "/v1/invoices", Some(&member), None).await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        app.call(Method::GET, "/v1/invoices", None, None).await,
        401,
        "missing_credentials",
    )
    .await;
}

#[tokio::test]
async fn operators_list_a_periods_invoices_and_the_runs() {
    let app = spawn_app().await;
    let t = app.create_tenant("opsview").await;
    app.active_since_before(t.id, "team").await;
    let _worker = app.spawn_worker().await;
    run::start(
        &app.control,
        &queue(&app),
        &app.auditor(),
        &request("2026-06", None, false),
        chrono::Utc::now(),
    )
    .await
    .expect("run");
    wait_invoiced(&app, "2026-06", Duration::from_secs(60)).await;
    let op = app.operator_token().await;
    let list: Value = app
        .call(Method::GET, "/ops/invoices?period=2026-06", Some(&op), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["invoices"][0]["tenant_slug"], t.slug.as_str());
    assert_eq!(list["invoices"][0]["total_cents"], 4900);
    let runs: Value = app
        .call(Method::GET, "/ops/billing/runs", Some(&op), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(runs["runs"][0]["status"], "finished");
    assert_eq!(runs["runs"][0]["queued"], 1);
    expect_error(
        app.call(Method::GET, "/ops/invoices?period=June", Some(&op), None)
            .await,
        400,
        "invalid_period",
    )
    .await;
    let tenant_token = app.owner_token(&t).await;
    let r = app
        .call(Method::GET, "/ops/invoices", Some(&tenant_token), None)
        .await;
    assert_eq!(r.status(), 401, "a tenant token is not an operator's");
}

#[tokio::test]
async fn operators_see_revenue_cost_and_margin_per_tenant_and_plan() {
    let app = spawn_app_with(&[(
        "DOCKET_COST_MODEL",
        "embedding_tokens=0.01,pages_parsed=100,storage_gb_month=0",
    )])
    .await;
    let (team, biz) = (
        app.create_tenant_on("m-team", "team", "shared").await,
        app.create_tenant_on("m-biz", "business", "shared").await,
    );
    app.active_since_before(team.id, "team").await;
    app.active_since_before(biz.id, "business").await;
    // 2,000,000 tokens × 0.01 / 1,000 = 20 cents; 50 pages × 100 / 1,000 = 5 cents.
    app.ledger(team.id, "embedding_tokens", 2_000_000, "2026-06-05T00:00:00Z")
        .await;
    app.ledger(team.id, "pages_parsed", 50, "2026-06-05T00:00:00Z")
        .await;
    app.ledger(biz.id, "embedding_tokens", 10_000_000, "2026-06-05T00:00:00Z")
        .await;
    app.bill(team.id, "2026-06").await;
    app.bill(biz.id, "2026-06").await;
    let op = app.operator_token().await;
    let r: Value = app
        .call(
            Method::GET,
            "/ops/billing/margins?period=2026-06",
            Some(&op),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    let row = |slug: &str| {
        r["tenants"]
            .as_array()
            .expect("tenants")
            .iter()
            .find(|t| t["slug"] == slug)
            .cloned()
            .unwrap_or_else(|| panic!("{slug} not in {r}"))
    };
    let t = row(&team.slug);
    assert_eq!(
        (t["revenue_cents"].as_i64(), t["cost_cents"].as_i64()),
        (Some(4900), Some(25)),
        "{t}"
    );
    assert_eq!(t["margin_cents"], 4900 - 25);
    let b = row(&biz.slug);
    assert_eq!(
        (b["revenue_cents"].as_i64(), b["cost_cents"].as_i64()),
        (Some(49900), Some(100)),
        "{b}"
    );
    let plans = r["plans"].as_array().expect("plans");
    let business = plans
        .iter()
        .find(|p| p["plan_id"] == "business")
        .expect("business");
    assert_eq!(
        (business["tenants"].as_i64(), business["margin_cents"].as_i64()),
        (Some(1), Some(49800))
    );
    expect_error(
        app.call(
            Method::GET,
            "/ops/billing/margins?period=2026-13",
            Some(&op),
            None,
        )
        .await,
        400,
        "invalid_period",
    )
    .await;
}

#[tokio::test]
async fn usage_suggests_the_next_plan_once_overage_costs_more_than_it() {
    let app = spawn_app().await;
    let (heavy, light) = (app.create_tenant("heavy").await, app.create_tenant("light").await);
    let now = chrono::Utc::now().to_rfc3339();
    // Team: 5M tokens included, 0.2 cents per 1,000 above; Business costs 450.00 USD more.
    app.ledger(heavy.id, "embedding_tokens", 300_000_000, &now).await;
    app.ledger(light.id, "embedding_tokens", 6_000_000, &now).await;
    let usage = |t: docket_tests::actors::TestTenant| {
        let app = &app;
        async move {
            let token = app.owner_token(&t).await;
            let v: Value = app
                .call(Method::GET, "/v1/usage", Some(&token), None)
                .await
                .json()
                .await
                .expect("json");
            v["upgrade_hint"].clone()
        }
    };
    let hint = usage(heavy).await;
    assert_eq!(hint["suggested_plan"], "business", "{hint}");
    assert_eq!(hint["overage_cents"], 59000); // 295M × 0.2 / 1,000
    assert_eq!(hint["price_difference_cents"], 45000);
    assert_eq!(
        usage(light).await,
        Value::Null,
        "200 cents of overage is cheaper than upgrading"
    );
}

#[tokio::test]
async fn a_month_that_cannot_be_computed_is_recorded_left_alone_by_the_calendar_and_retried_by_an_operator() {
    let app = spawn_app().await;
    let t = app.create_tenant("mixed").await;
    // Team until the 15th, then Business, now priced in another currency.
    app.set_history(
        t.id,
        &[
            ("2020-01-01T00:00:00Z", "team"),
            ("2026-06-15T00:00:00Z", "business"),
        ],
        &[("2020-01-01T00:00:00Z", "active")],
    )
    .await;
    let su = app.pool_as("docket_test_super").await;
    sqlx::query("UPDATE plans SET currency = 'eur' WHERE id = 'business'")
        .execute(&su)
        .await
        .expect("currency");
    let _worker = app.spawn_worker().await;
    let q = queue(&app);
    run::start(
        &app.control,
        &q,
        &app.auditor(),
        &request("2026-06", None, false),
        chrono::Utc::now(),
    )
    .await
    .expect("run");
    let started = Instant::now();
    while run::failed(&app.control, Month::parse("2026-06").expect("m"))
        .await
        .expect("failed")
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the failure was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        app.audit_count(t.id, "billing.invoice_failed", Some("mixed_currency"))
            .await,
        1
    );
    let op = app.operator_token().await;
    let f: Value = app
        .call(
            Method::GET,
            "/ops/billing/failures?period=2026-06",
            Some(&op),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(f["failures"][0]["code"], "mixed_currency", "{f}");
    // The calendar's run skips it.
    let scheduled = RunRequest {
        origin: Origin::Schedule,
        ..request("2026-06", None, false)
    };
    let r = run::start(&app.control, &q, &app.auditor(), &scheduled, chrono::Utc::now())
        .await
        .expect("scheduled run");
    assert_eq!(
        (r.tenants, r.queued),
        (0, 0),
        "left alone until an operator retries"
    );
    // Fixed, and retried by an operator: invoiced, the failure cleared.
    sqlx::query("UPDATE plans SET currency = 'usd' WHERE id = 'business'")
        .execute(&su)
        .await
        .expect("currency back");
    run::start(
        &app.control,
        &q,
        &app.auditor(),
        &request("2026-06", Some(t.id), false),
        chrono::Utc::now(),
    )
    .await
    .expect("operator run");
    wait_invoiced(&app, "2026-06", Duration::from_secs(60)).await;
    assert!(
        run::failed(&app.control, Month::parse("2026-06").expect("m"))
            .await
            .expect("failed")
            .is_empty()
    );
}

#[tokio::test]
async fn a_correction_is_an_adjustment_line_on_the_next_invoice_only() {
    let app = spawn_app().await;
    let t = app.create_tenant("adjusted").await;
    app.active_since_before(t.id, "team").await;
    app.bill(t.id, "2026-05").await;
    let credit = docket_platform::billing::corrections::NewAdjustment {
        amount_cents: -1250,
        description: "Credit: May outage".into(),
        reason: "SLA breach, ticket 4411".into(),
    };
    let out = docketctl::billing_adjust(&app.control, &app.auditor(), &t.slug, &credit)
        .await
        .expect("adjust");
    assert!(out["adjustment_id"].is_string());
    let bad = docket_platform::billing::corrections::NewAdjustment {
        amount_cents: 0,
        ..credit.clone()
    };
    let e = docketctl::billing_adjust(&app.control, &app.auditor(), &t.slug, &bad)
        .await
        .expect_err("zero");
    assert!(e.to_string().contains("non-zero"), "{e}");
    assert_eq!(
        app.invoice_of(t.id, "2026-05").await.expect("may").total_cents,
        4900,
        "May is never edited"
    );
    app.bill(t.id, "2026-06").await;
    let june = app.invoice_of(t.id, "2026-06").await.expect("june");
    let line = june
        .lines
        .iter()
        .find(|l| l.kind == LineKind::Adjustment)
        .expect("adjustment line");
    assert_eq!(
        (line.amount_cents, line.description.as_str()),
        (-1250, "Credit: May outage")
    );
    assert_eq!(june.total_cents, 4900 - 1250);
    app.bill(t.id, "2026-07").await;
    let july = app.invoice_of(t.id, "2026-07").await.expect("july");
    assert!(
        july.lines.iter().all(|l| l.kind != LineKind::Adjustment),
        "applied once"
    );
    assert_eq!(
        app.audit_count(t.id, "billing.adjustment_added", Some("SLA breach, ticket 4411"))
            .await,
        1
    );
}
