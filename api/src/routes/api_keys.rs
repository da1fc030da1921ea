//! API keys of the caller's tenant (`keys.manage`).

use crate::auth::{Gate, TenantAuth};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::routes::parse_id;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use docket_platform::audit::Outcome;
use docket_platform::authz::{Capability, Role};
use docket_platform::identity::api_keys::{self, ApiKey};
use docket_platform::ids::ApiKeyId;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

/// `/v1/api-keys`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// The tenant's API keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ApiKeyList {
    /// Every key, revoked and expired ones included, newest first (never the secrets).
    api_keys: Vec<ApiKey>,
}

/// A new API key and, this once, its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedApiKey {
    /// The key.
    api_key: ApiKey,
    /// The secret (`dk_…`, sent as a bearer token): shown only this once.
    key: String,
    /// A reminder that the secret is shown only once.
    note: String,
}

/// List the tenant's API keys
///
/// Every API key of the caller's tenant, revoked and expired ones included (`keys.manage`).
/// The secrets are never shown again.
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "auth",
    responses((status = 200, description = "The keys", body = ApiKeyList))
)]
async fn list(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<ApiKeyList>, ApiError> {
    auth.require(&state, Capability::KeysManage).await?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let api_keys = api_keys::list(&mut tx).await?;
    Ok(Json(ApiKeyList { api_keys }))
}

/// An API key to create.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewKey {
    /// A label: 1 to 100 printable characters.
    #[schema(
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    name: String,
    /// The role the key acts with: `owner`, `admin`, `member` or `viewer`; never above the
    /// caller's own.
    #[schema(value_type = Role)]
    role: String,
    /// When the key stops working (RFC 3339, in the future); none: it never expires.
    expires_at: Option<DateTime<Utc>>,
}

/// Create an API key
///
/// Creates a key acting with a role no higher than the caller's (`keys.manage`, plan
/// feature `api_keys`); audited (`api_keys.create`). Answers the key and `key`, the secret
/// (`dk_…`, sent as a bearer token), shown only this once.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "auth",
    request_body = NewKey,
    responses(
        (status = 201, description = "The key and, once only, its secret", body = CreatedApiKey),
        (status = 400, description = "`invalid_name` (not 1-100 printable characters), `invalid_role`, `invalid_expiry` (not in the future)", body = crate::openapi::ErrorBody),
        (status = 403, description = "`feature_not_in_plan` (the plan has no API keys), `role_not_grantable` (the role is above the caller's own; audited)", body = crate::openapi::ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    auth.govern(&state, Gate::new(Capability::KeysManage).feature("api_keys"))
        .await?;
    let name = body.name.trim();
    if !docket_platform::safety::is_printable_line(name, 100) {
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
        Json(CreatedApiKey {
            api_key: key,
            key: secret,
            note: "store this key now: it is shown only once".into(),
        }),
    ))
}

/// Revoke an API key
///
/// Revokes a key at once (`keys.manage`; revoking a revoked key again also answers 204);
/// nobody revokes a key whose role, or whose creator's role, is above their own. Audited
/// (`api_keys.revoke`).
#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    tag = "auth",
    params(("id" = String, Path, description = "The API key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "`role_not_grantable`: the key's role or its creator's is above the caller's own (audited)", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: no such API key in this tenant", body = crate::openapi::ErrorBody),
    )
)]
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
