//! `/ops/switches`: operators turn an endpoint class off globally or for one tenant, with a
//! reason and an optional expiry, and lift it again. Every change is audited.

use crate::auth::OperatorAuth;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::routes::parse_id;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use docket_platform::audit::Outcome;
use docket_platform::ids::TenantId;
use docket_platform::ratelimit::EndpointClass;
use docket_platform::switches::Switch;
use docket_platform::{switches, tenants};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Longest expiry accepted (larger values would overflow the database's interval).
const MAX_EXPIRY_SECS: u64 = 365 * 24 * 3600;

/// `/ops/switches`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, set))
        .routes(routes!(lift))
}

/// The switches in force.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SwitchList {
    /// Every switch in force, oldest first.
    switches: Vec<Switch>,
}

/// A switch to set: `/ops/switches` takes it as JSON, the panel as a form.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchRequest {
    /// Endpoint class: `query`, `upload`, `read` or `admin`.
    #[schema(value_type = docket_platform::ratelimit::EndpointClass)]
    pub class: String,
    /// One tenant, or every tenant when absent.
    pub tenant_id: Option<uuid::Uuid>,
    /// Shown to refused callers (1–500 printable characters).
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub reason: String,
    /// Lifts itself after this long (1 s to a year); stays until lifted when absent.
    #[schema(minimum = 1, maximum = 31536000)]
    pub expires_in_secs: Option<u64>,
}

/// Set an incident switch
///
/// Turns an endpoint class off for every tenant or for one, with a reason callers see and an
/// optional expiry. Applies on every API process within a second; audited
/// (`ops.switches.set`). Answers the switch.
#[utoipa::path(
    post,
    path = "/ops/switches",
    tag = "ops",
    request_body = SwitchRequest,
    responses(
        (status = 201, description = "The switch now in force", body = Switch),
        (status = 400, description = "`invalid_class`, `invalid_reason`, `invalid_expiry`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: `tenant_id` names no tenant", body = crate::openapi::ErrorBody),
    )
)]
async fn set(
    State(state): State<AppState>,
    op: OperatorAuth,
    ApiJson(body): ApiJson<SwitchRequest>,
) -> Result<(StatusCode, Json<Switch>), ApiError> {
    let sw = set_switch(&state, &op, body).await?;
    Ok((StatusCode::CREATED, Json(sw)))
}

/// Validates and sets a switch, audited (`ops.switches.set`). `/ops` and the panel call this.
pub async fn set_switch(
    state: &AppState,
    op: &OperatorAuth,
    body: SwitchRequest,
) -> Result<switches::Switch, ApiError> {
    let class = EndpointClass::parse(&body.class).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_class",
            format!(
                "unknown endpoint class {:?}: expected query, upload, read or admin",
                body.class
            ),
        )
    })?;
    let reason = body.reason.trim();
    if !docket_platform::safety::is_printable_line(reason, 500) {
        return Err(ApiError::bad_request(
            "invalid_reason",
            "a reason of 1 to 500 printable characters is required: callers see it",
        ));
    }
    if body
        .expires_in_secs
        .is_some_and(|s| !(1..=MAX_EXPIRY_SECS).contains(&s))
    {
        return Err(ApiError::bad_request(
            "invalid_expiry",
            "expires_in_secs must be from 1 to 31536000 (one year)",
        ));
    }
    let tenant = match body.tenant_id {
        Some(id) => {
            let t = tenants::get(&state.db, TenantId(id))
                .await
                .map_err(ApiError::internal)?
                .ok_or_else(|| ApiError::not_found("tenant"))?;
            Some(t.id)
        }
        None => None,
    };
    let by = format!("operator:{}", op.operator);
    let expires = body.expires_in_secs.map(Duration::from_secs);
    let record = |sw: &switches::Switch| {
        op.event("ops.switches.set", Outcome::Allowed)
            .target(format!("switch:{}", sw.id))
            .reason(reason.to_owned())
            .detail("class", class.as_str())
            .detail("tenant", tenant.map(|t| t.to_string()))
    };
    switches::set(
        &state.control,
        &state.auditor,
        class,
        tenant,
        reason,
        &by,
        expires,
        record,
    )
    .await
    .map_err(ApiError::internal)
}

/// List the switches in force
///
/// Every switch in force; audited (`ops.switches.list`).
#[utoipa::path(
    get,
    path = "/ops/switches",
    tag = "ops",
    responses((status = 200, description = "The switches in force", body = SwitchList))
)]
async fn list(State(state): State<AppState>, op: OperatorAuth) -> Result<Json<SwitchList>, ApiError> {
    let list = switches::active(&state.db).await?;
    state
        .auditor
        .platform(
            state.control.pool(),
            op.event("ops.switches.list", Outcome::Allowed),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(SwitchList { switches: list }))
}

/// Lift a switch
///
/// Ends a switch in force; audited (`ops.switches.lift`).
#[utoipa::path(
    delete,
    path = "/ops/switches/{id}",
    tag = "ops",
    params(("id" = String, Path, description = "The switch's id")),
    responses((status = 204, description = "Lifted"))
)]
async fn lift(
    State(state): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    lift_switch(&state, &op, parse_id(&id, "switch")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lifts a switch in force (404 otherwise), audited (`ops.switches.lift`).
pub async fn lift_switch(state: &AppState, op: &OperatorAuth, id: uuid::Uuid) -> Result<(), ApiError> {
    let ev = op
        .event("ops.switches.lift", Outcome::Allowed)
        .target(format!("switch:{id}"));
    if !switches::lift(&state.control, &state.auditor, id, ev)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::not_found("switch"));
    }
    Ok(())
}
