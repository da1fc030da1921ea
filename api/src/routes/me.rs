//! The caller's own identity and permissions.

use crate::auth::{Principal, TenantAuth};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use docket_platform::authz::{self, Capability};
use docket_platform::identity::users;
use serde_json::{Value, json};

/// `/v1/me`, `/v1/authz/{capability}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(me))
        .route("/v1/authz/{capability}", get(check))
}

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

/// Whether the caller holds a capability: 200 if so, 403 (audited) if not. Clients use it
/// to show or hide actions; it runs the same check every handler runs.
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
