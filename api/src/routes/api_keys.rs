//! API keys of the caller's tenant (`keys.manage`).

use crate::auth::{Gate, TenantAuth};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::routes::parse_id;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use docket_platform::audit::Outcome;
use docket_platform::authz::{Capability, Role};
use docket_platform::identity::api_keys;
use docket_platform::ids::ApiKeyId;
use serde::Deserialize;
use serde_json::{Value, json};

/// `/v1/api-keys`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/api-keys", get(list).post(create))
        .route("/v1/api-keys/{id}", delete(revoke))
}

async fn list(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<Value>, ApiError> {
    auth.require(&state, Capability::KeysManage).await?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    Ok(Json(json!({"api_keys": api_keys::list(&mut tx).await?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    role: String,
    expires_at: Option<DateTime<Utc>>,
}

async fn create(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.govern(&state, Gate::new(Capability::KeysManage).feature("api_keys"))
        .await?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name must be 1-100 printable characters",
        ));
    }
    let role: Role = body
        .role
        .parse()
        .map_err(|e: String| ApiError::bad_request("invalid_role", e))?;
    if !auth.role.may_grant(role) {
        let msg = format!("an {} cannot create a key with the {role} role", auth.role);
        return Err(auth
            .refuse(
                &state,
                "api_keys.create",
                StatusCode::FORBIDDEN,
                "role_not_grantable",
                msg,
            )
            .await);
    }
    if body.expires_at.is_some_and(|e| e <= Utc::now()) {
        return Err(ApiError::bad_request(
            "invalid_expiry",
            "expires_at must be in the future",
        ));
    }
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let (key, secret) = api_keys::create(&mut tx, name, role, auth.user_id(), body.expires_at).await?;
    let ev = auth
        .event("api_keys.create", Outcome::Allowed)
        .target(format!("api_key:{}", key.id))
        .detail("role", role.as_str());
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"api_key": key, "key": secret, "note": "store this key now: it is shown only once"})),
    ))
}

async fn revoke(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require(&state, Capability::KeysManage).await?;
    let id = ApiKeyId(parse_id(&id, "API key")?);
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let key = api_keys::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    // The rule for users holds for their keys: nobody manages what is above their own role
    // (an admin cannot cut an owner's automation off).
    let above = api_keys::creator_role(&mut tx, &key)
        .await?
        .into_iter()
        .chain(key.role.parse::<Role>().ok())
        .find(|r| !auth.role.may_grant(*r));
    if let Some(r) = above {
        drop(tx);
        let msg = format!("an {} cannot revoke a key of an {r}", auth.role);
        return Err(auth
            .refuse(
                &state,
                "api_keys.revoke",
                StatusCode::FORBIDDEN,
                "role_not_grantable",
                msg,
            )
            .await);
    }
    api_keys::revoke(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    let ev = auth
        .event("api_keys.revoke", Outcome::Allowed)
        .target(format!("api_key:{id}"));
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
