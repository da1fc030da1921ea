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

/// A tenant and the plan and status history it is to have lived:
/// `(tenant, [(RFC 3339 instant, plan)], [(RFC 3339 instant, status)])`.
pub type TenantHistory<'a> = (TenantId, &'a [(&'a str, &'a str)], &'a [(&'a str, &'a str)]);

impl TestApp {
    /// Replaces `tenant`'s plan and status history with `plans` and `statuses`
    /// (`(RFC 3339 instant, value)`), as if it had lived them.
    pub async fn set_history(&self, tenant: TenantId, plans: &[(&str, &str)], statuses: &[(&str, &str)]) {
        self.set_histories(&[(tenant, plans, statuses)]).await;
    }

    /// [`Self::set_history`] for several tenants in one transaction: a billing run that
    /// looks meanwhile sees all of them changed or none (a run between two tenants' changes
    /// would bill one and leave the other to the next run, ten minutes later).
    pub async fn set_histories(&self, tenants: &[TenantHistory<'_>]) {
        let su = self.pool_as("docket_test_super").await;
        let mut tx = su.begin().await.expect("begin");
        for (tenant, plans, statuses) in tenants {
            for table in ["plan_history", "status_history"] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE tenant_id = $1"
                )))
                .bind(tenant)
                .execute(&mut *tx)
                .await
                .expect("clear history");
            }
            for (at, plan) in plans.iter() {
                sqlx::query(
                    "INSERT INTO plan_history (tenant_id, plan_id, from_ts) VALUES ($1, $2, $3::timestamptz)",
                )
                .bind(tenant)
                .bind(plan)
                .bind(at)
                .execute(&mut *tx)
                .await
                .expect("plan history");
            }
            for (at, status) in statuses.iter() {
                sqlx::query(
                    "INSERT INTO status_history (tenant_id, status, from_ts) VALUES ($1, $2, $3::timestamptz)",
                )
                .bind(tenant)
                .bind(status)
                .bind(at)
                .execute(&mut *tx)
                .await
                .expect("status history");
            }
        }
        tx.commit().await.expect("commit");
        su.close().await;
    }

    /// Several tenants on `plan`, active since long before any billed month, in one
    /// transaction (see [`Self::set_histories`]).
    pub async fn active_since_before_all(&self, tenants: &[TenantId], plan: &str) {
        let plans = [("2020-01-01T00:00:00Z", plan)];
        let statuses = [("2020-01-01T00:00:00Z", "active")];
        let all: Vec<_> = tenants.iter().map(|t| (*t, &plans[..], &statuses[..])).collect();
        self.set_histories(&all).await;
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
