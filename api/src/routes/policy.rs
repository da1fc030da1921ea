//! The tenant's own input-safety policy: `GET/PUT /v1/tenant/policy` (owners change it).

use crate::auth::TenantAuth;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use serde::Deserialize;
use serde_json::{Value, json};

/// `/v1/tenant/policy`.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/tenant/policy", get(show).put(update))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Policy {
    refuse_flagged_input: bool,
}

async fn show(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<Value>, ApiError> {
    auth.require(&state, Capability::QueriesRead).await?;
    Ok(Json(
        json!({"refuse_flagged_input": auth.entitlements.refuse_flagged_input}),
    ))
}

async fn update(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(p): ApiJson<Policy>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&state, Capability::TenantManage).await?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    sqlx::query("UPDATE tenants SET refuse_flagged_input = $2, updated_at = now() WHERE id = $1")
        .bind(auth.tenant_id())
        .bind(p.refuse_flagged_input)
        .execute(tx.conn())
        .await?;
    let ev = auth
        .event("tenant.policy", Outcome::Allowed)
        .detail("refuse_flagged_input", p.refuse_flagged_input);
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(json!({"refuse_flagged_input": p.refuse_flagged_input})))
}
