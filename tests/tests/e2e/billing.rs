//! Billing: invoices computed from the ledger and the plan history, exactly once, never
//! edited, readable (JSON and PDF) only by their tenant; runs queued per tenant on the
//! `invoice` queue and consumed by real workers.

use docket_platform::billing::invoice::StripeStatus;
use docket_platform::billing::run;
use docket_platform::billing::{Billed, LineKind, Month};
use docket_platform::ids::TenantId;
use docket_tests::billing::{queue, request, wait_invoiced};
use docket_tests::stripe::LocalStripe;
use docket_tests::{TestApp, spawn_app, spawn_app_with};
use reqwest::Method;
use std::time::{Duration, Instant};

async fn invoices_of(app: &TestApp, tenant: TenantId) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT number, total_cents FROM invoices WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_all(app.control.pool())
        .await
        .expect("invoices")
}

#[tokio::test]
async fn ledger_events_land_in_their_utc_month_and_overage_is_exact() {
    let app = spawn_app().await;
    let (a, b, c) = (
        app.create_tenant("edge").await,
        app.create_tenant("under").await,
        app.create_tenant("over").await,
    );
    for t in [&a, &b, &c] {
        app.active_since_before(t.id, "team").await;
    }
    // The last millisecond of June and the first instant of July: one each side.
    app.ledger(a.id, "embedding_tokens", 5_000_000, "2026-06-30T23:59:59.999Z")
        .await;
    app.ledger(a.id, "embedding_tokens", 777, "2026-07-01T00:00:00Z")
        .await;
    app.ledger(a.id, "pages_parsed", 3, "2026-06-01T00:00:00Z").await;
    app.ledger(b.id, "query_tokens_in", 4_999_999, "2026-06-15T12:00:00Z")
        .await;
    app.ledger(c.id, "query_tokens_in", 5_000_000, "2026-06-15T12:00:00Z")
        .await;
    app.ledger(c.id, "query_tokens_out", 1_234_567, "2026-06-20T12:00:00Z")
        .await;

    assert!(matches!(app.bill(a.id, "2026-06").await, Billed::Created(_)));
    let june = app.invoice_of(a.id, "2026-06").await.expect("june invoice");
    let tokens = june
        .lines
        .iter()
        .find(|l| l.description.starts_with("embedding tokens"))
        .expect("token line");
    assert_eq!(tokens.quantity, 5_000_000, "23:59:59.999 on the 30th is June");
    assert!(
        june.lines.iter().all(|l| l.kind != LineKind::Overage),
        "exactly at the quota: no overage"
    );
    assert_eq!(june.total_cents, 4900);
    assert!(june.number.starts_with("DKT-202606-"), "{}", june.number);
    app.bill(a.id, "2026-07").await;
    let july = app.invoice_of(a.id, "2026-07").await.expect("july invoice");
    assert!(
        july.lines
            .iter()
            .any(|l| l.quantity == 777 && l.kind == LineKind::Usage),
        "00:00:00 on the 1st is July: {:?}",
        july.lines
    );

    app.bill(b.id, "2026-06").await;
    assert_eq!(
        app.invoice_of(b.id, "2026-06").await.expect("b").total_cents,
        4900,
        "below the quota"
    );
    app.bill(c.id, "2026-06").await;
    let over = app.invoice_of(c.id, "2026-06").await.expect("c");
    let line = over
        .lines
        .iter()
        .find(|l| l.kind == LineKind::Overage)
        .expect("overage");
    assert_eq!(line.quantity, 1_234_567);
    // 1,234,567 tokens at 0.2 cents per 1,000 = 246.9134 cents, half up to 247.
    assert_eq!(line.amount_cents, 247);
    assert_eq!(over.total_cents, 4900 + 247);
}

#[tokio::test]
async fn plan_changes_and_suspensions_prorate_to_the_day() {
    let app = spawn_app().await;
    let (up, paused, fresh, gone) = (
        app.create_tenant("upgrade").await,
        app.create_tenant("paused").await,
        app.create_tenant("fresh").await,
        app.create_tenant("gone").await,
    );
    // Team, then Business from 10 June 15:00: 9 days of Team, 21 of Business.
    app.set_history(
        up.id,
        &[
            ("2020-01-01T00:00:00Z", "team"),
            ("2026-06-10T15:00:00Z", "business"),
        ],
        &[("2020-01-01T00:00:00Z", "active")],
    )
    .await;
    // Suspended from the 6th to the 16th: 20 active days.
    app.set_history(
        paused.id,
        &[("2020-01-01T00:00:00Z", "team")],
        &[
            ("2020-01-01T00:00:00Z", "active"),
            ("2026-06-06T00:00:00Z", "suspended"),
            ("2026-06-16T00:00:00Z", "active"),
        ],
    )
    .await;
    // Created on the 21st: 10 days.
    app.set_history(
        fresh.id,
        &[("2026-06-21T08:00:00Z", "team")],
        &[("2026-06-21T08:00:00Z", "active")],
    )
    .await;
    // Deleted in May: owes nothing for June.
    app.set_history(
        gone.id,
        &[("2020-01-01T00:00:00Z", "team")],
        &[
            ("2020-01-01T00:00:00Z", "active"),
            ("2026-05-20T00:00:00Z", "deleted"),
        ],
    )
    .await;

    app.bill(up.id, "2026-06").await;
    let inv = app.invoice_of(up.id, "2026-06").await.expect("invoice");
    let base: Vec<_> = inv.lines.iter().filter(|l| l.kind == LineKind::Base).collect();
    assert_eq!((base[0].quantity, base[0].amount_cents), (9, 1470), "{base:?}");
    assert_eq!((base[1].quantity, base[1].amount_cents), (21, 34930), "{base:?}");
    assert_eq!(inv.plan_id, "business");
    assert_eq!(inv.total_cents, 1470 + 34930);

    app.bill(paused.id, "2026-06").await;
    let inv = app.invoice_of(paused.id, "2026-06").await.expect("invoice");
    assert_eq!((inv.active_days, inv.total_cents), (20, 3267)); // 4900 × 20 / 30 = 3266.67
    app.bill(fresh.id, "2026-06").await;
    let inv = app.invoice_of(fresh.id, "2026-06").await.expect("invoice");
    assert_eq!((inv.active_days, inv.total_cents), (10, 1633)); // 4900 × 10 / 30 = 1633.33
    assert_eq!(app.bill(gone.id, "2026-06").await, Billed::NotActive);
    assert!(app.invoice_of(gone.id, "2026-06").await.is_none());

    // The run's tenant selection applies the same rule.
    let due = run::billable(&app.control, Month::parse("2026-06").expect("m"), None)
        .await
        .expect("billable");
    let ids: Vec<TenantId> = due.iter().map(|d| d.0).collect();
    assert!(
        ids.contains(&fresh.id) && ids.contains(&paused.id) && !ids.contains(&gone.id),
        "{due:?}"
    );
}

#[tokio::test]
async fn plan_and_status_changes_are_recorded_in_the_history() {
    let app = spawn_app().await;
    let t = app.create_tenant("hist").await;
    docketctl::tenant_plan(&app.control, &app.auditor(), &t.slug, "business")
        .await
        .expect("plan change");
    let op = app.operator_token().await;
    let r = app
        .call(
            Method::POST,
            &format!("/ops/tenants/{}/suspend", t.id),
            Some(&op),
            Some(serde_json::json!({})),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let plans: Vec<String> =
        sqlx::query_scalar("SELECT plan_id FROM plan_history WHERE tenant_id = $1 ORDER BY from_ts, id")
            .bind(t.id)
            .fetch_all(app.control.pool())
            .await
            .expect("plans");
    assert_eq!(plans, ["team", "business"]);
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM status_history WHERE tenant_id = $1 ORDER BY from_ts, id")
            .bind(t.id)
            .fetch_all(app.control.pool())
            .await
            .expect("statuses");
    assert_eq!(statuses, ["active", "suspended"]);
}

#[tokio::test]
async fn concurrent_and_repeated_runs_make_one_invoice_per_tenant() {
    let app = spawn_app().await;
    let tenants = [
        app.create_tenant("one").await,
        app.create_tenant("two").await,
        app.create_tenant("three").await,
    ];
    for (i, t) in tenants.iter().enumerate() {
        app.active_since_before(t.id, "team").await;
        app.ledger(
            t.id,
            "embedding_tokens",
            5_000_000 + 100_000 * i as i64,
            "2026-06-10T00:00:00Z",
        )
        .await;
    }
    let (q, auditor) = (queue(&app), app.auditor());
    // A dry run shows the totals and writes nothing.
    let dry = run::start(
        &app.control,
        &q,
        &auditor,
        &request("2026-06", None, true),
        chrono::Utc::now(),
    )
    .await
    .expect("dry run");
    assert_eq!(dry.tenants, 3);
    assert!(dry.lines.iter().all(|l| l.preview.is_some()));
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM billing_runs")
        .fetch_one(app.control.pool())
        .await
        .expect("runs");
    assert_eq!(runs, 0, "a dry run records nothing");

    let _worker = app.spawn_worker().await;
    let req = request("2026-06", None, false);
    let now = chrono::Utc::now();
    let (r1, r2) = tokio::join!(
        run::start(&app.control, &q, &auditor, &req, now),
        run::start(&app.control, &q, &auditor, &req, now),
    );
    let (r1, r2) = (r1.expect("run 1"), r2.expect("run 2"));
    assert_eq!(r1.tenants, 3);
    assert!(r1.queued + r2.queued >= 3);
    wait_invoiced(&app, "2026-06", Duration::from_secs(60)).await;
    let again = run::start(&app.control, &q, &auditor, &req, chrono::Utc::now())
        .await
        .expect("run 3");
    assert_eq!(
        (again.queued, again.existing),
        (0, 3),
        "a repeated run finds every invoice"
    );
    for (i, t) in tenants.iter().enumerate() {
        let invoices = invoices_of(&app, t.id).await;
        assert_eq!(invoices.len(), 1, "{invoices:?}");
        let preview = dry
            .lines
            .iter()
            .find(|l| l.tenant_id == t.id)
            .and_then(|l| l.preview.clone())
            .expect("preview");
        assert_eq!(
            invoices[0].1, preview.total_cents,
            "the dry run's total is the invoice's"
        );
        assert_eq!(
            invoices[0].1,
            4900 + 20 * i as i64,
            "100,000 tokens over per step"
        );
        assert_eq!(app.audit_count(t.id, "billing.invoice_created", None).await, 1);
    }
    let started: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platform_audit_events WHERE action IN ('billing.run_started', 'billing.run_finished')",
    )
    .fetch_one(app.control.pool())
    .await
    .expect("platform audit");
    assert_eq!(started, 6, "three runs, each started and finished");
}

#[tokio::test]
async fn an_invoice_job_killed_mid_way_is_finished_once_by_another_worker() {
    let stripe = LocalStripe::start().await;
    let app = spawn_app_with(&[
        ("DOCKET_STRIPE_SECRET_KEY", docket_tests::stripe::KEY),
        ("DOCKET_STRIPE_API_BASE", &stripe.base()),
    ])
    .await;
    let t = app.create_tenant("killed").await;
    app.active_since_before(t.id, "business").await;
    // Hold the invoice's lock so the first worker blocks inside its transaction.
    let mut holder = app.control.pool().begin().await.expect("begin");
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('invoice:' || $1::text || ':' || '2026-06', 0))",
    )
    .bind(t.id.to_string())
    .execute(&mut *holder)
    .await
    .expect("lock");
    let mut first = app.spawn_worker_process("invoice-first", false);
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
    // Wait until the job is inside bill(): its transaction waits on our lock.
    let started = Instant::now();
    loop {
        let waiting: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                .fetch_one(app.control.pool())
                .await
                .expect("locks");
        if waiting > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the invoice job never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.kill();
    holder.rollback().await.expect("release");
    let _second = app.spawn_worker_process("invoice-second", false);
    wait_invoiced(&app, "2026-06", Duration::from_secs(90)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let invoices = invoices_of(&app, t.id).await;
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    assert_eq!(invoices[0].1, 49900);
    assert_eq!(app.audit_count(t.id, "billing.invoice_created", None).await, 1);
    // One set of Stripe objects: one customer, one invoice of the same total.
    let started = Instant::now();
    while app
        .invoice_of(t.id, "2026-06")
        .await
        .is_none_or(|i| i.stripe_status != StripeStatus::Pushed)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never pushed to Stripe"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stripe.count("/v1/customers").await, 1);
    let theirs = stripe.get("/v1/invoices?limit=100").await;
    assert_eq!(theirs["data"].as_array().map(Vec::len), Some(1), "{theirs}");
    assert_eq!(theirs["data"][0]["total"], 49900);
}

#[tokio::test]
async fn months_not_over_are_refused_and_finalized_invoices_never_change() {
    let app = spawn_app().await;
    let t = app.create_tenant("fixed").await;
    app.active_since_before(t.id, "team").await;
    let this_month = Month::of(chrono::Utc::now()).to_string();
    let err = run::start(
        &app.control,
        &queue(&app),
        &app.auditor(),
        &request(&this_month, None, false),
        chrono::Utc::now(),
    )
    .await
    .expect_err("refused");
    assert!(err.to_string().contains("not over"), "{err}");

    app.bill(t.id, "2026-06").await;
    let su = app.pool_as("docket_test_super").await;
    for sql in [
        "UPDATE invoices SET total_cents = 1 WHERE tenant_id = $1",
        "UPDATE invoice_lines SET amount_cents = 1 WHERE tenant_id = $1",
        "DELETE FROM invoice_lines WHERE tenant_id = $1",
        "DELETE FROM invoices WHERE tenant_id = $1",
        "INSERT INTO invoice_lines (tenant_id, invoice_id, ordinal, kind, description, quantity, unit, amount_cents)
           SELECT $1, id, 99, 'adjustment', 'added later', 1, 'units', 100 FROM invoices WHERE tenant_id = $1",
        "TRUNCATE invoice_lines",
        "TRUNCATE invoices CASCADE",
    ] {
        let q = match sql.contains("$1") {
            true => sqlx::query(sql).bind(t.id),
            false => sqlx::query(sql),
        };
        let m = q.execute(&su).await.expect_err(sql).to_string();
        let refused = ["never", "immutable", "only with their invoice"];
        assert!(refused.iter().any(|r| m.contains(r)), "{sql}: {m}");
    }
    // Payment state may move on.
    sqlx::query("UPDATE invoices SET status = 'paid', paid_at = now() WHERE tenant_id = $1")
        .bind(t.id)
        .execute(&su)
        .await
        .expect("paid");
    assert_eq!(
        app.invoice_of(t.id, "2026-06").await.expect("inv").total_cents,
        4900
    );
}
