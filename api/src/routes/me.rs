//! The caller's own identity and permissions.

use crate::auth::{Principal, TenantAuth};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use docket_platform::authz::{self, Capability, Role};
use docket_platform::identity::users::{self, User};
use docket_platform::ids::{ApiKeyId, TenantId};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

/// `/v1/me`, `/v1/authz/{capability}`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me)).routes(routes!(check))
}

/// The caller: its tenant, who it is, its role and what the role allows.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Caller {
    /// The caller's tenant.
    tenant: CallerTenant,
    /// Who is calling: a user (with a user's token) or an API key.
    principal: CallerPrincipal,
    /// The caller's current role.
    role: Role,
    /// What the role allows (e.g. `documents.read`, `users.manage`).
    capabilities: Vec<String>,
}

/// The caller's tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CallerTenant {
    /// The tenant's id.
    id: TenantId,
    /// Its URL-safe handle, used at sign-in.
    slug: String,
    /// Its display name.
    name: String,
    /// Its plan's id.
    plan: String,
}

/// Who is calling.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum CallerPrincipal {
    /// A signed-in user.
    User {
        /// The user (null if it vanished meanwhile).
        user: Option<User>,
    },
    /// An API key.
    ApiKey {
        /// The key's id.
        api_key_id: ApiKeyId,
    },
}

/// The caller holds the capability.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CapabilityCheck {
    /// The capability checked.
    capability: String,
    /// Always `true` (a capability not held answers 403).
    allowed: bool,
    /// The caller's current role.
    role: Role,
}

/// Who the caller is
///
/// The caller's tenant, principal, role and capabilities. `principal` is `{kind: "user",
/// user}` for a user's token or `{kind: "api_key", api_key_id}` for an API key; `role` is
/// `owner`, `admin`, `member` or `viewer`; `capabilities` lists what the role allows (e.g.
/// `documents.read`, `users.manage`).
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "tenant",
    responses((status = 200, description = "The caller", body = Caller))
)]
async fn me(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<Caller>, ApiError> {
    let principal = match auth.principal {
        Principal::User(id) => {
            let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
            let user = users::get(&mut tx, id).await.map_err(ApiError::internal)?;
            CallerPrincipal::User { user }
        }
        Principal::ApiKey(id) => CallerPrincipal::ApiKey { api_key_id: id },
    };
    let capabilities = authz::capabilities(auth.role)
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    Ok(Json(Caller {
        tenant: CallerTenant {
            id: auth.tenant.id,
            slug: auth.tenant.slug.clone(),
            name: auth.tenant.name.clone(),
            plan: auth.tenant.plan_id.clone(),
        },
        principal,
        role: auth.role,
        capabilities,
    }))
}

/// Check whether the caller holds a capability
///
/// Whether the caller holds a capability: 200 if so, 403 (audited) if not. Clients use it
/// to show or hide actions; it runs the same check every handler runs.
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
        (status = 200, description = "Allowed", body = CapabilityCheck),
        (status = 403, description = "`forbidden`: the caller's role does not hold the capability (audited)", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: no such capability", body = crate::openapi::ErrorBody),
    )
)]
async fn check(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(cap): Path<String>,
) -> Result<Json<CapabilityCheck>, ApiError> {
    let cap: Capability = cap.parse().map_err(|e: String| ApiError::not_found(&e))?;
    auth.require(&state, cap).await?;
    Ok(Json(CapabilityCheck {
        capability: cap.as_str().to_owned(),
        allowed: true,
        role: auth.role,
    }))
}
