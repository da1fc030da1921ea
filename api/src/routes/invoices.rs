//! Invoices. Tenants (capability `billing.read`): `GET /v1/invoices`,
//! `GET /v1/invoices/{id}` (lines, totals, period, status, Stripe ids) and
//! `GET /v1/invoices/{id}.pdf`. Another tenant's invoice is simply not found. Operators:
//! `GET /ops/invoices?period=YYYY-MM`, `GET /ops/billing/runs` and
//! `GET /ops/billing/margins?period=YYYY-MM` (revenue, cost and margin per tenant and plan),
//! `GET /ops/billing/failures?period=YYYY-MM` (months that cannot be computed).

use crate::auth::{OperatorAuth, TenantAuth};
use crate::error::ApiError;
use crate::routes::parse_id;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use docket_platform::billing::pdf::{self, Customer, Seller};
use docket_platform::billing::{BillingError, Month, invoice, margins, run};
use docket_platform::ids::InvoiceId;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::{router::OpenApiRouter, routes};

/// `/v1/invoices…`, `/ops/invoices`, `/ops/billing/runs`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(one))
        .routes(routes!(ops_list))
        .routes(routes!(ops_runs))
        .routes(routes!(ops_margins))
        .routes(routes!(ops_failures))
}

fn billing_error(e: BillingError) -> ApiError {
    ApiError::internal(e)
}

/// List the tenant's invoices
///
/// Every invoice of the tenant, newest period first (capability `billing.read`); audited
/// (`billing.invoices.list`). Answers `{"invoices": [...]}`; each invoice has `id`,
/// `tenant_id`, `period` (`YYYY-MM`), `number` (`DKT-YYYYMM-NNNNNN`), `plan_id`, `currency`,
/// `total_cents` (minor units), `active_days`, `status` (`finalized`, `paid`,
/// `payment_failed`, `void`), `stripe_status` (`not_configured`, `pending`, `retrying`,
/// `pushed`, `failed`), `stripe_attempts`, `stripe_error`, `stripe_customer_id`,
/// `stripe_invoice_id`, `created_at`, `paid_at` and `lines` (each `ordinal`, `kind` (`base`,
/// `usage`, `overage`, `adjustment`), `description`, `quantity`, `unit`, `amount_cents`).
#[utoipa::path(
    get,
    path = "/v1/invoices",
    tag = "billing",
    responses(
        (status = 200, description = "The tenant's invoices, newest period first", body = serde_json::Value),
        (status = 403, description = "`forbidden`: the role or key lacks `billing.read`", body = crate::openapi::ErrorBody),
    )
)]
async fn list(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<Value>, ApiError> {
    auth.require(&state, Capability::BillingRead).await?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let invoices = invoice::list(&mut tx).await.map_err(billing_error)?;
    state
        .auditor
        .tenant(&mut tx, auth.event("billing.invoices.list", Outcome::Allowed))
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(json!({ "invoices": invoices })))
}

/// Read an invoice, or download it as a PDF
///
/// `/v1/invoices/{id}` answers `{"invoice": {...}}` with the fields of an invoice in the list
/// (`id`, `tenant_id`, `period`, `number`, `plan_id`, `currency`, `total_cents`, `active_days`,
/// `status`, `stripe_status`, `stripe_attempts`, `stripe_error`, `stripe_customer_id`,
/// `stripe_invoice_id`, `created_at`, `paid_at`, `lines`); audited (`billing.invoice.read`).
/// `/v1/invoices/{id}.pdf` answers the invoice as a PDF document, as an attachment named
/// after its number; audited (`billing.invoice.download`). Capability `billing.read`; another
/// tenant's invoice is not found.
#[utoipa::path(
    get,
    path = "/v1/invoices/{id}",
    tag = "billing",
    params(("id" = String, Path, description = "The invoice's id; `{id}.pdf` (the id followed by `.pdf`) downloads the PDF")),
    responses(
        (status = 200, description = "The invoice as JSON (`{id}`), or its PDF (`{id}.pdf`)", content(
            (serde_json::Value = "application/json"),
            (String = "application/pdf")
        )),
        (status = 403, description = "`forbidden`: the role or key lacks `billing.read`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: the id is not a UUID, or the tenant has no such invoice", body = crate::openapi::ErrorBody),
    )
)]
async fn one(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.require(&state, Capability::BillingRead).await?;
    let (raw, as_pdf) = match id.strip_suffix(".pdf") {
        Some(raw) => (raw, true),
        None => (id.as_str(), false),
    };
    let id = InvoiceId(parse_id(raw, "invoice")?);
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let Some(inv) = invoice::get(&mut tx, id).await.map_err(billing_error)? else {
        return Err(ApiError::not_found("invoice"));
    };
    let action = match as_pdf {
        true => "billing.invoice.download",
        false => "billing.invoice.read",
    };
    let ev = auth
        .event(action, Outcome::Allowed)
        .target(format!("invoice:{id}"));
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    if !as_pdf {
        tx.commit().await?;
        return Ok(Json(json!({ "invoice": inv })).into_response());
    }
    let (name, slug): (String, String) = sqlx::query_as("SELECT name, slug FROM tenants WHERE id = $1")
        .bind(auth.tenant_id())
        .fetch_one(tx.conn())
        .await?;
    tx.commit().await?;
    let billing = &state.config.billing;
    let seller = Seller {
        name: billing.seller_name.clone(),
        address: billing.seller_address.clone(),
    };
    let bytes = pdf::render(&inv, &seller, &Customer { name, slug }).map_err(ApiError::internal)?;
    let disposition = format!("attachment; filename=\"{}.pdf\"", inv.number);
    let mut resp = (StatusCode::OK, bytes).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// `?period=YYYY-MM` of the operators' billing reports.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PeriodQuery {
    /// The month, `YYYY-MM` (years 2000–2999); the last complete month when absent.
    period: Option<String>,
}

/// Records an operator's read of a month's billing on the platform chain.
pub async fn audit_read(
    state: &AppState,
    op: &OperatorAuth,
    action: &str,
    month: Month,
) -> Result<(), ApiError> {
    let ev = op
        .event(action, Outcome::Allowed)
        .detail("period", month.to_string());
    state
        .auditor
        .platform(state.control.pool(), ev)
        .await
        .map_err(ApiError::internal)?;
    Ok(())
}

/// A month from `?period=` (default: the last complete month).
fn month_of(
    q: Result<Query<PeriodQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Month, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    match q.period {
        None => Ok(Month::of(chrono::Utc::now()).previous()),
        Some(p) => Month::parse(&p).map_err(|m| ApiError::bad_request("invalid_period", m)),
    }
}

/// List every tenant's invoices of a month
///
/// Operators: the invoices of `period` (default: the last complete month) across tenants;
/// audited (`ops.invoices.list`). Answers `{"period": "YYYY-MM", "invoices": [{id, tenant_id,
/// tenant_slug, number, currency, total_cents, plan_id, status, stripe_status}]}`.
#[utoipa::path(
    get,
    path = "/ops/invoices",
    tag = "billing",
    params(PeriodQuery),
    responses(
        (status = 200, description = "The month's invoices", body = serde_json::Value),
        (status = 400, description = "`invalid_query` (an unknown or repeated parameter), `invalid_period` (not `YYYY-MM` with a year from 2000 to 2999)", body = crate::openapi::ErrorBody),
    )
)]
async fn ops_list(
    State(state): State<AppState>,
    op: OperatorAuth,
    q: Result<Query<PeriodQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let month = month_of(q)?;
    let invoices = invoice::for_period(&state.control, month)
        .await
        .map_err(billing_error)?;
    audit_read(&state, &op, "ops.invoices.list", month).await?;
    Ok(Json(json!({ "period": month, "invoices": invoices })))
}

/// List the recent billing runs
///
/// Operators: the latest 100 billing runs, newest first; audited (`ops.billing.runs`).
/// Answers `{"runs": [...]}`; each run has `id`, `period` (the month's first day), `origin`
/// (`schedule` or `operator`), `only_tenant`, `requested_by`, `status` (`running`, `finished`
/// or `failed`), `tenants` (owing something), `queued`, `existing` (already invoiced),
/// `error`, `started_at` and `finished_at`.
#[utoipa::path(
    get,
    path = "/ops/billing/runs",
    tag = "billing",
    responses((status = 200, description = "The recent billing runs", body = serde_json::Value))
)]
async fn ops_runs(State(state): State<AppState>, op: OperatorAuth) -> Result<Json<Value>, ApiError> {
    let runs = run::recent(&state.control, 100).await.map_err(billing_error)?;
    state
        .auditor
        .platform(
            state.control.pool(),
            op.event("ops.billing.runs", Outcome::Allowed),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({ "runs": runs })))
}

/// Report a month's revenue, cost and margin
///
/// Operators: per tenant and per plan, for `period` (default: the last complete month);
/// audited (`ops.billing.margins`). Answers `{"period": "YYYY-MM", "tenants": [{tenant_id,
/// slug, plan_id, currency, revenue_cents, cost_cents, margin_cents}], "plans": [{plan_id,
/// currency, tenants, revenue_cents, cost_cents, margin_cents}]}`.
#[utoipa::path(
    get,
    path = "/ops/billing/margins",
    tag = "billing",
    params(PeriodQuery),
    responses(
        (status = 200, description = "The month's margin report", body = serde_json::Value),
        (status = 400, description = "`invalid_query` (an unknown or repeated parameter), `invalid_period` (not `YYYY-MM` with a year from 2000 to 2999)", body = crate::openapi::ErrorBody),
    )
)]
async fn ops_margins(
    State(state): State<AppState>,
    op: OperatorAuth,
    q: Result<Query<PeriodQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let month = month_of(q)?;
    let report = margins::report(&state.control, &state.config.billing.cost_model, month)
        .await
        .map_err(billing_error)?;
    audit_read(&state, &op, "ops.billing.margins", month).await?;
    Ok(Json(serde_json::to_value(report).map_err(ApiError::internal)?))
}

/// List the tenants whose month cannot be invoiced
///
/// Operators: the invoice computations of `period` (default: the last complete month) that
/// failed, by tenant slug; audited (`ops.billing.failures`). Answers `{"period": "YYYY-MM",
/// "failures": [{tenant_id, tenant_slug, code, message, since}]}`.
#[utoipa::path(
    get,
    path = "/ops/billing/failures",
    tag = "billing",
    params(PeriodQuery),
    responses(
        (status = 200, description = "The month's invoicing failures", body = serde_json::Value),
        (status = 400, description = "`invalid_query` (an unknown or repeated parameter), `invalid_period` (not `YYYY-MM` with a year from 2000 to 2999)", body = crate::openapi::ErrorBody),
    )
)]
async fn ops_failures(
    State(state): State<AppState>,
    op: OperatorAuth,
    q: Result<Query<PeriodQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let month = month_of(q)?;
    let rows: Vec<(uuid::Uuid, String, String, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT f.tenant_id, t.slug, f.code, f.message, f.created_at
         FROM invoice_failures f JOIN tenants t ON t.id = f.tenant_id WHERE f.period = $1 ORDER BY t.slug",
    )
    .bind(month.first_day())
    .fetch_all(state.control.pool())
    .await?;
    let failures: Vec<Value> = rows
        .into_iter()
        .map(|(tenant_id, slug, code, message, at)| {
            json!({"tenant_id": tenant_id, "tenant_slug": slug, "code": code, "message": message, "since": at})
        })
        .collect();
    audit_read(&state, &op, "ops.billing.failures", month).await?;
    Ok(Json(json!({ "period": month, "failures": failures })))
}
