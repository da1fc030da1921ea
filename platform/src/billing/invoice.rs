//! One tenant's invoice for one month: computed from what the database holds and written
//! exactly once (a per-tenant-and-month lock plus the unique key), inside the tenant's
//! scope, with its audit event in the same transaction.

use super::compute::{self, Change, Inputs, Month, PlanPrice};
use super::{BillingError, LineKind};
use crate::audit::{Actor, Auditor, Event, Outcome};
use crate::db::TenantTx;
use crate::ids::{InvoiceId, TenantId};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// Where an invoice stands with the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    /// Final and owed.
    Finalized,
    /// Paid (a payment provider said so).
    Paid,
    /// The last payment attempt failed.
    PaymentFailed,
    /// Cancelled by an operator (the money stays on record).
    Void,
}

impl InvoiceStatus {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Finalized => "finalized",
            Self::Paid => "paid",
            Self::PaymentFailed => "payment_failed",
            Self::Void => "void",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "finalized" => Self::Finalized,
            "paid" => Self::Paid,
            "payment_failed" => Self::PaymentFailed,
            "void" => Self::Void,
            _ => return None,
        })
    }
}

/// Where an invoice stands with Stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StripeStatus {
    /// Stripe is not configured for this deployment.
    NotConfigured,
    /// Waiting to be pushed.
    Pending,
    /// A push failed; it is retried with backoff.
    Retrying,
    /// Customer, items and invoice exist in Stripe and the invoice is finalized.
    Pushed,
    /// Retries ran out; an operator must look.
    Failed,
}

impl StripeStatus {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Pushed => "pushed",
            Self::Failed => "failed",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "not_configured" => Self::NotConfigured,
            "pending" => Self::Pending,
            "retrying" => Self::Retrying,
            "pushed" => Self::Pushed,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// An invoice as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Invoice {
    /// Id (derived from tenant and month, so every retry names the same invoice).
    pub id: InvoiceId,
    /// The tenant billed.
    pub tenant_id: TenantId,
    /// The month billed.
    pub period: Month,
    /// Invoice number, `DKT-YYYYMM-NNNNNN`.
    pub number: String,
    /// The plan on the last billed day.
    pub plan_id: String,
    /// Currency of every amount.
    pub currency: String,
    /// Total in minor units.
    pub total_cents: i64,
    /// Days billed.
    pub active_days: i32,
    /// Payment state.
    pub status: InvoiceStatus,
    /// Stripe delivery state.
    pub stripe_status: StripeStatus,
    /// Stripe push attempts so far.
    pub stripe_attempts: i32,
    /// The last Stripe error, if any.
    pub stripe_error: Option<String>,
    /// Stripe customer.
    pub stripe_customer_id: Option<String>,
    /// Stripe invoice.
    pub stripe_invoice_id: Option<String>,
    /// When it was created (and finalized).
    pub created_at: DateTime<Utc>,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// Its lines.
    pub lines: Vec<StoredLine>,
}

/// A stored line.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = InvoiceLine)]
pub struct StoredLine {
    /// Position.
    pub ordinal: i32,
    /// What it bills.
    pub kind: LineKind,
    /// For people.
    pub description: String,
    /// Units.
    pub quantity: i64,
    /// The unit.
    pub unit: String,
    /// Amount in minor units.
    pub amount_cents: i64,
}

/// What billing one tenant's month did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Billed {
    /// The invoice was created now.
    Created(InvoiceId),
    /// It existed already (a repeated or concurrent run).
    Existing(InvoiceId),
    /// The tenant was active on no day of the month: nothing is owed.
    NotActive,
}

/// The invoice id of a tenant's month: the same for every attempt.
pub fn invoice_id(tenant: TenantId, month: Month) -> InvoiceId {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x9b1e_04c2_6d1f_4e7a_8c35_71d2_e0a4_5f38);
    InvoiceId(uuid::Uuid::new_v5(
        &NAMESPACE,
        format!("invoice:{tenant}:{month}").as_bytes(),
    ))
}

/// id, name, currency, base price, token quota, overage price (×10⁴).
type PlanRow = (String, String, String, i64, Option<i64>, Option<i64>);

/// Reads what the tenant's month depends on (inside its scope).
pub async fn inputs(tx: &mut TenantTx, month: Month) -> Result<Inputs, BillingError> {
    let plans: Vec<PlanRow> = sqlx::query_as(
        "SELECT id, name, currency, price_cents_monthly, monthly_token_quota,
                (overage_cents_per_1k * 10000)::bigint FROM plans",
    )
    .fetch_all(tx.conn())
    .await?;
    let plans = plans
        .into_iter()
        .map(
            |(id, name, currency, base_cents, token_quota, overage_per_1k_e4)| {
                let p = PlanPrice {
                    id: id.clone(),
                    name,
                    currency,
                    base_cents,
                    token_quota,
                    overage_per_1k_e4,
                };
                (id, p)
            },
        )
        .collect();
    // (table, column): constants of this function.
    let history = |table: &'static str, column: &'static str| {
        sqlx::AssertSqlSafe(format!(
            "SELECT from_ts, {column} FROM {table} WHERE from_ts < $1 ORDER BY from_ts, id"
        ))
    };
    let changes = |rows: Vec<(DateTime<Utc>, String)>| {
        rows.into_iter().map(|(at, value)| Change { at, value }).collect()
    };
    let plan_rows: Vec<(DateTime<Utc>, String)> = sqlx::query_as(history("plan_history", "plan_id"))
        .bind(month.end())
        .fetch_all(tx.conn())
        .await?;
    let status_rows: Vec<(DateTime<Utc>, String)> = sqlx::query_as(history("status_history", "status"))
        .bind(month.end())
        .fetch_all(tx.conn())
        .await?;
    let usage: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, quantity FROM usage_monthly WHERE month = $1")
            .bind(month.first_day())
            .fetch_all(tx.conn())
            .await?;
    // Locked: two months billed at once cannot both take the same correction.
    let adjustments: Vec<(uuid::Uuid, String, i64)> = sqlx::query_as(
        "SELECT id, description, amount_cents FROM invoice_adjustments
         WHERE applied_invoice_id IS NULL ORDER BY created_at, id FOR UPDATE",
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(Inputs {
        month,
        plans,
        plan_history: changes(plan_rows),
        status_history: changes(status_rows),
        usage: usage.into_iter().collect::<BTreeMap<_, _>>(),
        adjustments: adjustments
            .into_iter()
            .map(|(id, description, amount_cents)| compute::Adjustment {
                id,
                description,
                amount_cents,
            })
            .collect(),
    })
}

/// Bills the tenant of `tx` for `month`, exactly once: creates the finalized invoice and
/// its lines with a `billing.invoice_created` audit event, or reports the one that exists.
/// `stripe` says whether the invoice waits to be pushed to Stripe. The caller commits.
pub async fn bill(
    tx: &mut TenantTx,
    auditor: &Auditor,
    month: Month,
    stripe: bool,
) -> Result<Billed, BillingError> {
    let tenant = tx.tenant_id();
    let id = invoice_id(tenant, month);
    // Concurrent runs for the same tenant and month queue here; the loser sees the winner's
    // invoice once it commits. The unique key below is the last word either way.
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended('invoice:' || $1::text || ':' || $2::text, 0))",
    )
    .bind(tenant.to_string())
    .bind(month.to_string())
    .execute(tx.conn())
    .await?;
    let existing: Option<InvoiceId> = sqlx::query_scalar("SELECT id FROM invoices WHERE period = $1")
        .bind(month.first_day())
        .fetch_optional(tx.conn())
        .await?;
    if let Some(existing) = existing {
        return Ok(Billed::Existing(existing));
    }
    let inp = inputs(tx, month).await?;
    let Some(c) = compute::compute(&inp)? else {
        return Ok(Billed::NotActive);
    };
    let stripe_status = match stripe {
        true => super::invoice::StripeStatus::Pending,
        false => super::invoice::StripeStatus::NotConfigured,
    };
    let number: Option<String> = sqlx::query_scalar(
        "INSERT INTO invoices (id, tenant_id, period, number, plan_id, currency, total_cents, active_days, stripe_status)
         VALUES ($1, $2, $3, 'DKT-' || $4 || '-' || lpad(nextval('invoice_numbers')::text, 6, '0'), $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, period) DO NOTHING RETURNING number",
    )
    .bind(id)
    .bind(tenant)
    .bind(month.first_day())
    .bind(month.compact())
    .bind(&c.plan_id)
    .bind(&c.currency)
    .bind(c.total_cents)
    .bind(c.active_days as i32)
    .bind(stripe_status.as_str())
    .fetch_optional(tx.conn())
    .await?;
    let Some(number) = number else {
        return Ok(Billed::Existing(id));
    };
    for (i, l) in c.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO invoice_lines (tenant_id, invoice_id, ordinal, kind, description, quantity, unit, amount_cents)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(tenant)
        .bind(id)
        .bind(i as i32)
        .bind(l.kind.as_str())
        .bind(&l.description)
        .bind(l.quantity)
        .bind(&l.unit)
        .bind(l.amount_cents)
        .execute(tx.conn())
        .await?;
    }
    let applied: Vec<uuid::Uuid> = inp.adjustments.iter().map(|a| a.id).collect();
    if !applied.is_empty() {
        sqlx::query(
            "UPDATE invoice_adjustments SET applied_invoice_id = $1, applied_at = now() WHERE id = ANY($2)",
        )
        .bind(id)
        .bind(&applied)
        .execute(tx.conn())
        .await?;
    }
    let ev = Event::new("billing.invoice_created", Outcome::Allowed, Actor::System)
        .target(format!("invoice:{id}"))
        .detail("number", number)
        .detail("period", month.to_string())
        .detail("total_cents", c.total_cents)
        .detail("currency", c.currency.clone());
    auditor.tenant(tx, ev).await?;
    Ok(Billed::Created(id))
}

type InvoiceRow = (
    InvoiceId,
    TenantId,
    NaiveDate,
    String,
    String,
    String,
    i64,
    i32,
    String,
    String,
    i32,
    Option<String>,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

const INVOICE_COLS: &str =
    "id, tenant_id, period, number, plan_id, currency, total_cents, active_days, status,
    stripe_status, stripe_attempts, stripe_error, stripe_customer_id, stripe_invoice_id, created_at, paid_at";

fn from_row(r: InvoiceRow) -> Invoice {
    Invoice {
        id: r.0,
        tenant_id: r.1,
        period: Month::from_date(r.2),
        number: r.3,
        plan_id: r.4,
        currency: r.5,
        total_cents: r.6,
        active_days: r.7,
        status: InvoiceStatus::parse(&r.8).unwrap_or(InvoiceStatus::Finalized),
        stripe_status: StripeStatus::parse(&r.9).unwrap_or(StripeStatus::NotConfigured),
        stripe_attempts: r.10,
        stripe_error: r.11,
        stripe_customer_id: r.12,
        stripe_invoice_id: r.13,
        created_at: r.14,
        paid_at: r.15,
        lines: Vec::new(),
    }
}

/// The tenant's invoices, newest period first, without lines.
pub async fn list(tx: &mut TenantTx) -> Result<Vec<Invoice>, BillingError> {
    let rows: Vec<InvoiceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLS} FROM invoices ORDER BY period DESC"
    )))
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// One of the tenant's invoices with its lines (`None`: not the tenant's, or no such).
pub async fn get(tx: &mut TenantTx, id: InvoiceId) -> Result<Option<Invoice>, BillingError> {
    let row: Option<InvoiceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLS} FROM invoices WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut inv = from_row(row);
    let lines: Vec<(i32, String, String, i64, String, i64)> = sqlx::query_as(
        "SELECT ordinal, kind, description, quantity, unit, amount_cents
         FROM invoice_lines WHERE invoice_id = $1 ORDER BY ordinal",
    )
    .bind(id)
    .fetch_all(tx.conn())
    .await?;
    inv.lines = lines
        .into_iter()
        .map(
            |(ordinal, kind, description, quantity, unit, amount_cents)| StoredLine {
                ordinal,
                kind: LineKind::parse(&kind).unwrap_or(LineKind::Adjustment),
                description,
                quantity,
                unit,
                amount_cents,
            },
        )
        .collect();
    Ok(Some(inv))
}

/// One invoice of a period as operators list them (every tenant; control role).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PeriodInvoice {
    /// Invoice id.
    pub id: uuid::Uuid,
    /// The tenant.
    pub tenant_id: uuid::Uuid,
    /// Its slug.
    pub tenant_slug: String,
    /// Invoice number.
    pub number: String,
    /// Currency.
    pub currency: String,
    /// Total in minor units.
    pub total_cents: i64,
    /// Plan on the last billed day.
    pub plan_id: String,
    /// Payment state.
    pub status: String,
    /// Stripe delivery state.
    pub stripe_status: String,
}

/// Every tenant's invoice for `month`, by number.
pub async fn for_period(
    control: &crate::db::ControlDb,
    month: Month,
) -> Result<Vec<PeriodInvoice>, BillingError> {
    Ok(sqlx::query_as(
        "SELECT i.id, i.tenant_id, t.slug AS tenant_slug, i.number, i.currency, i.total_cents, i.plan_id,
                i.status, i.stripe_status
         FROM invoices i JOIN tenants t ON t.id = i.tenant_id
         WHERE i.period = $1 ORDER BY i.number",
    )
    .bind(month.first_day())
    .fetch_all(control.pool())
    .await?)
}
