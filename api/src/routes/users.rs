//! Users of the caller's tenant (`users.manage`).

use crate::auth::TenantAuth;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::routes::parse_id;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use docket_platform::audit::Outcome;
use docket_platform::authz::{Capability, Role};
use docket_platform::db::TenantTx;
use docket_platform::identity::users::{self, Email, User, UserError};
use docket_platform::identity::{password, refresh};
use docket_platform::ids::UserId;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::deletions_views::{UserErasure, UserErasurePlan};

/// `/v1/users`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(update, disable))
}

/// The tenant's users.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UserList {
    /// Every user of the tenant.
    users: Vec<User>,
}

/// What `DELETE /v1/users/{id}` answers: the user disabled, the user's personal data erased
/// (`?erase=true`), or what the erasure would remove (`&dry_run=true`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum UserRemoval {
    /// Disabled: the user as it now is.
    Disabled(User),
    /// Erased: the deletion and its certificate.
    Erased(UserErasure),
    /// The dry run of an erasure: what each store would lose.
    DryRun(UserErasurePlan),
}

/// List the tenant's users
///
/// Every user of the caller's tenant (`users.manage`), where `role` is `owner`, `admin`,
/// `member` or `viewer` and `status` is `active` or `disabled`.
#[utoipa::path(
    get,
    path = "/v1/users",
    tag = "tenant",
    responses((status = 200, description = "The users", body = UserList))
)]
async fn list(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<UserList>, ApiError> {
    auth.require(&state, Capability::UsersManage).await?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let users = users::list(&mut tx).await.map_err(ApiError::internal)?;
    Ok(Json(UserList { users }))
}

/// A user to add to the tenant.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUser {
    /// Email address (unique within the tenant).
    email: String,
    /// Initial password (must meet the password policy); without one the user cannot sign
    /// in with a password.
    #[schema(min_length = 12, max_length = 256)]
    password: Option<String>,
    /// `owner`, `admin`, `member` or `viewer`; never above the caller's own role.
    #[schema(value_type = Role)]
    role: String,
}

fn parse_role(s: &str) -> Result<Role, ApiError> {
    s.parse()
        .map_err(|e: String| ApiError::bad_request("invalid_role", e))
}

async fn not_grantable(state: &AppState, auth: &TenantAuth, role: Role) -> ApiError {
    let msg = format!("an {} cannot grant or manage the {role} role", auth.role);
    auth.refuse(
        state,
        "users.change",
        StatusCode::FORBIDDEN,
        "role_not_grantable",
        msg,
    )
    .await
}

/// Add a user to the tenant
///
/// Creates a user with a role no higher than the caller's (`users.manage`); audited
/// (`users.create`). Answers the user.
#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "tenant",
    request_body = NewUser,
    responses(
        (status = 201, description = "The new user", body = User),
        (status = 400, description = "`invalid_email`, `invalid_role`, `weak_password` (the password does not meet the policy)", body = crate::openapi::ErrorBody),
        (status = 403, description = "`role_not_grantable`: the role is above the caller's own (audited)", body = crate::openapi::ErrorBody),
        (status = 409, description = "`email_taken`: a user with this email already exists", body = crate::openapi::ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    auth.require(&state, Capability::UsersManage).await?;
    let email =
        Email::parse(&body.email).map_err(|e| ApiError::bad_request("invalid_email", e.to_string()))?;
    let role = parse_role(&body.role)?;
    if !auth.role.may_grant(role) {
        return Err(not_grantable(&state, &auth, role).await);
    }
    let hash = match body.password {
        Some(p) => Some(
            tokio::task::spawn_blocking(move || password::hash(&p))
                .await
                .map_err(ApiError::internal)?
                .map_err(|e| ApiError::bad_request("weak_password", e.to_string()))?,
        ),
        None => None,
    };
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let user = match users::create(&mut tx, &email, hash.as_deref(), role).await {
        Ok(u) => u,
        Err(UserError::EmailTaken) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "email_taken",
                "a user with this email already exists",
            ));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let ev = auth
        .event("users.create", Outcome::Allowed)
        .target(format!("user:{}", user.id))
        .detail("role", role.as_str())
        .detail("status", user.status.clone());
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// A change to a user: at least one of the fields.
/// A user's status as a change names it.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum UserStatusName {
    Active,
    Disabled,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
struct UserPatch {
    /// New role: `owner`, `admin`, `member` or `viewer`; never above the caller's own.
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
    /// New status: `active` or `disabled` (disabling revokes the user's sessions).
    #[schema(value_type = Option<UserStatusName>)]
    status: Option<String>,
}

/// Applies a role/status change with the rules every change must keep: not on oneself,
/// never above one's own role, and the tenant keeps an active owner.
/// The rules every change to user `id` follows, checked under the membership lock (taken
/// here, held by `tx`): it exists in this tenant, it is not the caller, the caller may
/// grant its role, and it has not been erased. Returns it.
pub(crate) async fn may_change(
    state: &AppState,
    auth: &TenantAuth,
    tx: &mut TenantTx,
    id: UserId,
) -> Result<User, ApiError> {
    users::lock_memberships(tx).await.map_err(ApiError::internal)?;
    let target = users::get(tx, id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if auth.user_id() == Some(id) {
        let msg = "you cannot change your own role or status; ask another admin";
        return Err(auth
            .refuse(
                state,
                "users.change",
                StatusCode::CONFLICT,
                "cannot_modify_self",
                msg,
            )
            .await);
    }
    if !auth.role.may_grant(target.role()) {
        return Err(not_grantable(state, auth, target.role()).await);
    }
    if target.email.ends_with("@erased.invalid") {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "user_erased",
            "this user's personal data was erased; the account cannot be changed or enabled again",
        ));
    }
    Ok(target)
}

async fn change(
    state: &AppState,
    auth: &TenantAuth,
    id: UserId,
    role: Option<Role>,
    status: Option<&str>,
) -> Result<User, ApiError> {
    let mut tx: TenantTx = state.db.begin_tenant(auth.tenant_id()).await?;
    may_change(state, auth, &mut tx, id).await?;
    if let Some(r) = role.filter(|r| !auth.role.may_grant(*r)) {
        drop(tx);
        return Err(not_grantable(state, auth, r).await);
    }
    let updated = users::update(&mut tx, id, role, status)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if users::active_owner_count(&mut tx)
        .await
        .map_err(ApiError::internal)?
        == 0
    {
        drop(tx); // rolls the change back
        let msg = "the organisation must keep at least one active owner";
        return Err(auth
            .refuse(state, "users.change", StatusCode::CONFLICT, "last_owner", msg)
            .await);
    }
    let revoked = if updated.status == "disabled" {
        refresh::revoke_user(&mut tx, id).await?
    } else {
        0
    };
    let action = if status == Some("disabled") {
        "users.disable"
    } else {
        "users.update"
    };
    let ev = auth
        .event(action, Outcome::Allowed)
        .target(format!("user:{id}"))
        .detail("role", updated.role.clone())
        .detail("status", updated.status.clone())
        .detail("sessions_revoked", revoked);
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(updated)
}

/// Change a user's role or status
///
/// Changes another user's role and/or status (`users.manage`). Nobody changes themselves,
/// manages a user above their own role, or changes an erased user; the tenant always keeps
/// an active owner. Disabling revokes the user's refresh tokens. Audited (`users.update`,
/// `users.disable`). Answers the user.
#[utoipa::path(
    patch,
    path = "/v1/users/{id}",
    tag = "tenant",
    params(("id" = String, Path, description = "The user's id")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user as changed", body = User),
        (status = 400, description = "`invalid_role`, `invalid_status` (not `active` or `disabled`), `invalid_body` (neither `role` nor `status` sent)", body = crate::openapi::ErrorBody),
        (status = 403, description = "`role_not_grantable`: the user's current or new role is above the caller's own (audited)", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: no such user in this tenant", body = crate::openapi::ErrorBody),
        (status = 409, description = "`cannot_modify_self` (the caller's own account), `user_erased` (the user's personal data was erased), `last_owner` (the tenant would have no active owner)", body = crate::openapi::ErrorBody),
    )
)]
async fn update(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserPatch>,
) -> Result<Json<User>, ApiError> {
    auth.require(&state, Capability::UsersManage).await?;
    let id = UserId(parse_id(&id, "user")?);
    let role = body.role.as_deref().map(parse_role).transpose()?;
    let status = match body.status.as_deref() {
        None => None,
        Some(s @ ("active" | "disabled")) => Some(s),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_status",
                format!("unknown status {other:?}: expected active or disabled"),
            ));
        }
    };
    if role.is_none() && status.is_none() {
        return Err(ApiError::bad_request(
            "invalid_body",
            "send `role` and/or `status`",
        ));
    }
    Ok(Json(change(&state, &auth, id, role, status).await?))
}

/// `DELETE /v1/users/{id}`: `?erase=true` erases the user's personal data (with
/// `&dry_run=true`, says what it would remove): `deletions::erase_user`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    /// `true`: erase the user's personal data instead of disabling the account.
    #[serde(default)]
    erase: bool,
    /// With `erase=true`: only say what would be removed, change nothing.
    #[serde(default)]
    dry_run: bool,
}

/// Disable or erase a user
///
/// Without a query: disables the user (as `PATCH` with `status: disabled`) and answers the
/// user; audited (`users.disable`). With `?erase=true`: erases the user's personal data and
/// answers the deletion, `status: "done"`, with its certificate (audited,
/// `deletions.requested`); with `&dry_run=true` too, changes nothing and answers what each
/// store would lose. The same rules as any change to a user apply (not oneself, not above
/// one's own role, the tenant keeps an active owner).
#[utoipa::path(
    delete,
    path = "/v1/users/{id}",
    tag = "tenant",
    params(("id" = String, Path, description = "The user's id"), DeleteQuery),
    responses(
        (status = 200, description = "Disabled (the user), erased (the deletion) or the dry run (what each store would lose)", body = UserRemoval),
        (status = 400, description = "`invalid_query`: an unknown or malformed parameter, or `dry_run` without `erase=true`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`role_not_grantable`: the user's role is above the caller's own (audited)", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: no such user in this tenant", body = crate::openapi::ErrorBody),
        (status = 409, description = "`cannot_modify_self` (the caller's own account), `user_erased` (already erased), `last_owner` (the tenant would have no active owner), `export_in_progress` (erasure waits until a running export ends)", body = crate::openapi::ErrorBody),
        (status = 500, description = "`residue_found`: the erasure found the address left behind; nothing was changed and operators were alerted", body = crate::openapi::ErrorBody),
    )
)]
async fn disable(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UserRemoval>, ApiError> {
    let axum::extract::Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    auth.require(&state, Capability::UsersManage).await?;
    let id = UserId(parse_id(&id, "user")?);
    if q.erase {
        return Ok(Json(
            super::deletions::erase_user(&state, &auth, id, q.dry_run).await?,
        ));
    }
    if q.dry_run {
        return Err(ApiError::bad_request(
            "invalid_query",
            "dry_run applies to ?erase=true",
        ));
    }
    let user = change(&state, &auth, id, None, Some("disabled")).await?;
    Ok(Json(UserRemoval::Disabled(user)))
}
