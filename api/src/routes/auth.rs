//! Sign-in for tenant users: login, refresh, logout, and the public keys (JWKS).

use crate::auth::RequestCtx;
use crate::auth::refusal::{Chain, Refusal};
use crate::auth::tokens::{self, TokenResponse};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::identity::credential::{Credential, Kind};
use docket_platform::identity::jwt::Audience;
use docket_platform::identity::keyring::JwkSet;
use docket_platform::identity::refresh::{self, Redeemed};
use docket_platform::identity::users::{self, Email};
use docket_platform::identity::{password, throttle};
use docket_platform::tenants;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

/// `/v1/auth/*` and `/.well-known/jwks.json`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh_token))
        .routes(routes!(logout))
        .routes(routes!(jwks))
}

/// A tenant user's sign-in. (Named `TenantLoginBody` in the document: the operators'
/// sign-in has a `LoginBody` of its own.)
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = TenantLoginBody)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    /// The organisation's slug.
    tenant: String,
    /// The user's email address.
    email: String,
    /// The user's password.
    password: String,
}

fn invalid_credentials() -> Refusal {
    Refusal::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "the organisation, email or password is wrong",
    )
    .action("auth.login")
}

/// Verifies a password off the async runtime, bounded (argon2 is deliberately slow and
/// memory-hard; see `password::verify_bounded`).
async fn verify_password(password: String, hash: Option<String>) -> Result<bool, ApiError> {
    Ok(password::verify_bounded(password, hash).await)
}

fn throttled(wait: u64) -> Refusal {
    Refusal::new(
        StatusCode::TOO_MANY_REQUESTS,
        "login_throttled",
        format!("too many failed logins for this account; try again in {wait} s"),
    )
    .action("auth.login")
    .retry_after(wait)
}

/// Sign in as a tenant user
///
/// Checks the organisation, email and password and answers a token pair: `access_token` is
/// a JWT (send it as `Authorization: Bearer …`), `refresh_token` is the opaque token for
/// `POST /v1/auth/refresh`, `token_type` is always `Bearer`, `expires_in` the access
/// token's lifetime in seconds. An unknown organisation answers, waits and throttles like a
/// wrong password; repeated failures lock the account for a while (429
/// `login_throttled`). Audited (`auth.login`).
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "`invalid_email`: the email is not an address", body = crate::openapi::ErrorBody),
        (status = 401, description = "`invalid_credentials` (the organisation, email or password is wrong), `user_disabled`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`tenant_suspended`: the organisation is suspended", body = crate::openapi::ErrorBody),
        (status = 429, description = "`too_many_requests` (too many sign-in requests from this address or in total), `login_throttled` (too many failed logins for this account); both with `Retry-After`", body = crate::openapi::ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    ctx: RequestCtx,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<TokenResponse>, ApiError> {
    crate::auth::preauth::admit(&state, &ctx, "auth.login").await?;
    let email =
        Email::parse(&body.email).map_err(|e| ApiError::bad_request("invalid_email", e.to_string()))?;
    let auth = &state.config.auth;
    let lockout = auth.login_lockout.as_secs();
    // A deleted organisation is an unknown one: nothing of it may be written again (no
    // throttle row, no event on its ended chain).
    let Some(tenant) = tenants::find_by_slug(&state.db, &body.tenant)
        .await
        .map_err(ApiError::internal)?
        .filter(|t| !t.is_deleted())
    else {
        // An unknown organisation answers, waits and throttles exactly like a known one
        // (the same counter, kept in Redis as it has no tenant to live in), so slugs
        // cannot be enumerated.
        let key = docket_platform::ratelimit::account_key(
            "login-unknown",
            &format!("{}:{}", body.tenant.to_lowercase(), email.as_str()),
        );
        if let Ok(Some(wait)) = docket_platform::ratelimit::locked_for(&state.redis, &key).await {
            verify_password(body.password, None).await?;
            let window = format!("login-throttled:{key}");
            return Err(throttled(wait).record_once(&state, &ctx, &window, wait).await);
        }
        verify_password(body.password, None).await?;
        let locked =
            docket_platform::ratelimit::count_failure(&state.redis, &key, auth.login_max_failures, lockout)
                .await
                .unwrap_or(None);
        return Err(match locked {
            // The lock itself is always recorded.
            Some(wait) => throttled(wait).record(&state, &ctx).await,
            None => {
                invalid_credentials()
                    .record_once(&state, &ctx, &format!("login-failed:{key}"), lockout)
                    .await
            }
        });
    };
    let mut tx = state.db.begin_tenant(tenant.id).await?;
    // The throttle is keyed by a pseudonym of the email: unknown accounts are throttled
    // exactly like real ones, and no address is stored.
    let account = state
        .auditor
        .tenant_pseudonym(&mut tx, &format!("email:{}", email.as_str()))
        .await
        .map_err(ApiError::internal)?;
    let chain = Chain::Tenant(tenant.id);
    let once = format!("{}:{account}", tenant.id);
    if let Some(wait) = throttle::locked_for(&mut tx, &account).await? {
        drop(tx);
        verify_password(body.password, None).await?;
        let window = format!("login-throttled:{once}");
        return Err(throttled(wait)
            .chain(chain)
            .record_once(&state, &ctx, &window, wait)
            .await);
    }
    let found = users::find_for_login(&mut tx, &email)
        .await
        .map_err(ApiError::internal)?;
    // The password is checked with no pooled connection held: argon2 takes tens of
    // milliseconds, and a flood of attempts must not take the tenant's users' connections.
    tx.commit().await?;
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), h),
        None => (None, None),
    };
    let ok = verify_password(body.password, hash).await?;
    let mut tx = state.db.begin_tenant(tenant.id).await?;
    let user = match (user, ok) {
        (Some(u), true) => u,
        (user, _) => {
            let locked =
                throttle::record_failure(&mut tx, &account, auth.login_max_failures, lockout).await?;
            tx.commit().await?;
            let actor = user.map(|u| Actor::User(u.id)).unwrap_or(Actor::Anonymous);
            return Err(match locked {
                // The lock itself is always recorded.
                Some(wait) => {
                    throttled(wait)
                        .chain(chain)
                        .actor(actor)
                        .record(&state, &ctx)
                        .await
                }
                None => {
                    let refusal = invalid_credentials().chain(chain).actor(actor);
                    refusal
                        .record_once(&state, &ctx, &format!("login-failed:{once}"), lockout)
                        .await
                }
            });
        }
    };
    let actor = Actor::User(user.id);
    if !user.is_active() {
        drop(tx);
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "user_disabled",
            "this user has been disabled",
        )
        .action("auth.login")
        .chain(chain)
        .actor(actor)
        .record(&state, &ctx)
        .await);
    }
    if !tenant.is_active() {
        drop(tx);
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "tenant_suspended",
            "this organisation is suspended; contact support",
        )
        .action("auth.login")
        .chain(chain)
        .actor(actor)
        .record(&state, &ctx)
        .await);
    }
    throttle::reset(&mut tx, &account).await?;
    let refresh = refresh::issue(&mut tx, user.id, auth.refresh_token_ttl).await?;
    state
        .auditor
        .tenant(
            &mut tx,
            ctx.stamp(Event::new("auth.login", Outcome::Allowed, actor)),
        )
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    let tokens = tokens::issue(
        &state,
        Audience::Tenant,
        user.id.0,
        Some((tenant.id.0, user.role.as_str())),
        Some(refresh),
    )
    .await?;
    Ok(Json(tokens))
}

/// A refresh token, to redeem or to revoke.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    /// The opaque refresh token from sign-in or the last refresh.
    refresh_token: String,
}

fn invalid_refresh(action: &'static str) -> Refusal {
    Refusal::new(
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
        "the refresh token is not valid; sign in again",
    )
    .action(action)
}

/// Exchange a refresh token for new tokens
///
/// Redeems the refresh token once and answers a new pair (the old refresh token is spent).
/// Presenting a spent refresh token again revokes every session of that sign-in (401
/// `refresh_token_reused`). Audited (`auth.refresh`).
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "`invalid_refresh_token` (unknown, expired or malformed; sign in again), `refresh_token_reused` (already used: the whole sign-in was revoked), `user_disabled`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`tenant_suspended`: the organisation is suspended", body = crate::openapi::ErrorBody),
        (status = 429, description = "`too_many_requests`: too many sign-in requests from this address or in total (`Retry-After`)", body = crate::openapi::ErrorBody),
    )
)]
async fn refresh_token(
    State(state): State<AppState>,
    ctx: RequestCtx,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<Json<TokenResponse>, ApiError> {
    crate::auth::preauth::admit(&state, &ctx, "auth.refresh").await?;
    let Some(cred) = Credential::parse(Kind::Refresh, &body.refresh_token) else {
        return Err(invalid_refresh("auth.refresh").record(&state, &ctx).await);
    };
    let Some(tenant) = tenants::get(&state.db, cred.tenant)
        .await
        .map_err(ApiError::internal)?
        .filter(|t| !t.is_deleted())
    else {
        return Err(invalid_refresh("auth.refresh").record(&state, &ctx).await);
    };
    let chain = Chain::Tenant(tenant.id);
    let mut tx = state.db.begin_tenant(tenant.id).await?;
    let redeemed = refresh::redeem(&mut tx, &cred, state.config.auth.refresh_token_ttl).await?;
    match redeemed {
        Redeemed::Invalid => {
            drop(tx);
            Err(invalid_refresh("auth.refresh").record(&state, &ctx).await)
        }
        Redeemed::Reused { user, .. } => {
            // Commit the family's revocation before answering.
            tx.commit().await?;
            Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "refresh_token_reused",
                "this refresh token was already used; every session of this sign-in has been revoked",
            )
            .action("auth.refresh")
            .chain(chain)
            .actor(Actor::User(user))
            .record(&state, &ctx)
            .await)
        }
        Redeemed::Rotated { user, token, .. } => {
            let u = users::get(&mut tx, user).await.map_err(ApiError::internal)?;
            let Some(u) = u.filter(|u| u.is_active()) else {
                drop(tx);
                return Err(Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    "user_disabled",
                    "this user has been disabled",
                )
                .action("auth.refresh")
                .chain(chain)
                .actor(Actor::User(user))
                .record(&state, &ctx)
                .await);
            };
            if !tenant.is_active() {
                drop(tx);
                return Err(Refusal::new(
                    StatusCode::FORBIDDEN,
                    "tenant_suspended",
                    "this organisation is suspended; contact support",
                )
                .action("auth.refresh")
                .chain(chain)
                .actor(Actor::User(user))
                .record(&state, &ctx)
                .await);
            }
            state
                .auditor
                .tenant(
                    &mut tx,
                    ctx.stamp(Event::new("auth.refresh", Outcome::Allowed, Actor::User(user))),
                )
                .await
                .map_err(ApiError::internal)?;
            tx.commit().await?;
            let tokens = tokens::issue(
                &state,
                Audience::Tenant,
                user.0,
                Some((tenant.id.0, u.role.as_str())),
                Some(token),
            )
            .await?;
            Ok(Json(tokens))
        }
    }
}

/// Sign out
///
/// Revokes the refresh token and every token of its sign-in (the access token simply
/// expires). Audited (`auth.logout`, with the number of tokens revoked).
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "auth",
    request_body = RefreshBody,
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "`invalid_refresh_token`: the refresh token is not valid", body = crate::openapi::ErrorBody),
        (status = 429, description = "`too_many_requests`: too many sign-in requests from this address or in total (`Retry-After`)", body = crate::openapi::ErrorBody),
    )
)]
async fn logout(
    State(state): State<AppState>,
    ctx: RequestCtx,
    ApiJson(body): ApiJson<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    crate::auth::preauth::admit(&state, &ctx, "auth.logout").await?;
    let cred = Credential::parse(Kind::Refresh, &body.refresh_token);
    let tenant = match &cred {
        Some(c) => tenants::get(&state.db, c.tenant)
            .await
            .map_err(ApiError::internal)?,
        None => None,
    };
    let (Some(cred), Some(tenant)) = (cred, tenant) else {
        return Err(invalid_refresh("auth.logout").record(&state, &ctx).await);
    };
    let mut tx = state.db.begin_tenant(tenant.id).await?;
    let Some(family) = refresh::family_of(&mut tx, &cred).await? else {
        drop(tx);
        return Err(invalid_refresh("auth.logout").record(&state, &ctx).await);
    };
    let revoked = refresh::revoke_family(&mut tx, family).await?;
    let ev = ctx.stamp(
        Event::new("auth.logout", Outcome::Allowed, Actor::Anonymous).detail("tokens_revoked", revoked),
    );
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The public keys that verify access tokens (JWKS)
///
/// A JSON Web Key Set: the Ed25519 (`EdDSA`) keys access tokens are signed with, the active
/// key first, then retired keys still within their verification window. Match a token's
/// `kid` header to a key.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "auth",
    responses((status = 200, description = "The JSON Web Key Set", body = JwkSet))
)]
async fn jwks(State(state): State<AppState>) -> Json<JwkSet> {
    Json(state.keys.jwks().await)
}
