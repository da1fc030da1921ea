//! The caller's own identity and permissions.

use crate::auth::{Principal, TenantAuth};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use docket_platform::authz::{self, Capability};
use docket_platform::identity::users;
use serde_json::{Value, json};
use utoipa_axum::{router::OpenApiRouter, routes};

/// `/v1/me`, `/v1/authz/{capability}`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me)).routes(routes!(check))
}

/// Who the caller is
///
/// The caller's tenant, principal, role and capabilities:
/// `{tenant: {id, slug, name, plan}, principal, role, capabilities}`. `principal` is
/// `{kind: "user", user: {id, email, role, status, created_at, updated_at}}` for a user's
/// token or `{kind: "api_key", api_key_id}` for an API key; `role` is `owner`, `admin`,
/// `member` or `viewer`; `capabilities` lists what the role allows (e.g.
/// `documents.read`, `users.manage`).
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "tenant",
    responses((status = 200, description = "The caller: `{tenant, principal, role, capabilities}`", body = serde_json::Value))
)]
async fn me(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<Value>, ApiError> {
    let principal = match auth.principal {
        Principal::User(id) => {
            let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
            let u = users::get(&mut tx, id).await.map_err(ApiError::internal)?;
            json!({"kind": "user", "user": u})
        }
        Principal::ApiKey(id) => json!({"kind": "api_key", "api_key_id": id}),
    };
    let caps: Vec<&str> = authz::capabilities(auth.role)
        .iter()
        .map(|c| c.as_str())
        .collect();
    Ok(Json(json!({
        "tenant": {"id": auth.tenant.id, "slug": auth.tenant.slug, "name": auth.tenant.name, "plan": auth.tenant.plan_id},
        "principal": principal,
        "role": auth.role,
        "capabilities": caps,
    })))
}

/// Check whether the caller holds a capability
///
/// Whether the caller holds a capability: 200 if so, 403 (audited) if not. Clients use it
/// to show or hide actions; it runs the same check every handler runs. Answers
/// `{capability, allowed: true, role}`.
#[utoipa::path(
    get,
    path = "/v1/authz/{capability}",
    tag = "tenant",
    params((
        "capability" = String,
        Path,
        description = "A capability: `documents.read`, `documents.write`, `queries.ask`, `queries.read`, `users.manage`, `keys.manage`, `usage.read`, `billing.read`, `audit.read`, `exports.request`, `deletions.request` or `tenant.manage`"
    )),
    responses(
        (status = 200, description = "Allowed: `{capability, allowed: true, role}`", body = serde_json::Value),
        (status = 403, description = "`forbidden`: the caller's role does not hold the capability (audited)", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: no such capability", body = crate::openapi::ErrorBody),
    )
)]
async fn check(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(cap): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let cap: Capability = cap.parse().map_err(|e: String| ApiError::not_found(&e))?;
    auth.require(&state, cap).await?;
    Ok(Json(
        json!({"capability": cap.as_str(), "allowed": true, "role": auth.role}),
    ))
}
