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
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use docket_platform::billing::pdf::{self, Customer, Seller};
use docket_platform::billing::{BillingError, Month, invoice, margins, run};
use docket_platform::ids::InvoiceId;
use serde::Deserialize;
use serde_json::{Value, json};

/// `/v1/invoices…`, `/ops/invoices`, `/ops/billing/runs`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/invoices", get(list))
        .route("/v1/invoices/{id}", get(one))
        .route("/ops/invoices", get(ops_list))
        .route("/ops/billing/runs", get(ops_runs))
        .route("/ops/billing/margins", get(ops_margins))
        .route("/ops/billing/failures", get(ops_failures))
}

fn billing_error(e: BillingError) -> ApiError {
    ApiError::internal(e)
}

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

/// `{id}` or `{id}.pdf`.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodQuery {
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
