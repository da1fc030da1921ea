//! Cross-tenant read models for operators (the panel): one query per page, as the control
//! role. Nothing here writes; every change goes through the same functions the `/ops` API
//! uses.

use crate::db::{ControlDb, DbError};
use crate::entitlements::TOKEN_KINDS;
use crate::ids::TenantId;
use chrono::{DateTime, NaiveDate, Utc};

/// Rows a page shows at most (operators narrow with the filters).
pub const PAGE_ROWS: i64 = 200;

/// Which tenants the tenants page lists.
#[derive(Debug, Clone, Default)]
pub struct TenantFilter {
    /// Part of the slug or the name (case-insensitive); empty: all.
    pub search: String,
    /// Exactly this plan.
    pub plan: Option<String>,
    /// Exactly this status.
    pub status: Option<String>,
    /// Exactly this isolation tier.
    pub tier: Option<String>,
}

/// One tenant as operators see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRow {
    /// Id.
    pub id: TenantId,
    /// Slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Plan.
    pub plan_id: String,
    /// Isolation tier.
    pub isolation_tier: String,
    /// `active`, `suspended`, `deleting` or `deleted`.
    pub status: String,
    /// Documents kept (queued, processing or ready: what the plan's document limit counts).
    pub documents: i64,
    /// Tokens counted against the quota this calendar month (UTC).
    pub tokens_this_month: i64,
    /// The plan's monthly token quota (`None`: unlimited).
    pub quota: Option<i64>,
    /// The newest event on its audit chain.
    pub last_activity: Option<DateTime<Utc>>,
    /// Rate-limit overrides in force, as `class: per_minute/min (burst b) until t`.
    pub overrides: Vec<String>,
}

/// Tenants matching `f`, by slug.
pub async fn tenants(control: &ControlDb, f: &TenantFilter) -> Result<Vec<TenantRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT t.id, t.slug, t.name, t.plan_id, t.isolation_tier, t.status,
           (SELECT count(*) FROM documents d WHERE d.tenant_id = t.id
              AND d.status IN ('queued', 'processing', 'ready')) AS documents,
           COALESCE((SELECT sum(u.quantity) FROM usage_monthly u WHERE u.tenant_id = t.id
                      AND u.month = date_trunc('month', now() AT TIME ZONE 'UTC')::date
                      AND u.kind = ANY($5)), 0)::bigint AS tokens_this_month,
           p.monthly_token_quota AS quota,
           (SELECT a.occurred_at FROM audit_events a WHERE a.tenant_id = t.id ORDER BY a.seq DESC LIMIT 1) AS last_activity,
           ARRAY(SELECT format('%s: %s/min (burst %s) until %s', r.class, r.per_minute, r.burst,
                               to_char(r.expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI \"UTC\"'))
                 FROM rate_overrides r WHERE r.tenant_id = t.id AND r.expires_at > now() ORDER BY r.class) AS overrides
         FROM tenants t JOIN plans p ON p.id = t.plan_id
         WHERE ($1 = '' OR strpos(lower(t.slug), lower($1)) > 0 OR strpos(lower(t.name), lower($1)) > 0)
           AND ($2::text IS NULL OR t.plan_id = $2)
           AND ($3::text IS NULL OR t.status = $3)
           AND ($4::text IS NULL OR t.isolation_tier = $4)
         ORDER BY t.slug LIMIT $6",
    )
    .bind(f.search.trim())
    .bind(f.plan.as_deref())
    .bind(f.status.as_deref())
    .bind(f.tier.as_deref())
    .bind(&TOKEN_KINDS[..])
    .bind(PAGE_ROWS)
    .fetch_all(control.pool())
    .await?)
}

/// Plan ids, for the plan-change form.
pub async fn plan_ids(control: &ControlDb) -> Result<Vec<String>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM plans ORDER BY price_cents_monthly, id")
            .fetch_all(control.pool())
            .await?,
    )
}

/// An import that is still unpacking or running.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportRow {
    /// Import id.
    pub id: uuid::Uuid,
    /// Its tenant's slug.
    pub slug: String,
    /// `zip`, `s3` or `folder`.
    pub source: String,
    /// `unpacking` or `running`.
    pub status: String,
    /// Entries found.
    pub total: i32,
    /// Entries the unpack step has handled.
    pub unpacked: i32,
    /// Documents ready.
    pub ready: i64,
    /// Documents and entries that failed.
    pub failed: i64,
    /// Documents waiting or in the pipeline.
    pub processing: i64,
    /// Started.
    pub started_at: DateTime<Utc>,
}

impl ImportRow {
    /// Entries done with (unpacked and not waiting or in the pipeline: ready, failed,
    /// duplicate, cancelled or deleted since) out of `total`, as a whole percentage.
    pub fn percent(&self) -> i64 {
        if self.total <= 0 {
            return 0;
        }
        let done = (i64::from(self.unpacked) - self.processing).max(0);
        (done * 100 / i64::from(self.total)).min(100)
    }
}

/// Imports in progress, oldest first.
pub async fn imports_in_progress(control: &ControlDb) -> Result<Vec<ImportRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT i.id, t.slug, i.source, i.status, i.total, i.unpacked,
           count(d.id) FILTER (WHERE d.status = 'ready') AS ready,
           count(d.id) FILTER (WHERE d.status = 'failed')
             + (SELECT count(*) FROM import_failures f WHERE f.import_id = i.id) AS failed,
           count(d.id) FILTER (WHERE d.status IN ('queued', 'processing')) AS processing,
           i.started_at
         FROM imports i JOIN tenants t ON t.id = i.tenant_id
         LEFT JOIN documents d ON d.import_id = i.id
         WHERE i.status IN ('unpacking', 'running')
         GROUP BY i.id, t.slug ORDER BY i.started_at LIMIT $1",
    )
    .bind(PAGE_ROWS)
    .fetch_all(control.pool())
    .await?)
}

/// A failed or stalled pipeline job.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    /// Job id.
    pub id: uuid::Uuid,
    /// Its tenant's slug.
    pub slug: String,
    /// `parse`, `chunk`, `embed`, `index`, …
    pub kind: String,
    /// `failed` or `running` (stalled).
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// Machine-readable error.
    pub error_code: Option<String>,
    /// The error sentence.
    pub error_message: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Jobs that failed in the last week, and pipeline jobs (parse, chunk, embed, index)
/// running far past their stage's norm (the rule of `/metrics`' stalled gauge), newest
/// first.
pub async fn troubled_jobs(control: &ControlDb) -> Result<Vec<JobRow>, DbError> {
    use crate::imports::progress::{STALL_FACTOR, STALL_FLOOR_SECS};
    Ok(sqlx::query_as(
        "WITH norms AS (
           SELECT kind, GREATEST($1, $2 * percentile_cont(0.5) WITHIN GROUP
                    (ORDER BY extract(epoch FROM finished_at - started_at))) AS secs
           FROM jobs WHERE status = 'succeeded' AND finished_at > now() - interval '1 day' GROUP BY kind)
         SELECT j.id, t.slug, j.kind, j.status, j.attempts, j.error_code, j.error_message, j.updated_at
         FROM jobs j JOIN tenants t ON t.id = j.tenant_id LEFT JOIN norms n ON n.kind = j.kind
         WHERE (j.status = 'failed' AND j.updated_at > now() - interval '7 days')
            OR (j.status = 'running' AND j.kind IN ('parse', 'chunk', 'embed', 'index')
                AND j.updated_at < now() - make_interval(secs => COALESCE(n.secs, $1)))
         ORDER BY j.updated_at DESC LIMIT $3",
    )
    .bind(STALL_FLOOR_SECS)
    .bind(STALL_FACTOR)
    .bind(PAGE_ROWS)
    .fetch_all(control.pool())
    .await?)
}

/// A billing run.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BillingRunRow {
    /// The month billed.
    pub period: NaiveDate,
    /// `schedule` or `operator`.
    pub origin: String,
    /// Whether it only computed.
    pub dry_run: bool,
    /// `running`, `finished` or `failed`.
    pub status: String,
    /// Tenants billed.
    pub tenants: i32,
    /// Invoices queued.
    pub queued: i32,
    /// Started.
    pub started_at: DateTime<Utc>,
    /// Why it failed.
    pub error: Option<String>,
}

/// The latest billing runs.
pub async fn billing_runs(control: &ControlDb) -> Result<Vec<BillingRunRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT period, origin, dry_run, status, tenants, queued, started_at, error
         FROM billing_runs ORDER BY started_at DESC LIMIT 24",
    )
    .fetch_all(control.pool())
    .await?)
}

/// Invoices of one month (void ones left out), counted by status.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvoicePeriodRow {
    /// The month.
    pub period: NaiveDate,
    /// Invoices issued.
    pub invoices: i64,
    /// Of which paid.
    pub paid: i64,
    /// Of which a payment failed.
    pub payment_failed: i64,
    /// Of which not (yet) in Stripe.
    pub not_pushed: i64,
    /// Their total, in cents of each invoice's currency (summed across currencies only
    /// when there is one).
    pub total_cents: i64,
    /// The currencies involved.
    pub currencies: String,
}

/// Invoices per month, newest first.
pub async fn invoice_periods(control: &ControlDb) -> Result<Vec<InvoicePeriodRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT period, count(*) AS invoices,
           count(*) FILTER (WHERE status = 'paid') AS paid,
           count(*) FILTER (WHERE status = 'payment_failed') AS payment_failed,
           count(*) FILTER (WHERE stripe_status <> 'pushed') AS not_pushed,
           sum(total_cents)::bigint AS total_cents,
           string_agg(DISTINCT currency, ', ') AS currencies
         FROM invoices WHERE status <> 'void' GROUP BY period ORDER BY period DESC LIMIT 24",
    )
    .fetch_all(control.pool())
    .await?)
}

/// An export or a deletion request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequestRow {
    /// `export` or `deletion (document|user|tenant)`.
    pub kind: String,
    /// Its id.
    pub id: uuid::Uuid,
    /// Its tenant's slug.
    pub slug: String,
    /// Its status.
    pub status: String,
    /// Machine-readable error, if it failed.
    pub error_code: Option<String>,
    /// Asked for.
    pub created_at: DateTime<Utc>,
    /// Finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// The latest exports and deletions, newest first.
pub async fn requests(control: &ControlDb) -> Result<Vec<RequestRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT * FROM (
           SELECT 'export' AS kind, e.id, t.slug, e.status, e.error_code, e.created_at, e.finished_at
           FROM exports e JOIN tenants t ON t.id = e.tenant_id
           UNION ALL
           SELECT 'deletion (' || d.scope || ')', d.id, t.slug, d.status, d.error_code, d.created_at, d.finished_at
           FROM deletions d JOIN tenants t ON t.id = d.tenant_id
         ) r ORDER BY created_at DESC LIMIT $1",
    )
    .bind(PAGE_ROWS)
    .fetch_all(control.pool())
    .await?)
}

/// The newest events of one chain (a tenant's, or the platform's when `tenant` is `None`)
/// whose action starts with `action_prefix`, newest first.
pub async fn audit_events(
    control: &ControlDb,
    tenant: Option<TenantId>,
    action_prefix: &str,
) -> Result<Vec<crate::audit::StoredEvent>, DbError> {
    // Fixed SQL fragments only; the values are bound.
    let (table, scope) = match tenant {
        Some(_) => ("audit_events", "tenant_id = $1"),
        None => ("platform_audit_events", "$1::uuid IS NULL"),
    };
    let sql = format!(
        "SELECT {} FROM {table} WHERE {scope} AND starts_with(action, $2) ORDER BY seq DESC LIMIT $3",
        crate::audit::COLS
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(action_prefix)
        .bind(PAGE_ROWS)
        .fetch_all(control.pool())
        .await?)
}
