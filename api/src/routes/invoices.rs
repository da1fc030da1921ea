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
use docket_platform::billing::invoice::{Invoice, PeriodInvoice};
use docket_platform::billing::margins::MarginReport;
use docket_platform::billing::pdf::{self, Customer, Seller};
use docket_platform::billing::run::RunRecord;
use docket_platform::billing::{BillingError, Month, invoice, margins, run};
use docket_platform::ids::InvoiceId;
use serde::{Deserialize, Serialize};
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

/// The tenant's invoices.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct InvoiceList {
    /// Every invoice, newest period first.
    invoices: Vec<Invoice>,
}

/// One invoice.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct InvoiceView {
    /// The invoice, with its lines.
    invoice: Invoice,
}

/// A month's invoices across tenants.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PeriodInvoices {
    /// The month.
    period: Month,
    /// Its invoices, by number.
    invoices: Vec<PeriodInvoice>,
}

/// The recent billing runs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BillingRuns {
    /// The latest runs, newest first.
    runs: Vec<RunRecord>,
}

/// A month's invoicing failures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct InvoiceFailures {
    /// The month.
    period: Month,
    /// One per tenant whose month cannot be invoiced, by tenant slug.
    failures: Vec<InvoiceFailure>,
}

/// A tenant whose month cannot be invoiced.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct InvoiceFailure {
    /// The tenant.
    tenant_id: uuid::Uuid,
    /// Its slug.
    tenant_slug: String,
    /// Why, as a stable code.
    code: String,
    /// Why, in a sentence.
    message: String,
    /// Since when the computation fails.
    since: chrono::DateTime<chrono::Utc>,
}

fn billing_error(e: BillingError) -> ApiError {
    ApiError::internal(e)
}

/// List the tenant's invoices
///
/// Every invoice of the tenant, newest period first (capability `billing.read`); audited
/// (`billing.invoices.list`). Amounts are in the currency's minor units.
#[utoipa::path(
    get,
    path = "/v1/invoices",
    tag = "billing",
    responses(
        (status = 200, description = "The tenant's invoices, newest period first", body = InvoiceList),
        (status = 403, description = "`forbidden`: the role or key lacks `billing.read`", body = crate::openapi::ErrorBody),
    )
)]
async fn list(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<InvoiceList>, ApiError> {
    auth.require(&state, Capability::BillingRead).await?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let invoices = invoice::list(&mut tx).await.map_err(billing_error)?;
    state
        .auditor
        .tenant(&mut tx, auth.event("billing.invoices.list", Outcome::Allowed))
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(InvoiceList { invoices }))
}

/// Read an invoice, or download it as a PDF
///
/// `/v1/invoices/{id}` answers the invoice as in the list; audited (`billing.invoice.read`).
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
            (InvoiceView = "application/json"),
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
        return Ok(Json(InvoiceView { invoice: inv }).into_response());
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
    #[param(pattern = r"^2[0-9]{3}-(0[1-9]|1[0-2])$")]
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
/// audited (`ops.invoices.list`).
#[utoipa::path(
    get,
    path = "/ops/invoices",
    tag = "billing",
    params(PeriodQuery),
    responses(
        (status = 200, description = "The month's invoices", body = PeriodInvoices),
        (status = 400, description = "`invalid_query` (an unknown or repeated parameter), `invalid_period` (not `YYYY-MM` with a year from 2000 to 2999)", body = crate::openapi::ErrorBody),
    )
)]
async fn ops_list(
    State(state): State<AppState>,
    op: OperatorAuth,
    q: Result<Query<PeriodQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PeriodInvoices>, ApiError> {
    let month = month_of(q)?;
    let invoices = invoice::for_period(&state.control, month)
        .await
        .map_err(billing_error)?;
    audit_read(&state, &op, "ops.invoices.list", month).await?;
    Ok(Json(PeriodInvoices {
        period: month,
        invoices,
    }))
}

/// List the recent billing runs
///
/// Operators: the latest 100 billing runs, newest first; audited (`ops.billing.runs`).
#[utoipa::path(
    get,
    path = "/ops/billing/runs",
    tag = "billing",
    responses((status = 200, description = "The recent billing runs", body = BillingRuns))
)]
async fn ops_runs(State(state): State<AppState>, op: OperatorAuth) -> Result<Json<BillingRuns>, ApiError> {
    let runs = run::recent(&state.control, 100).await.map_err(billing_error)?;
    state
        .auditor
        .platform(
            state.control.pool(),
            op.event("ops.billing.runs", Outcome::Allowed),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(BillingRuns { runs }))
}

/// Report a month's revenue, cost and margin
///
/// Operators: per tenant and per plan, for `period` (default: the last complete month);
/// audited (`ops.billing.margins`).
#[utoipa::path(
    get,
    path = "/ops/billing/margins",
    tag = "billing",
    params(PeriodQuery),
    responses(
        (status = 200, description = "The month's margin report", body = MarginReport),
        (status = 400, description = "`invalid_query` (an unknown or repeated parameter), `invalid_period` (not `YYYY-MM` with a year from 2000 to 2999)", body = crate::openapi::ErrorBody),
    )
)]
async fn ops_margins(
    State(state): State<AppState>,
    op: OperatorAuth,
    q: Result<Query<PeriodQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<MarginReport>, ApiError> {
    let month = month_of(q)?;
    let report = margins::report(&state.control, &state.config.billing.cost_model, month)
        .await
        .map_err(billing_error)?;
    audit_read(&state, &op, "ops.billing.margins", month).await?;
    Ok(Json(report))
}

/// List the tenants whose month cannot be invoiced
///
/// Operators: the invoice computations of `period` (default: the last complete month) that
/// failed, by tenant slug; audited (`ops.billing.failures`).
#[utoipa::path(
    get,
    path = "/ops/billing/failures",
    tag = "billing",
    params(PeriodQuery),
    responses(
        (status = 200, description = "The month's invoicing failures", body = InvoiceFailures),
        (status = 400, description = "`invalid_query` (an unknown or repeated parameter), `invalid_period` (not `YYYY-MM` with a year from 2000 to 2999)", body = crate::openapi::ErrorBody),
    )
)]
async fn ops_failures(
    State(state): State<AppState>,
    op: OperatorAuth,
    q: Result<Query<PeriodQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<InvoiceFailures>, ApiError> {
    let month = month_of(q)?;
    let rows: Vec<(uuid::Uuid, String, String, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT f.tenant_id, t.slug, f.code, f.message, f.created_at
         FROM invoice_failures f JOIN tenants t ON t.id = f.tenant_id WHERE f.period = $1 ORDER BY t.slug",
    )
    .bind(month.first_day())
    .fetch_all(state.control.pool())
    .await?;
    let failures = rows
        .into_iter()
        .map(|(tenant_id, tenant_slug, code, message, since)| InvoiceFailure {
            tenant_id,
            tenant_slug,
            code,
            message,
            since,
        })
        .collect();
    audit_read(&state, &op, "ops.billing.failures", month).await?;
    Ok(Json(InvoiceFailures {
        period: month,
        failures,
    }))
}
