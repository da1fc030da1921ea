//! Operator changes to a tenant's limits (`/ops/tenants/{id}/plan`, `…/rate-overrides/{class}`):
//! the same validation and audit as `docketctl tenant plan|rate-override`.

use crate::auth::OperatorAuth;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::routes::parse_id;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::put;
use axum::{Json, Router};
use docket_platform::audit::Actor;
use docket_platform::ids::TenantId;
use docket_platform::plans::{self, PlanAdminError, RateOverride};
use docket_platform::ratelimit::EndpointClass;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// `/ops/tenants/{id}/plan`, `/ops/tenants/{id}/rate-overrides/{class}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ops/tenants/{id}/plan", put(change_plan))
        .route(
            "/ops/tenants/{id}/rate-overrides/{class}",
            put(set_override).delete(clear_override),
        )
}

fn to_api(e: PlanAdminError) -> ApiError {
    match e {
        PlanAdminError::Invalid(m) => ApiError::bad_request("invalid_limit", m),
        PlanAdminError::NoTenant => ApiError::not_found("tenant"),
        other => ApiError::internal(other),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanChange {
    plan: String,
}

async fn change_plan(
    State(state): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PlanChange>,
) -> Result<Json<Value>, ApiError> {
    let id = TenantId(parse_id(&id, "tenant")?);
    let actor = Actor::Operator(op.operator);
    let from = plans::change_plan(&state.control, &state.auditor, actor, id, &body.plan)
        .await
        .map_err(to_api)?;
    Ok(Json(json!({"tenant_id": id, "from": from, "to": body.plan})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideBody {
    per_minute: u32,
    burst: u32,
    expires_in_secs: u64,
    reason: String,
}

async fn set_override(
    State(state): State<AppState>,
    op: OperatorAuth,
    Path((id, class)): Path<(String, String)>,
    ApiJson(body): ApiJson<OverrideBody>,
) -> Result<Json<Value>, ApiError> {
    let id = TenantId(parse_id(&id, "tenant")?);
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
    Ok(Json(json!({
        "tenant_id": id, "class": o.class, "per_minute": o.per_minute, "burst": o.burst,
        "expires_at": expires_at,
    })))
}

async fn clear_override(
    State(state): State<AppState>,
    op: OperatorAuth,
    Path((id, class)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let id = TenantId(parse_id(&id, "tenant")?);
    let class = EndpointClass::parse(&class).ok_or_else(|| ApiError::not_found("rate override"))?;
    let actor = Actor::Operator(op.operator);
    match plans::clear_rate_override(&state.control, &state.auditor, actor, id, class).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::not_found("rate override")),
        Err(e) => Err(to_api(e)),
    }
}
