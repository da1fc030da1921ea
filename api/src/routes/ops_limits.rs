//! Operator changes to a tenant's limits (`/ops/tenants/{id}/plan`, `…/rate-overrides/{class}`):
//! the same validation and audit as `docketctl tenant plan|rate-override`.

use crate::auth::OperatorAuth;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::routes::parse_id;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use docket_platform::audit::Actor;
use docket_platform::ids::TenantId;
use docket_platform::plans::{self, PlanAdminError, RateOverride};
use docket_platform::ratelimit::EndpointClass;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa_axum::{router::OpenApiRouter, routes};

/// `/ops/tenants/{id}/plan`, `/ops/tenants/{id}/rate-overrides/{class}`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(change_plan))
        .routes(routes!(set_override, clear_override))
}

fn to_api(e: PlanAdminError) -> ApiError {
    match e {
        PlanAdminError::Invalid(m) => ApiError::bad_request("invalid_limit", m),
        PlanAdminError::NoTenant => ApiError::not_found("tenant"),
        other => ApiError::internal(other),
    }
}

/// A tenant moved to another plan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PlanChanged {
    /// The tenant.
    tenant_id: TenantId,
    /// The plan it was on.
    from: String,
    /// The plan it is on now.
    to: String,
}

/// A tenant's rate-limit override now in force.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RateOverrideSet {
    /// The tenant.
    tenant_id: TenantId,
    /// The endpoint class: `query`, `upload`, `read` or `admin`.
    class: String,
    /// Sustained requests per minute.
    per_minute: u32,
    /// Requests allowed at once.
    burst: u32,
    /// When the override ends.
    expires_at: chrono::DateTime<chrono::Utc>,
}

/// The plan to move a tenant to.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PlanChange {
    /// Plan id: `free`, `team`, `business`, `enterprise`, or an operator's own plan.
    plan: String,
}

/// Move a tenant to another plan
///
/// Operators: the tenant's limits and features follow the new plan from the next request.
/// Audited (`tenant.plan_change`) on the tenant's and the platform's chains. Answers the
/// previous and the new plan ids.
#[utoipa::path(
    put,
    path = "/ops/tenants/{id}/plan",
    tag = "ops",
    params(("id" = String, Path, description = "The tenant's id")),
    request_body = PlanChange,
    responses(
        (status = 200, description = "Moved", body = PlanChanged),
        (status = 400, description = "`invalid_limit`: no plan has this id", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: the id is not a UUID, or no tenant has it", body = crate::openapi::ErrorBody),
    )
)]
async fn change_plan(
    State(state): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PlanChange>,
) -> Result<Json<PlanChanged>, ApiError> {
    let id = TenantId(parse_id(&id, "tenant")?);
    let from = apply_plan(&state, &op, id, &body.plan).await?;
    Ok(Json(PlanChanged {
        tenant_id: id,
        from,
        to: body.plan,
    }))
}

/// Moves a tenant to another plan, audited; returns the plan it was on. `/ops` and the
/// panel call this.
pub async fn apply_plan(
    state: &AppState,
    op: &OperatorAuth,
    id: TenantId,
    plan: &str,
) -> Result<String, ApiError> {
    let actor = Actor::Operator(op.operator);
    plans::change_plan(&state.control, &state.auditor, actor, id, plan)
        .await
        .map_err(to_api)
}

/// A rate-limit override: `/ops` takes it as JSON, the panel as a form.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    /// Sustained requests per minute (1 to 1000000).
    #[schema(minimum = 1, maximum = 1000000)]
    pub per_minute: u32,
    /// Requests allowed at once (1 to 1000000).
    #[schema(minimum = 1, maximum = 1000000)]
    pub burst: u32,
    /// The override ends after this long, in seconds (1 s to one year).
    #[schema(minimum = 1, maximum = 31536000)]
    pub expires_in_secs: u64,
    /// Why (1–500 printable characters; audited).
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub reason: String,
}

/// Set a tenant's rate-limit override for an endpoint class
///
/// Operators: replaces the plan's rate limit for one endpoint class until the override
/// expires (an existing override of the class is replaced). Audited
/// (`tenant.rate_override`) on the tenant's and the platform's chains.
#[utoipa::path(
    put,
    path = "/ops/tenants/{id}/rate-overrides/{class}",
    tag = "ops",
    params(
        ("id" = String, Path, description = "The tenant's id"),
        ("class" = docket_platform::ratelimit::EndpointClass, Path, description = "Endpoint class: `query`, `upload`, `read` or `admin`"),
    ),
    request_body = OverrideBody,
    responses(
        (status = 200, description = "Set", body = RateOverrideSet),
        (status = 400, description = "`invalid_limit`: an unknown endpoint class, `per_minute` or `burst` outside 1–1000000, an empty or overlong reason, or an expiry outside 1 s to one year", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: the id is not a UUID, or no tenant has it", body = crate::openapi::ErrorBody),
    )
)]
async fn set_override(
    State(state): State<AppState>,
    op: OperatorAuth,
    Path((id, class)): Path<(String, String)>,
    ApiJson(body): ApiJson<OverrideBody>,
) -> Result<Json<RateOverrideSet>, ApiError> {
    let id = TenantId(parse_id(&id, "tenant")?);
    let (o, expires_at) = apply_override(&state, &op, id, class, body).await?;
    Ok(Json(RateOverrideSet {
        tenant_id: id,
        class: o.class,
        per_minute: o.per_minute,
        burst: o.burst,
        expires_at,
    }))
}

/// Validates and sets a tenant's rate-limit override for one endpoint class, audited.
/// `/ops` and the panel call this.
pub async fn apply_override(
    state: &AppState,
    op: &OperatorAuth,
    id: TenantId,
    class: String,
    body: OverrideBody,
) -> Result<(RateOverride, chrono::DateTime<chrono::Utc>), ApiError> {
    let o = RateOverride {
        class,
        per_minute: body.per_minute,
        burst: body.burst,
        expires_in: Duration::from_secs(body.expires_in_secs),
        reason: body.reason,
    };
    let actor = Actor::Operator(op.operator);
    let expires_at = plans::set_rate_override(&state.control, &state.auditor, actor, id, &o)
        .await
        .map_err(to_api)?;
    Ok((o, expires_at))
}

/// Clear a tenant's rate-limit override for an endpoint class
///
/// Operators: the plan's rate limit for the class applies again at once. Audited
/// (`tenant.rate_override_cleared`) on the tenant's and the platform's chains.
#[utoipa::path(
    delete,
    path = "/ops/tenants/{id}/rate-overrides/{class}",
    tag = "ops",
    params(
        ("id" = String, Path, description = "The tenant's id"),
        ("class" = docket_platform::ratelimit::EndpointClass, Path, description = "Endpoint class: `query`, `upload`, `read` or `admin`"),
    ),
    responses(
        (status = 204, description = "Cleared"),
        (status = 404, description = "`not_found`: the id is not a UUID, the class is not an endpoint class, or the tenant has no override for it", body = crate::openapi::ErrorBody),
    )
)]
async fn clear_override(
    State(state): State<AppState>,
    op: OperatorAuth,
    Path((id, class)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = TenantId(parse_id(&id, "tenant")?);
    clear(&state, &op, id, &class).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends a tenant's override for one class (404 when there is none), audited. `/ops` and the
/// panel call this.
pub async fn clear(state: &AppState, op: &OperatorAuth, id: TenantId, class: &str) -> Result<(), ApiError> {
    let class = EndpointClass::parse(class).ok_or_else(|| ApiError::not_found("rate override"))?;
    let actor = Actor::Operator(op.operator);
    match plans::clear_rate_override(&state.control, &state.auditor, actor, id, class).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::not_found("rate override")),
        Err(e) => Err(to_api(e)),
    }
}
