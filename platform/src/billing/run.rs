//! A month's billing run: which tenants owe something for the month, and one `invoice` job
//! for each that has no invoice yet. Started by the scheduler on the calendar (and to catch
//! up), or by an operator (`docketctl billing run`). A run repeated, or two at once, queue
//! the same jobs again at worst; the invoices themselves are made exactly once.

use super::compute::{self, Computed, Month};
use super::job::{self, InvoiceJob};
use super::{BillingError, invoice};
use crate::audit::{Actor, Auditor, Event, Outcome};
use crate::db::ControlDb;
use crate::ids::TenantId;
use crate::jobs::JobQueue;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Who started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The scheduler's calendar.
    Schedule,
    /// An operator, on demand.
    Operator,
}

impl Origin {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Origin::Schedule => "schedule",
            Origin::Operator => "operator",
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The month billed.
    pub month: Month,
    /// Only this tenant.
    pub only: Option<TenantId>,
    /// Compute and report, change nothing.
    pub dry_run: bool,
    /// Who asked.
    pub origin: Origin,
    /// Who asked, for the record (`scheduler`, `docketctl`, `operator:{id}`).
    pub requested_by: String,
    /// The actor audited.
    pub actor: Actor,
}

/// One tenant in a run's report.
#[derive(Debug, Clone, Serialize)]
pub struct TenantLine {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its slug.
    pub slug: String,
    /// It already had an invoice for the month.
    pub invoiced: bool,
    /// What it would be billed (dry runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Computed>,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The run's record (`None` for a dry run, which records nothing).
    pub run_id: Option<uuid::Uuid>,
    /// The month.
    pub period: Month,
    /// Dry run.
    pub dry_run: bool,
    /// Tenants that owe something for the month.
    pub tenants: usize,
    /// Invoice jobs queued.
    pub queued: usize,
    /// Tenants already invoiced.
    pub existing: usize,
    /// Each tenant.
    pub lines: Vec<TenantLine>,
}

/// Tenants active on at least one day of `month` (status `active` at the end of a day, the
/// rule [`compute`] bills by), with whether each has its invoice already.
pub async fn billable(
    control: &ControlDb,
    month: Month,
    only: Option<TenantId>,
) -> Result<Vec<(TenantId, String, bool)>, BillingError> {
    // A history row is in force over [from_ts, next from_ts); it covers the end of a day of
    // the month when the first midnight after it starts (no earlier than the end of the
    // month's first day) is within that interval and within the month.
    let rows: Vec<(TenantId, String, bool)> = sqlx::query_as(
        "WITH h AS (
           SELECT tenant_id, status, from_ts,
                  lead(from_ts) OVER (PARTITION BY tenant_id ORDER BY from_ts, id) AS until
           FROM status_history WHERE ($3::uuid IS NULL OR tenant_id = $3)
         ), active AS (
           SELECT DISTINCT tenant_id FROM h
           WHERE status = 'active'
             AND greatest(date_trunc('day', from_ts AT TIME ZONE 'UTC') + interval '1 day',
                          $1::timestamp + interval '1 day')
                 <= least(coalesce(until AT TIME ZONE 'UTC', 'infinity'::timestamp), $2::timestamp)
         )
         SELECT t.id, t.slug, EXISTS (SELECT 1 FROM invoices i WHERE i.tenant_id = t.id AND i.period = $1::date)
         FROM active a JOIN tenants t ON t.id = a.tenant_id ORDER BY t.slug",
    )
    .bind(month.start().naive_utc())
    .bind(month.end().naive_utc())
    .bind(only.map(|t| t.as_uuid()))
    .fetch_all(control.pool())
    .await?;
    Ok(rows)
}

/// Tenants whose `month` is recorded as impossible to compute (`invoice_failures`).
pub async fn failed(
    control: &ControlDb,
    month: Month,
) -> Result<std::collections::HashSet<TenantId>, BillingError> {
    let ids: Vec<TenantId> = sqlx::query_scalar("SELECT tenant_id FROM invoice_failures WHERE period = $1")
        .bind(month.first_day())
        .fetch_all(control.pool())
        .await?;
    Ok(ids.into_iter().collect())
}

/// Runs `req`: a dry run computes every tenant's month and changes nothing; a real run
/// records itself, queues an `invoice` job per tenant without an invoice, and audits its
/// start and end on the platform chain. Refuses a month that is not over at `now`.
pub async fn start(
    control: &ControlDb,
    queue: &JobQueue,
    auditor: &Auditor,
    req: &RunRequest,
    now: DateTime<Utc>,
) -> Result<RunReport, BillingError> {
    if req.month.end() > now {
        return Err(BillingError::NotOver(req.month));
    }
    let mut due = billable(control, req.month, req.only).await?;
    // The calendar leaves months that cannot be computed alone; an operator's run retries them.
    if req.origin == Origin::Schedule {
        let failed = failed(control, req.month).await?;
        due.retain(|d| !failed.contains(&d.0));
    }
    let mut report = RunReport {
        run_id: None,
        period: req.month,
        dry_run: req.dry_run,
        tenants: due.len(),
        queued: 0,
        existing: due.iter().filter(|d| d.2).count(),
        lines: Vec::with_capacity(due.len()),
    };
    if req.dry_run {
        for (tenant, slug, invoiced) in due {
            // Read in the tenant's scope and roll back: a dry run writes nothing.
            let mut tx = control.begin_tenant(tenant).await?;
            let preview = compute::compute(&invoice::inputs(&mut tx, req.month).await?)?;
            drop(tx);
            report.lines.push(TenantLine {
                tenant_id: tenant,
                slug,
                invoiced,
                preview,
            });
        }
        return Ok(report);
    }
    let run_id = uuid::Uuid::new_v4();
    let mut tx = control.pool().begin().await?;
    sqlx::query(
        "INSERT INTO billing_runs (id, period, origin, only_tenant, dry_run, requested_by, tenants, existing)
         VALUES ($1, $2, $3, $4, false, $5, $6, $7)",
    )
    .bind(run_id)
    .bind(req.month.first_day())
    .bind(req.origin.as_str())
    .bind(req.only.map(|t| t.as_uuid()))
    .bind(&req.requested_by)
    .bind(report.tenants as i32)
    .bind(report.existing as i32)
    .execute(&mut *tx)
    .await?;
    let ev = Event::new("billing.run_started", Outcome::Allowed, req.actor)
        .target(format!("billing_run:{run_id}"))
        .detail("period", req.month.to_string())
        .detail("origin", req.origin.as_str())
        .detail("tenants", report.tenants);
    auditor.platform_in(&mut tx, ev).await?;
    tx.commit().await?;
    report.run_id = Some(run_id);
    let pushed = push_all(queue, req.month, run_id, &due, &mut report).await;
    let (status, error) = match &pushed {
        Ok(()) => ("finished", None),
        Err(e) => ("failed", Some(e.to_string())),
    };
    let mut tx = control.pool().begin().await?;
    sqlx::query(
        "UPDATE billing_runs SET status = $2, queued = $3, error = $4, finished_at = now() WHERE id = $1",
    )
    .bind(run_id)
    .bind(status)
    .bind(report.queued as i32)
    .bind(&error)
    .execute(&mut *tx)
    .await?;
    let outcome = match pushed.is_ok() {
        true => Outcome::Allowed,
        false => Outcome::Failed,
    };
    let mut ev = Event::new("billing.run_finished", outcome, req.actor)
        .target(format!("billing_run:{run_id}"))
        .detail("period", req.month.to_string())
        .detail("queued", report.queued)
        .detail("existing", report.existing);
    if let Some(e) = &error {
        ev = ev.reason(e.clone());
    }
    auditor.platform_in(&mut tx, ev).await?;
    tx.commit().await?;
    pushed?;
    Ok(report)
}

/// Most `invoice` jobs waiting in the queue at once: a run of tens of thousands of tenants
/// is fed in slices (apalis-redis fails past ~8,000 due tasks in one queue).
const MAX_QUEUED: u64 = 2_000;
/// A queue that does not drain for this long (no worker running) fails the run; the
/// calendar's next step queues the rest.
const STALL: std::time::Duration = std::time::Duration::from_secs(600);

/// Waits until the invoice queue has room for another slice.
async fn wait_for_room(queue: &JobQueue) -> Result<(), BillingError> {
    let config = job::config(queue);
    let started = std::time::Instant::now();
    let mut last = u64::MAX;
    let mut since = std::time::Instant::now();
    loop {
        let depth = queue.depth(&config).await?;
        if depth < MAX_QUEUED {
            return Ok(());
        }
        if depth < last {
            (last, since) = (depth, std::time::Instant::now());
        }
        if since.elapsed() > STALL {
            return Err(BillingError::Invalid(format!(
                "the invoice queue has not drained for {} s ({depth} jobs waiting after {} s): is a docket-worker running?",
                STALL.as_secs(),
                started.elapsed().as_secs()
            )));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn push_all(
    queue: &JobQueue,
    month: Month,
    run_id: uuid::Uuid,
    due: &[(TenantId, String, bool)],
    report: &mut RunReport,
) -> Result<(), BillingError> {
    for (tenant, slug, invoiced) in due {
        if !invoiced {
            if report.queued.is_multiple_of(250) {
                wait_for_room(queue).await?;
            }
            let job = InvoiceJob {
                v: job::INVOICE_VERSION,
                tenant_id: *tenant,
                period: month,
                run_id,
            };
            job::push(queue, &job).await?;
            report.queued += 1;
        }
        report.lines.push(TenantLine {
            tenant_id: *tenant,
            slug: slug.clone(),
            invoiced: *invoiced,
            preview: None,
        });
    }
    Ok(())
}

/// A run as recorded.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = BillingRun)]
pub struct RunRecord {
    /// Id.
    pub id: uuid::Uuid,
    /// The month (its first day).
    pub period: chrono::NaiveDate,
    /// `schedule` or `operator`.
    pub origin: String,
    /// Restricted to one tenant.
    pub only_tenant: Option<uuid::Uuid>,
    /// Who asked.
    pub requested_by: String,
    /// `running`, `finished` (every job queued) or `failed`.
    pub status: String,
    /// Tenants owing something.
    pub tenants: i32,
    /// Jobs queued.
    pub queued: i32,
    /// Already invoiced.
    pub existing: i32,
    /// Why it failed.
    pub error: Option<String>,
    /// Started.
    pub started_at: DateTime<Utc>,
    /// Finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// The latest runs, newest first.
pub async fn recent(control: &ControlDb, limit: i64) -> Result<Vec<RunRecord>, BillingError> {
    Ok(sqlx::query_as(
        "SELECT id, period, origin, only_tenant, requested_by, status, tenants, queued, existing,
                error, started_at, finished_at
         FROM billing_runs ORDER BY started_at DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(control.pool())
    .await?)
}

/// The scheduler's calendar step for invoices: for each of the last `months_back` complete
/// months, if a tenant that owes something has no invoice and no run for that month started
/// in the last `quiet` (its jobs may still be in the queue), start one. Derived from what
/// the database holds, not from when the scheduler last ran, so a month missed while
/// everything was down is caught up on start. Returns the runs started.
pub async fn catch_up(
    control: &ControlDb,
    queue: &JobQueue,
    auditor: &Auditor,
    now: DateTime<Utc>,
    months_back: u32,
    quiet: chrono::Duration,
) -> Result<Vec<RunReport>, BillingError> {
    // A run whose process died stays `running`; after six hours (a run of 10,000 tenants
    // takes about a minute) it is recorded as failed. Its missing invoices are found below.
    sqlx::query(
        "UPDATE billing_runs SET status = 'failed', finished_at = $1,
                error = 'the process running it stopped before it finished'
         WHERE status = 'running' AND started_at < $1 - interval '6 hours'",
    )
    .bind(now)
    .execute(control.pool())
    .await?;
    let mut month = Month::of(now).previous();
    let mut started = Vec::new();
    for _ in 0..months_back {
        let failed = failed(control, month).await?;
        let missing = billable(control, month, None)
            .await?
            .iter()
            .any(|d| !d.2 && !failed.contains(&d.0));
        let recent: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM billing_runs WHERE period = $1 AND only_tenant IS NULL
                              AND status <> 'failed' AND started_at > $2)",
        )
        .bind(month.first_day())
        .bind(now - quiet)
        .fetch_one(control.pool())
        .await?;
        if missing && !recent {
            let req = RunRequest {
                month,
                only: None,
                dry_run: false,
                origin: Origin::Schedule,
                requested_by: "scheduler".into(),
                actor: Actor::System,
            };
            started.push(start(control, queue, auditor, &req, now).await?);
        }
        month = month.previous();
    }
    Ok(started)
}

/// Queues the `invoice` job again for every invoice whose Stripe push is unfinished
/// (`pending` or `retrying`) and untouched for `quiet`: the job's own retries ran out, or
/// its queue entry was lost. Returns how many were queued. A repeated sweep before the
/// next attempt queues nothing new (the task id is derived from the attempt count).
pub async fn resume_pushes(
    control: &ControlDb,
    queue: &JobQueue,
    now: DateTime<Utc>,
    quiet: chrono::Duration,
) -> Result<usize, BillingError> {
    let stuck: Vec<(uuid::Uuid, TenantId, chrono::NaiveDate, i32)> = sqlx::query_as(
        "SELECT id, tenant_id, period, stripe_attempts FROM invoices
         WHERE stripe_status IN ('pending', 'retrying') AND coalesce(stripe_attempted_at, created_at) < $1
         ORDER BY created_at LIMIT 1000",
    )
    .bind(now - quiet)
    .fetch_all(control.pool())
    .await?;
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x41f3_0c9e_77d2_4a51_b0e8_2c6d_9a13_f5b7);
    for (id, tenant, period, attempts) in &stuck {
        let job = InvoiceJob {
            v: job::INVOICE_VERSION,
            tenant_id: *tenant,
            period: Month::from_date(*period),
            run_id: uuid::Uuid::new_v5(&NAMESPACE, format!("resume:{id}:{attempts}").as_bytes()),
        };
        job::push(queue, &job).await?;
    }
    Ok(stuck.len())
}
