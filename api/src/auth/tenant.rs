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
use docket_platform::authz::{self, Capability, Role};
use docket_platform::identity::api_keys::{self, KeyRefusal};
use docket_platform::identity::credential::{self, Credential, Kind};
use docket_platform::identity::jwt::{self, Audience};
use docket_platform::identity::users;
use docket_platform::ids::{ApiKeyId, TenantId, UserId};
use docket_platform::ratelimit::{self, EndpointClass};
use docket_platform::tenants::{self, Tenant};
use docket_platform::{plans, switches};

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

    /// Refuses (403, audited with the capability) unless the role holds `cap`; then
    /// applies the rate limit of the capability's endpoint class.
    pub async fn require(&self, state: &AppState, cap: Capability) -> Result<(), ApiError> {
        if !authz::allows(self.role, cap) {
            let msg = format!("your role ({}) does not allow {cap}", self.role);
            return Err(self
                .refuse(state, "authz.check", StatusCode::FORBIDDEN, "forbidden", msg)
                .await);
        }
        let class = EndpointClass::of(cap);
        self.check_switches(state, class).await?;
        self.rate_limit(state, class).await
    }

    /// Refuses (403 `feature_not_in_plan`, audited as `plan.feature`) unless the tenant's
    /// plan includes `feature`.
    pub async fn require_feature(&self, state: &AppState, feature: &str) -> Result<(), ApiError> {
        let mut tx = state.db.begin_tenant(self.tenant_id()).await?;
        let has = plans::has_feature(&mut tx, feature).await?;
        tx.commit().await?;
        if has {
            return Ok(());
        }
        let msg = format!(
            "your plan ({}) does not include {feature}; an owner can upgrade the plan",
            self.tenant.plan_id
        );
        Err(self
            .refuse(
                state,
                "plan.feature",
                StatusCode::FORBIDDEN,
                "feature_not_in_plan",
                msg,
            )
            .await)
    }

    /// Refuses (503 `disabled_by_operator`, audited with the switch id) when an operator
    /// has turned `class` off for everyone or for this tenant; refuses all requests while
    /// the switches cannot be read (fail closed).
    pub async fn check_switches(&self, state: &AppState, class: EndpointClass) -> Result<(), ApiError> {
        let Some(list) = state.switches.current(&state.db).await else {
            let mut err = self
                .refuse(
                    state,
                    "switch.check",
                    StatusCode::SERVICE_UNAVAILABLE,
                    "switches_unavailable",
                    "requests are paused because the operators' incident switches cannot be read; retry shortly",
                )
                .await;
            err.retry_after = Some(5);
            return Err(err);
        };
        let Some(sw) = switches::blocking(&list, class, self.tenant_id()) else {
            return Ok(());
        };
        let ev = self
            .event("switch.check", Outcome::Refused)
            .reason("disabled_by_operator")
            .detail("switch", sw.id.to_string())
            .detail("class", class.as_str());
        if let Err(e) = state
            .auditor
            .tenant_standalone(&state.db, self.tenant_id(), ev)
            .await
        {
            tracing::error!(error = %e, "could not audit a switch refusal");
        }
        let scope = if sw.target_tenant.is_some() {
            "for your organisation"
        } else {
            "for everyone"
        };
        let mut err = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "disabled_by_operator",
            format!(
                "{} requests are switched off {scope} by the operators: {}",
                class.as_str(),
                sw.reason
            ),
        );
        err.retry_after = Some(30);
        Err(err)
    }

    /// Takes one request from the tenant's bucket for `class` (429 `rate_limited` when
    /// empty). If the limiter is unreachable, classes that create work fail closed (503)
    /// and reads and administration proceed (logged and counted).
    pub async fn rate_limit(&self, state: &AppState, class: EndpointClass) -> Result<(), ApiError> {
        let mut tx = state.db.begin_tenant(self.tenant_id()).await?;
        let limit = ratelimit::limit_for(&mut tx, class).await?;
        tx.commit().await?;
        match ratelimit::check(&state.redis, self.tenant_id(), class, limit).await {
            Ok(d) => {
                self.ctx.rate.set(d);
                if d.allowed {
                    return Ok(());
                }
                let msg = format!(
                    "too many {} requests: {} per minute with bursts of {}; retry in {} s",
                    class.as_str(),
                    limit.per_minute,
                    limit.burst,
                    d.retry_after_secs
                );
                let mut err = self
                    .refuse(
                        state,
                        "ratelimit.check",
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate_limited",
                        msg,
                    )
                    .await;
                err.retry_after = Some(d.retry_after_secs);
                Err(err)
            }
            Err(e) if class.fails_closed() => {
                tracing::error!(error = %e, class = class.as_str(), "rate limiter unreachable; refusing");
                let mut err = self
                    .refuse(
                        state,
                        "ratelimit.check",
                        StatusCode::SERVICE_UNAVAILABLE,
                        "rate_limiter_unavailable",
                        "this kind of request is paused while the rate limiter is unreachable; retry shortly",
                    )
                    .await;
                err.retry_after = Some(5);
                Err(err)
            }
            Err(e) => {
                tracing::warn!(error = %e, class = class.as_str(), "rate limiter unreachable; allowing a read");
                metrics::counter!("docket_rate_limiter_unavailable_total", "class" => class.as_str())
                    .increment(1);
                Ok(())
            }
        }
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

impl FromRequestParts<AppState> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ctx = RequestCtx::from_parts(parts);
        match authenticate(parts, state).await {
            Ok((tenant, principal, role)) => Ok(TenantAuth {
                tenant,
                principal,
                role,
                ctx,
            }),
            Err(Ok(refusal)) => Err(refusal.record(state, &ctx).await),
            Err(Err(internal)) => Err(internal),
        }
    }
}

type Outcome3 = Result<(Tenant, Principal, Role), Result<Refusal, ApiError>>;

async fn authenticate(parts: &Parts, state: &AppState) -> Outcome3 {
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
        api_key(token, state).await
    } else {
        access_token(token, state).await
    }
}

async fn load_tenant(state: &AppState, id: TenantId) -> Result<Option<Tenant>, ApiError> {
    tenants::get(&state.db, id).await.map_err(ApiError::internal)
}

async fn access_token(token: &str, state: &AppState) -> Outcome3 {
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
    let tenant = load_tenant(state, tid).await.map_err(Err)?.ok_or_else(invalid)?;
    if !tenant.is_active() {
        return Err(Ok(suspended(tid, Actor::User(user_id))));
    }
    let mut tx = state.db.begin_tenant(tid).await.map_err(|e| Err(e.into()))?;
    let user = users::get(&mut tx, user_id)
        .await
        .map_err(|e| Err(ApiError::internal(e)))?;
    match user {
        Some(u) if u.is_active() => Ok((tenant, Principal::User(u.id), u.role())),
        Some(_) => Err(Ok(unauthorized("user_disabled", "this user has been disabled")
            .chain(Chain::Tenant(tid))
            .actor(Actor::User(user_id)))),
        None => Err(invalid()),
    }
}

async fn api_key(token: &str, state: &AppState) -> Outcome3 {
    let invalid = || Ok(unauthorized("invalid_api_key", "the API key is not valid"));
    let cred = Credential::parse(Kind::ApiKey, token).ok_or_else(invalid)?;
    let tenant = load_tenant(state, cred.tenant)
        .await
        .map_err(Err)?
        .ok_or_else(invalid)?;
    let mut tx = state
        .db
        .begin_tenant(tenant.id)
        .await
        .map_err(|e| Err(e.into()))?;
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
    };
    if !tenant.is_active() {
        return Err(Ok(suspended(tenant.id, actor)));
    }
    let role = key.role.parse().unwrap_or(Role::Viewer);
    Ok((tenant, Principal::ApiKey(key.id), role))
}
