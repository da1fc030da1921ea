//! `GET /v1/usage` (the tenant's own, capability `usage.read`, with an upgrade hint when
//! this month's overage already costs more than the next plan up) and
//! `GET /ops/tenants/{id}/usage` (operators): the usage ledger by period and kind.

use crate::auth::{OperatorAuth, TenantAuth};
use crate::error::ApiError;
use crate::routes::parse_id;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use docket_platform::billing::upgrade::{self, UpgradeHint};
use docket_platform::db::{ControlDb, TenantTx};
use docket_platform::ids::TenantId;
use docket_platform::usage::{self, Granularity, Period, UsageRow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa_axum::{router::OpenApiRouter, routes};

/// `/v1/usage`, `/ops/tenants/{id}/usage`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(mine))
        .routes(routes!(of_tenant))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    /// Start, inclusive: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time; default: the start
    /// of the current month.
    from: Option<String>,
    /// End, exclusive: `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time; default: now. At
    /// most 366 days after `from`.
    to: Option<String>,
    /// Bucket size: `day` (default) or `month`.
    #[param(value_type = Option<Granularity>, inline)]
    granularity: Option<String>,
}

type QueryResult = Result<Query<UsageQuery>, axum::extract::rejection::QueryRejection>;

fn validate(query: QueryResult) -> Result<(Period, Granularity), ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let g = match q.granularity.as_deref() {
        None => Granularity::Day,
        Some(s) => Granularity::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_granularity",
                format!("granularity {s:?} must be day or month"),
            )
        })?,
    };
    let period = Period::parse(q.from.as_deref(), q.to.as_deref(), chrono::Utc::now())
        .map_err(|m| ApiError::bad_request("invalid_period", m))?;
    Ok((period, g))
}

/// A tenant's usage ledger in a period, by bucket and kind.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UsageSummary {
    /// Start of the period (inclusive).
    from: DateTime<Utc>,
    /// End of the period (exclusive).
    to: DateTime<Utc>,
    /// Bucket size: `day` or `month`.
    granularity: String,
    /// Usage per bucket and kind, in bucket then kind order.
    usage: Vec<UsageRow>,
    /// The period's total per kind.
    totals: BTreeMap<String, i64>,
}

/// The tenant's own usage, with a hint to move up a plan when that would cost less.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TenantUsageSummary {
    /// The usage.
    #[serde(flatten)]
    summary: UsageSummary,
    /// Null, unless this month's overage already costs more than the next plan up.
    upgrade_hint: Option<UpgradeHint>,
}

async fn report(tx: &mut TenantTx, period: Period, g: Granularity) -> Result<UsageSummary, ApiError> {
    let rows = usage::summary(tx, period, g).await?;
    let mut totals = BTreeMap::new();
    for r in &rows {
        *totals.entry(r.kind.clone()).or_insert(0) += r.quantity;
    }
    Ok(UsageSummary {
        from: period.from,
        to: period.to,
        granularity: g.as_str().to_owned(),
        usage: rows,
        totals,
    })
}

/// Show the tenant's usage
///
/// The tenant's usage ledger in a period (`usage.read`), by bucket and kind, with its
/// totals. `upgrade_hint` is null unless this month's overage already costs more than the
/// next plan up. Audited (`usage.read`).
#[utoipa::path(
    get,
    path = "/v1/usage",
    tag = "tenant",
    params(UsageQuery),
    responses(
        (status = 200, description = "The usage", body = TenantUsageSummary),
        (status = 400, description = "`invalid_query` (an unknown or malformed parameter), `invalid_granularity` (not `day` or `month`), `invalid_period` (a bound is not a date or time, `from` is not before `to`, or the period spans more than 366 days)", body = crate::openapi::ErrorBody),
    )
)]
async fn mine(
    State(state): State<AppState>,
    auth: TenantAuth,
    query: QueryResult,
) -> Result<Json<TenantUsageSummary>, ApiError> {
    auth.require(&state, Capability::UsageRead).await?;
    let (period, g) = validate(query)?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let summary = report(&mut tx, period, g).await?;
    // Only the tenant's own view carries the hint (operators have the margin report).
    let upgrade_hint = upgrade::hint(&mut tx, Utc::now())
        .await
        .map_err(ApiError::internal)?;
    state
        .auditor
        .tenant(&mut tx, auth.event("usage.read", Outcome::Allowed))
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(TenantUsageSummary {
        summary,
        upgrade_hint,
    }))
}

/// Show a tenant's usage
///
/// A tenant's usage ledger in a period, by bucket and kind, with its totals (operators).
/// Audited (`ops.usage.read`).
#[utoipa::path(
    get,
    path = "/ops/tenants/{id}/usage",
    tag = "ops",
    params(("id" = String, Path, description = "The tenant's id"), UsageQuery),
    responses(
        (status = 200, description = "The usage", body = UsageSummary),
        (status = 400, description = "`invalid_query` (an unknown or malformed parameter), `invalid_granularity` (not `day` or `month`), `invalid_period` (a bound is not a date or time, `from` is not before `to`, or the period spans more than 366 days)", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: no such tenant", body = crate::openapi::ErrorBody),
    )
)]
async fn of_tenant(
    State(state): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
    query: QueryResult,
) -> Result<Json<UsageSummary>, ApiError> {
    let t = TenantId(parse_id(&id, "tenant")?);
    let (period, g) = validate(query)?;
    if docket_platform::tenants::get(&state.db, t)
        .await
        .map_err(ApiError::internal)?
        .is_none()
    {
        return Err(ApiError::not_found("tenant"));
    }
    let tx = state.control.pool().begin().await?;
    let mut tx = ControlDb::scope_to_tenant(tx, t).await?;
    let body = report(&mut tx, period, g).await?;
    let ev = op
        .event("ops.usage.read", Outcome::Allowed)
        .target(format!("tenant:{t}"));
    state
        .auditor
        .operator_change(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(body))
}
