//! Stripe test mode against localstripe (a real stateful emulator, one per test): invoices
//! pushed once however often runs repeat, kept `retrying` while Stripe is down and
//! completed when it returns, paid through signed webhooks; forged, stale, replayed and
//! unknown events refused, audited, and changing nothing.

use docket_platform::audit::Actor;
use docket_platform::billing::run::{self, Origin, RunRequest};
use docket_platform::billing::webhook::sign;
use docket_platform::billing::{Month, invoice};
use docket_platform::ids::TenantId;
use docket_platform::jobs::JobQueue;
use docket_platform::redis_conn::Redis;
use docket_tests::stripe::{KEY, LocalStripe, free_port};
use docket_tests::{TestApp, spawn_app_with};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const WEBHOOK_SECRET: &str = "whsec_docket_test";

async fn app_on(stripe_base: &str) -> TestApp {
    spawn_app_with(&[
        ("DOCKET_STRIPE_SECRET_KEY", KEY),
        ("DOCKET_STRIPE_API_BASE", stripe_base),
        ("DOCKET_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
    ])
    .await
}

async fn start_run(app: &TestApp, month: &str) {
    let redis = Redis::new(&app.config.redis.url, &app.config.redis.prefix).expect("redis");
    let req = RunRequest {
        month: Month::parse(month).expect("month"),
        only: None,
        dry_run: false,
        origin: Origin::Operator,
        requested_by: "test".into(),
        actor: Actor::System,
    };
    run::start(
        &app.control,
        &JobQueue::new(redis, 5),
        &app.auditor(),
        &req,
        chrono::Utc::now(),
    )
    .await
    .expect("run");
}

/// Waits until `tenant`'s June invoice satisfies `done`.
async fn wait_for(
    app: &TestApp,
    tenant: TenantId,
    what: &str,
    done: impl Fn(&invoice::Invoice) -> bool,
) -> invoice::Invoice {
    let started = Instant::now();
    loop {
        if let Some(inv) = app.invoice_of(tenant, "2026-06").await
            && done(&inv)
        {
            return inv;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{what}: not reached in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn invoices_are_pushed_once_and_paid_through_stripes_webhook() {
    let stripe = LocalStripe::start().await;
    let app = app_on(&stripe.base()).await;
    stripe
        .webhook(
            &format!("{}/v1/billing/stripe/webhook", app.address),
            WEBHOOK_SECRET,
        )
        .await;
    let (a, b) = (
        app.create_tenant("stripe-a").await,
        app.create_tenant("stripe-b").await,
    );
    for t in [&a, &b] {
        app.active_since_before(t.id, "team").await;
    }
    app.ledger(a.id, "embedding_tokens", 6_000_000, "2026-06-10T00:00:00Z")
        .await;
    let _worker = app.spawn_worker().await;
    tokio::join!(start_run(&app, "2026-06"), start_run(&app, "2026-06"));
    for t in [&a, &b] {
        let inv = wait_for(&app, t.id, "paid", |i| i.status == invoice::InvoiceStatus::Paid).await;
        assert_eq!(inv.stripe_status, invoice::StripeStatus::Pushed);
        let sid = inv.stripe_invoice_id.clone().expect("stripe invoice id");
        let theirs = stripe.get(&format!("/v1/invoices/{sid}")).await;
        assert_eq!(
            theirs["total"], inv.total_cents,
            "Stripe bills what the invoice says"
        );
        assert_eq!(theirs["status"], "paid");
        assert_eq!(
            theirs["customer"],
            inv.stripe_customer_id.clone().expect("customer").as_str()
        );
        let theirs_lines = stripe.get(&format!("/v1/invoices/{sid}/lines?limit=100")).await;
        assert_eq!(
            theirs_lines["data"].as_array().map(Vec::len),
            Some(inv.lines.len()),
            "one Stripe line per invoice line: {theirs_lines}"
        );
        assert_eq!(app.audit_count(t.id, "billing.invoice_pushed", None).await, 1);
        assert_eq!(app.audit_count(t.id, "billing.invoice_paid", None).await, 1);
    }
    // Stripe's own webhook deliveries (signed by localstripe) arrive and are accepted.
    let started = Instant::now();
    loop {
        let accepted: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM platform_audit_events
             WHERE action = 'billing.webhook_accepted' AND details->>'type' = 'invoice.paid'",
        )
        .fetch_one(app.control.pool())
        .await
        .expect("audit");
        if accepted >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Stripe's invoice.paid webhooks never arrived"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A third run, and a sweep of unfinished pushes, make nothing more.
    start_run(&app, "2026-06").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stripe.count("/v1/customers").await, 2, "one customer per tenant");
    assert_eq!(
        stripe.count("/v1/invoices").await,
        2,
        "one Stripe invoice per invoice"
    );
    // localstripe lists only pending items: none left over (no second set was made).
    assert_eq!(
        stripe.count("/v1/invoiceitems").await,
        0,
        "no invoice item outside an invoice"
    );
}

#[tokio::test]
async fn while_stripe_is_down_the_invoice_waits_retrying_and_completes_when_it_returns() {
    let port = free_port();
    let app = app_on(&format!("http://127.0.0.1:{port}")).await;
    let t = app.create_tenant("outage").await;
    app.active_since_before(t.id, "business").await;
    let _worker = app.spawn_worker().await;
    start_run(&app, "2026-06").await;
    let waiting = wait_for(&app, t.id, "retrying", |i| {
        i.stripe_status == invoice::StripeStatus::Retrying && i.stripe_attempts >= 1
    })
    .await;
    assert_eq!(
        waiting.total_cents, 49900,
        "the invoice is kept while Stripe is down"
    );
    assert!(
        waiting
            .stripe_error
            .as_deref()
            .is_some_and(|e| e.contains("unavailable")),
        "{waiting:?}"
    );
    let stripe = LocalStripe::start_on(port).await;
    let done = wait_for(&app, t.id, "pushed", |i| {
        i.stripe_status == invoice::StripeStatus::Pushed
    })
    .await;
    assert_eq!(done.stripe_error, None);
    assert_eq!(stripe.count("/v1/customers").await, 1);
    assert_eq!(stripe.count("/v1/invoices").await, 1);
    assert_eq!(
        app.audit_count(t.id, "billing.stripe_push_retrying", None).await,
        1
    );
    assert_eq!(app.audit_count(t.id, "billing.invoice_pushed", None).await, 1);
}

fn event(id: &str, kind: &str, stripe_invoice: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "object": "event", "type": kind,
        "data": {"object": {"id": stripe_invoice, "object": "invoice"}}
    }))
    .expect("json")
}

async fn deliver(app: &TestApp, body: &[u8], signature: Option<String>) -> (u16, Value) {
    let mut req = app
        .client
        .post(format!("{}/v1/billing/stripe/webhook", app.address))
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("Stripe-Signature", s);
    }
    let r = req.send().await.expect("deliver");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn status_of(app: &TestApp, tenant: TenantId) -> invoice::InvoiceStatus {
    app.invoice_of(tenant, "2026-06").await.expect("invoice").status
}

async fn refused(app: &TestApp, code: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM platform_audit_events WHERE action = 'billing.webhook_refused' AND reason = $1",
    )
    .bind(code)
    .fetch_one(app.control.pool())
    .await
    .expect("audit")
}

#[tokio::test]
async fn webhooks_are_verified_deduplicated_and_refusals_change_nothing() {
    let app = app_on("http://127.0.0.1:9").await;
    let t = app.create_tenant("hooks").await;
    app.active_since_before(t.id, "team").await;
    app.bill(t.id, "2026-06").await;
    let su = app.pool_as("docket_test_super").await;
    sqlx::query(
        "UPDATE invoices SET stripe_invoice_id = 'in_hooked', stripe_status = 'pushed' WHERE tenant_id = $1",
    )
    .bind(t.id)
    .execute(&su)
    .await
    .expect("pushed");
    let now = chrono::Utc::now().timestamp();

    let failed = event("evt_failed_1", "invoice.payment_failed", "in_hooked");
    // Forged: another secret, a tampered body, no header at all.
    let forged = sign("whsec_someone_else", now, &failed);
    assert_eq!(deliver(&app, &failed, Some(forged)).await.0, 400);
    let tampered = event("evt_failed_1", "invoice.payment_failed", "in_other");
    assert_eq!(
        deliver(&app, &tampered, Some(sign(WEBHOOK_SECRET, now, &failed)))
            .await
            .0,
        400
    );
    let (code, body) = deliver(&app, &failed, None).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("invalid_signature")),
        "{body}"
    );
    // Stale: correctly signed an hour ago.
    let (code, body) = deliver(&app, &failed, Some(sign(WEBHOOK_SECRET, now - 3600, &failed))).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("stale_event")),
        "{body}"
    );
    assert_eq!(
        status_of(&app, t.id).await,
        invoice::InvoiceStatus::Finalized,
        "refusals change nothing"
    );

    // Valid: paid.
    let paid = event("evt_paid_1", "invoice.paid", "in_hooked");
    let (code, body) = deliver(&app, &paid, Some(sign(WEBHOOK_SECRET, now, &paid))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(status_of(&app, t.id).await, invoice::InvoiceStatus::Paid);
    assert_eq!(app.audit_count(t.id, "billing.invoice_paid", None).await, 1);
    // Replayed: the same event again, freshly signed.
    let (code, body) = deliver(&app, &paid, Some(sign(WEBHOOK_SECRET, now + 1, &paid))).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("replayed_event")),
        "{body}"
    );
    // A payment failure arriving after the payment changes nothing either.
    let late = event("evt_failed_2", "invoice.payment_failed", "in_hooked");
    assert_eq!(
        deliver(&app, &late, Some(sign(WEBHOOK_SECRET, now, &late)))
            .await
            .0,
        200
    );
    assert_eq!(status_of(&app, t.id).await, invoice::InvoiceStatus::Paid);
    // Unknown invoice.
    let unknown = event("evt_paid_2", "invoice.paid", "in_never_pushed");
    let (code, body) = deliver(&app, &unknown, Some(sign(WEBHOOK_SECRET, now, &unknown))).await;
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (400, Some("unknown_invoice")),
        "{body}"
    );
    assert_eq!(app.audit_count(t.id, "billing.invoice_paid", None).await, 1);
    for code in [
        "invalid_signature",
        "stale_event",
        "replayed_event",
        "unknown_invoice",
    ] {
        assert!(refused(&app, code).await >= 1, "{code} refusal not audited");
    }
}

#[tokio::test]
async fn two_months_of_one_tenant_pushed_at_once_keep_their_own_lines() {
    let stripe = LocalStripe::start().await;
    let app = app_on(&stripe.base()).await;
    let t = app.create_tenant("two-months").await;
    app.active_since_before(t.id, "team").await;
    app.ledger(t.id, "embedding_tokens", 7_000_000, "2026-05-10T00:00:00Z")
        .await;
    let _worker = app.spawn_worker().await;
    tokio::join!(start_run(&app, "2026-05"), start_run(&app, "2026-06"));
    for month in ["2026-05", "2026-06"] {
        let started = Instant::now();
        let inv = loop {
            if let Some(i) = app.invoice_of(t.id, month).await
                && i.stripe_status == invoice::StripeStatus::Pushed
            {
                break i;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{month} never pushed"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let sid = inv.stripe_invoice_id.clone().expect("stripe id");
        let theirs = stripe.get(&format!("/v1/invoices/{sid}")).await;
        assert_eq!(
            theirs["total"], inv.total_cents,
            "{month}: Stripe bills this month's lines only"
        );
    }
    assert_eq!(
        stripe.count("/v1/customers").await,
        1,
        "one customer for both months"
    );
    assert_eq!(stripe.count("/v1/invoices").await, 2);
    assert_eq!(
        app.invoice_of(t.id, "2026-05").await.expect("may").total_cents,
        4900 + 400,
        "May's 2,000,000 tokens over"
    );
}

#[tokio::test]
async fn a_zero_total_invoice_is_paid_when_stripe_says_so() {
    let stripe = LocalStripe::start().await;
    let app = app_on(&stripe.base()).await;
    let t = app.create_tenant_on("free-tier", "free", "shared").await;
    app.active_since_before(t.id, "free").await;
    let _worker = app.spawn_worker().await;
    start_run(&app, "2026-06").await;
    let inv = wait_for(&app, t.id, "paid", |i| i.status == invoice::InvoiceStatus::Paid).await;
    assert_eq!(
        (inv.total_cents, inv.stripe_status),
        (0, invoice::StripeStatus::Pushed)
    );
    assert_eq!(app.audit_count(t.id, "billing.invoice_paid", None).await, 1);
}
