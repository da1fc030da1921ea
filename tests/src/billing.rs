//! Billing fixtures: a tenant's plan and status history and its ledger placed in a past
//! month (written as the test superuser, the way the history trigger and the workers would
//! have written them then), and billing one tenant's month directly.

use crate::TestApp;
use docket_platform::audit::Actor;
use docket_platform::billing::run::{self, Origin, RunRequest};
use docket_platform::billing::{Billed, Month, invoice};
use docket_platform::ids::TenantId;
use docket_platform::jobs::JobQueue;
use docket_platform::redis_conn::Redis;
use std::time::{Duration, Instant};

impl TestApp {
    /// Replaces `tenant`'s plan and status history with `plans` and `statuses`
    /// (`(RFC 3339 instant, value)`), as if it had lived them.
    pub async fn set_history(&self, tenant: TenantId, plans: &[(&str, &str)], statuses: &[(&str, &str)]) {
        let su = self.pool_as("docket_test_super").await;
        for table in ["plan_history", "status_history"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE tenant_id = $1"
            )))
            .bind(tenant)
            .execute(&su)
            .await
            .expect("clear history");
        }
        for (at, plan) in plans {
            sqlx::query(
                "INSERT INTO plan_history (tenant_id, plan_id, from_ts) VALUES ($1, $2, $3::timestamptz)",
            )
            .bind(tenant)
            .bind(plan)
            .bind(at)
            .execute(&su)
            .await
            .expect("plan history");
        }
        for (at, status) in statuses {
            sqlx::query(
                "INSERT INTO status_history (tenant_id, status, from_ts) VALUES ($1, $2, $3::timestamptz)",
            )
            .bind(tenant)
            .bind(status)
            .bind(at)
            .execute(&su)
            .await
            .expect("status history");
        }
        su.close().await;
    }

    /// A tenant on `plan` and active since long before `month`.
    pub async fn active_since_before(&self, tenant: TenantId, plan: &str) {
        self.set_history(
            tenant,
            &[("2020-01-01T00:00:00Z", plan)],
            &[("2020-01-01T00:00:00Z", "active")],
        )
        .await;
    }

    /// One ledger row of `quantity` `kind` at `at` (RFC 3339) for `tenant`.
    pub async fn ledger(&self, tenant: TenantId, kind: &str, quantity: i64, at: &str) {
        sqlx::query(
            "INSERT INTO usage_events (tenant_id, kind, quantity, actor, idempotency_key, occurred_at)
             VALUES ($1, $2, $3, 'system', gen_random_uuid()::text, $4::timestamptz)",
        )
        .bind(tenant)
        .bind(kind)
        .bind(quantity)
        .bind(at)
        .execute(self.control.pool())
        .await
        .expect("ledger row");
    }

    /// Bills `tenant`'s `month` directly (what one `invoice` job does).
    pub async fn bill(&self, tenant: TenantId, month: &str) -> Billed {
        let month = Month::parse(month).expect("month");
        let mut tx = self.db.begin_tenant(tenant).await.expect("begin");
        let billed = invoice::bill(&mut tx, &self.auditor(), month, false)
            .await
            .expect("bill");
        tx.commit().await.expect("commit");
        billed
    }

    /// `tenant`'s invoice for `month` with its lines.
    pub async fn invoice_of(&self, tenant: TenantId, month: &str) -> Option<invoice::Invoice> {
        let month = Month::parse(month).expect("month");
        let mut tx = self.db.begin_tenant(tenant).await.expect("begin");
        let id = invoice::invoice_id(tenant, month);
        invoice::get(&mut tx, id).await.expect("get")
    }
}

/// The deployment's job queues, as a run pushes to them.
pub fn queue(app: &TestApp) -> JobQueue {
    let redis = Redis::new(&app.config.redis.url, &app.config.redis.prefix).expect("redis");
    JobQueue::new(redis, 5)
}

/// An operator's run request.
pub fn request(month: &str, only: Option<TenantId>, dry_run: bool) -> RunRequest {
    RunRequest {
        month: Month::parse(month).expect("month"),
        only,
        dry_run,
        origin: Origin::Operator,
        requested_by: "test".into(),
        actor: Actor::System,
    }
}

/// Waits until every tenant that owes something for `month` has its invoice.
pub async fn wait_invoiced(app: &TestApp, month: &str, within: Duration) {
    let m = Month::parse(month).expect("month");
    let started = Instant::now();
    loop {
        let due = run::billable(&app.control, m, None).await.expect("billable");
        if due.iter().all(|d| d.2) {
            return;
        }
        assert!(
            started.elapsed() < within,
            "invoices for {month} not made in {within:?}: {due:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
