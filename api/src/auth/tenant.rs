//! The tenant principal extractor: the only place a request's tenant comes from (verified
//! credentials, never a body, path or header the client chooses).

use super::bearer::{BearerError, bearer};
use super::context::RequestCtx;
use super::refusal::{Chain, Refusal};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::authz::Role;
use docket_platform::db::TenantTx;
use docket_platform::entitlements::{self, Entitlements};
use docket_platform::identity::api_keys::{self, KeyRefusal};
use docket_platform::identity::credential::{self, Credential, Kind};
use docket_platform::identity::jwt::{self, Audience};
use docket_platform::identity::users;
use docket_platform::ids::{ApiKeyId, TenantId, UserId};
use docket_platform::tenants::Tenant;

/// Who is acting for the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// A signed-in user.
    User(UserId),
    /// An API key.
    ApiKey(ApiKeyId),
}

/// An authenticated tenant request: tenant (active), principal (active) and current role.
#[derive(Debug, Clone)]
pub struct TenantAuth {
    /// The tenant, re-read on this request.
    pub tenant: Tenant,
    /// Who.
    pub principal: Principal,
    /// Their current role (re-read on this request, not taken from the token).
    pub role: Role,
    /// The tenant's plan entitlements, read on this request.
    pub entitlements: Entitlements,
    /// Request id and address.
    pub ctx: RequestCtx,
}

impl TenantAuth {
    /// The tenant id.
    pub fn tenant_id(&self) -> TenantId {
        self.tenant.id
    }

    /// The audit actor.
    pub fn actor(&self) -> Actor {
        match self.principal {
            Principal::User(u) => Actor::User(u),
            Principal::ApiKey(k) => Actor::ApiKey(k),
        }
    }

    /// `user:{id}` or `api_key:{id}`: who a job runs on behalf of.
    pub fn actor_label(&self) -> String {
        match self.principal {
            Principal::User(u) => format!("user:{u}"),
            Principal::ApiKey(k) => format!("api_key:{k}"),
        }
    }

    /// The acting user, if a user (not a key) is acting.
    pub fn user_id(&self) -> Option<UserId> {
        match self.principal {
            Principal::User(u) => Some(u),
            Principal::ApiKey(_) => None,
        }
    }

    /// An audit event by this principal, stamped with the request.
    pub fn event(&self, action: &str, outcome: Outcome) -> Event {
        self.ctx.stamp(Event::new(action, outcome, self.actor()))
    }

    /// Refuses with a policy error, recorded on the tenant's chain as `action`.
    pub async fn refuse(
        &self,
        state: &AppState,
        action: &'static str,
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        Refusal::new(status, code, message)
            .chain(Chain::Tenant(self.tenant_id()))
            .actor(self.actor())
            .action(action)
            .record(state, &self.ctx)
            .await
    }
}

fn unauthorized(code: &'static str, message: &str) -> Refusal {
    Refusal::new(StatusCode::UNAUTHORIZED, code, message)
}

fn suspended(tenant: TenantId, actor: Actor) -> Refusal {
    Refusal::new(
        StatusCode::FORBIDDEN,
        "tenant_suspended",
        "this organisation is suspended; contact support",
    )
    .chain(Chain::Tenant(tenant))
    .actor(actor)
}

/// Whether requests for `tenant` may go on: an active one always; one being deleted only
/// on the routes that follow or cancel its deletion (`during_deletion`), suspended
/// otherwise; a deleted one never, and as an unknown credential (401), recorded on the
/// platform chain (its own chain has ended).
fn admit(tenant: &Tenant, during_deletion: bool, actor: Actor) -> Result<(), Refusal> {
    match tenant.status.as_str() {
        "active" => Ok(()),
        "deleting" if during_deletion => Ok(()),
        "deleting" => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "tenant_suspended",
            "this organisation is scheduled for deletion and suspended until then; an owner can still cancel \
             the deletion (POST /v1/deletions/{id}/cancel)",
        )
        .chain(Chain::Tenant(tenant.id))
        .actor(actor)),
        "deleted" => Err(unauthorized(
            "tenant_deleted",
            "this organisation has been deleted; its credentials no longer work",
        )),
        _ => Err(suspended(tenant.id, actor)),
    }
}

impl FromRequestParts<AppState> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        extract(parts, state, false).await
    }
}

/// [`TenantAuth`] that also admits a tenant in its deletion's grace period (`deleting`):
/// for the routes that follow and cancel that deletion, nothing else.
#[derive(Debug, Clone)]
pub struct TenantAuthDuringDeletion(pub TenantAuth);

impl FromRequestParts<AppState> for TenantAuthDuringDeletion {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        extract(parts, state, true).await.map(Self)
    }
}

async fn extract(parts: &mut Parts, state: &AppState, during_deletion: bool) -> Result<TenantAuth, ApiError> {
    let ctx = RequestCtx::from_parts(parts);
    let auth = match authenticate(parts, state, during_deletion).await {
        Ok((tenant, principal, role, entitlements)) => TenantAuth {
            tenant,
            principal,
            role,
            entitlements,
            ctx,
        },
        Err(Ok(refusal)) => return Err(refusal.record(state, &ctx).await),
        Err(Err(internal)) => return Err(internal),
    };
    // Once the grace period is over the sweep runs: nothing of the tenant may be written
    // again (not even a rate-limit counter the residue scan would find), so even the
    // deletion's own routes are refused; the certificate comes with the certificate token.
    if auth.tenant.status == "deleting" && sweep_started(state, auth.tenant.id).await? {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "tenant_suspended",
            "this organisation is being deleted now; fetch the certificate with the certificate token",
        )
        .chain(Chain::Tenant(auth.tenant.id))
        .actor(auth.actor())
        .record(state, &auth.ctx)
        .await);
    }
    Ok(auth)
}

/// Whether the tenant's deletion has left its grace period (queued or sweeping).
async fn sweep_started(state: &AppState, tenant: TenantId) -> Result<bool, ApiError> {
    let mut tx = state.db.begin_tenant(tenant).await?;
    let started: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM deletions WHERE scope = 'tenant' AND status IN ('queued', 'running'))",
    )
    .fetch_one(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(started)
}

/// What authentication yields: the tenant, who, their role, and the tenant's entitlements
/// (read in the same transaction, so governance costs no second round of queries).
type Authenticated = (Tenant, Principal, Role, Entitlements);
type Outcome3 = Result<Authenticated, Result<Refusal, ApiError>>;

async fn authenticate(parts: &Parts, state: &AppState, during_deletion: bool) -> Outcome3 {
    let token = match bearer(parts) {
        Ok(t) => t,
        Err(BearerError::Missing) => {
            return Err(Ok(unauthorized(
                "missing_credentials",
                "send `Authorization: Bearer <token or API key>`",
            )));
        }
        Err(BearerError::Malformed) => {
            return Err(Ok(unauthorized(
                "invalid_authorization_header",
                "the Authorization header must be `Bearer <token or API key>`",
            )));
        }
    };
    if credential::looks_like_api_key(token) {
        api_key(token, state, during_deletion).await
    } else {
        access_token(token, state, during_deletion).await
    }
}

async fn load_tenant(tx: &mut TenantTx) -> Result<Option<(Tenant, Entitlements)>, Result<Refusal, ApiError>> {
    entitlements::load(tx).await.map_err(|e| Err(e.into()))
}

async fn access_token(token: &str, state: &AppState, during_deletion: bool) -> Outcome3 {
    let kid = jwt::header_kid(token).map_err(|e| Ok(unauthorized(e.code(), &e.to_string())))?;
    let lookup = state.keys.lookup(&kid).await;
    let claims = jwt::verify(token, lookup, Audience::Tenant, chrono::Utc::now().timestamp())
        .map_err(|e| Ok(unauthorized(e.code(), &e.to_string())))?;
    let invalid = || {
        Ok(unauthorized(
            "invalid_token",
            "the token does not name a valid user",
        ))
    };
    let tid = TenantId(claims.tid.ok_or_else(invalid)?);
    let user_id = UserId(claims.sub);
    let mut tx = state.db.begin_tenant(tid).await.map_err(|e| Err(e.into()))?;
    let (tenant, ent) = load_tenant(&mut tx).await?.ok_or_else(invalid)?;
    admit(&tenant, during_deletion, Actor::User(user_id)).map_err(Ok)?;
    let user = users::get(&mut tx, user_id)
        .await
        .map_err(|e| Err(ApiError::internal(e)))?;
    match user {
        Some(u) if u.is_active() => Ok((tenant, Principal::User(u.id), u.role(), ent)),
        Some(_) => Err(Ok(unauthorized("user_disabled", "this user has been disabled")
            .chain(Chain::Tenant(tid))
            .actor(Actor::User(user_id)))),
        None => Err(invalid()),
    }
}

async fn api_key(token: &str, state: &AppState, during_deletion: bool) -> Outcome3 {
    let invalid = || Ok(unauthorized("invalid_api_key", "the API key is not valid"));
    let cred = Credential::parse(Kind::ApiKey, token).ok_or_else(invalid)?;
    let mut tx = state
        .db
        .begin_tenant(cred.tenant)
        .await
        .map_err(|e| Err(e.into()))?;
    let (tenant, ent) = load_tenant(&mut tx).await?.ok_or_else(invalid)?;
    let result = api_keys::authenticate(&mut tx, &cred)
        .await
        .map_err(|e| Err(e.into()))?;
    tx.commit().await.map_err(|e| Err(e.into()))?;
    let actor = Actor::ApiKey(ApiKeyId(cred.id));
    let key = match result {
        Ok(k) => k,
        Err(KeyRefusal::Invalid) => return Err(invalid()),
        Err(KeyRefusal::Revoked) => {
            return Err(Ok(unauthorized(
                "api_key_revoked",
                "this API key has been revoked",
            )
            .chain(Chain::Tenant(tenant.id))
            .actor(actor)));
        }
        Err(KeyRefusal::Expired) => {
            return Err(Ok(unauthorized("api_key_expired", "this API key has expired")
                .chain(Chain::Tenant(tenant.id))
                .actor(actor)));
        }
        Err(KeyRefusal::CreatorDisabled) => {
            return Err(Ok(unauthorized(
                "api_key_creator_disabled",
                "the user who created this API key is disabled, so the key no longer works",
            )
            .chain(Chain::Tenant(tenant.id))
            .actor(actor)));
        }
    };
    admit(&tenant, during_deletion, actor).map_err(Ok)?;
    let role = key.role.parse().unwrap_or(Role::Viewer);
    Ok((tenant, Principal::ApiKey(key.id), role, ent))
}
