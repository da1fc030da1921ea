//! Operator endpoints (`/ops`): operator tokens only, every action on the platform chain.

use crate::auth::refusal::Refusal;
use crate::auth::tokens::{self, TokenResponse};
use crate::auth::{OperatorAuth, RequestCtx};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::routes::parse_id;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::identity::jwt::Audience;
use docket_platform::identity::operators;
use docket_platform::identity::users::Email;
use docket_platform::ids::{OperatorId, TenantId};
use docket_platform::tenants::{self, Tenant};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

/// `/ops/*`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(list_tenants))
        .routes(routes!(suspend))
        .routes(routes!(resume))
}

/// Every tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TenantList {
    /// The tenants, oldest first.
    tenants: Vec<Tenant>,
}

/// A tenant's status after an operator changed it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TenantStatusChanged {
    /// The tenant.
    tenant_id: TenantId,
    /// Its status now: `suspended` or `active`.
    status: &'static str,
}

/// An operator's credentials.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    /// The operator's email address.
    email: String,
    /// The operator's password.
    password: String,
}

/// Sign in as an operator
///
/// Checks the operator's email and password (per-address limits, then a per-account
/// throttle and lockout after repeated failures) and answers an operator access token,
/// accepted under `/ops` only (no refresh token for operators). The sign-in and every
/// refusal are audited (`ops.login`).
#[utoipa::path(
    post,
    path = "/ops/auth/login",
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "`invalid_email`: the email is not an address", body = crate::openapi::ErrorBody),
        (status = 401, description = "`invalid_credentials`: the email or password is wrong, or the operator is disabled", body = crate::openapi::ErrorBody),
        (status = 429, description = "`too_many_requests` (too many sign-in requests from this address or in total), `login_throttled` (too many failed logins for this account); both with `Retry-After`", body = crate::openapi::ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    ctx: RequestCtx,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<TokenResponse>, ApiError> {
    let id = authenticate(&state, &ctx, &body.email, body.password).await?;
    Ok(Json(
        tokens::issue(&state, Audience::Operator, id.0, None, None).await?,
    ))
}

/// Checks an operator's email and password, with the same per-account throttle and lockout
/// as users (in Redis: operators have no tenant to keep a throttle row in), and audits the
/// sign-in (`ops.login`) or the refusal. The JSON login and the panel's sign-in both call
/// this; they differ only in what they hand out (a token, a session).
pub async fn authenticate(
    state: &AppState,
    ctx: &RequestCtx,
    email: &str,
    password: String,
) -> Result<OperatorId, ApiError> {
    crate::auth::preauth::admit(state, ctx, "ops.login").await?;
    let email = Email::parse(email).map_err(|e| ApiError::bad_request("invalid_email", e.to_string()))?;
    let auth = &state.config.auth;
    let account = docket_platform::ratelimit::account_key("ops-login", email.as_str());
    let lockout = auth.login_lockout.as_secs();
    if let Ok(Some(wait)) = docket_platform::ratelimit::locked_for(&state.redis, &account).await {
        let refusal = Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "login_throttled",
            format!("too many failed logins for this account; try again in {wait} s"),
        )
        .action("ops.login")
        .retry_after(wait);
        let window = format!("login-throttled:{account}");
        return Err(refusal.record_once(state, ctx, &window, wait).await);
    }
    let found = operators::find_for_login(&state.control, &email).await?;
    let (id, hash, active) = match &found {
        Some((id, h, a)) => (Some(*id), Some(h.clone()), *a),
        None => (None, None, false),
    };
    let ok = docket_platform::identity::password::verify_bounded(password, hash).await;
    let actor = id.map(Actor::Operator).unwrap_or(Actor::Anonymous);
    let (Some(id), true, true) = (id, ok, active) else {
        let locked = docket_platform::ratelimit::count_failure(
            &state.redis,
            &account,
            auth.login_max_failures,
            lockout,
        )
        .await
        .unwrap_or(None);
        let refusal = match locked {
            Some(wait) => Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "login_throttled",
                format!("too many failed logins for this account; try again in {wait} s"),
            )
            .retry_after(wait),
            None => Refusal::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "the email or password is wrong",
            ),
        };
        return Err(refusal.action("ops.login").actor(actor).record(state, ctx).await);
    };
    state
        .auditor
        .platform(
            state.control.pool(),
            ctx.stamp(Event::new("ops.login", Outcome::Allowed, actor)),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(id)
}

/// List every tenant
///
/// Operators: every tenant, oldest first; audited (`ops.tenants.list`).
#[utoipa::path(
    get,
    path = "/ops/tenants",
    tag = "ops",
    responses((status = 200, description = "Every tenant", body = TenantList))
)]
async fn list_tenants(State(state): State<AppState>, op: OperatorAuth) -> Result<Json<TenantList>, ApiError> {
    let list = tenants::list(&state.control).await.map_err(ApiError::internal)?;
    state
        .auditor
        .platform(
            state.control.pool(),
            op.event("ops.tenants.list", Outcome::Allowed),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(TenantList { tenants: list }))
}

/// Why a tenant's status changes (the whole body is optional).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    /// Why (1–500 printable characters; recorded in the tenant's and the platform's audit
    /// chains).
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    reason: Option<String>,
}

/// What an operator does to a tenant's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// Every request on its behalf is refused with 403 `tenant_suspended`.
    Suspend,
    /// Back to active.
    Resume,
}

impl StatusChange {
    fn stored(self) -> &'static str {
        match self {
            Self::Suspend => "suspended",
            Self::Resume => "active",
        }
    }

    fn action(self) -> &'static str {
        match self {
            Self::Suspend => "ops.tenants.suspend",
            Self::Resume => "ops.tenants.resume",
        }
    }
}

/// Suspends or resumes a tenant (404 unless it is active or suspended; 400
/// `invalid_reason` for an empty, overlong or control-character reason), audited on the
/// tenant's and the platform's chains in the same transaction. `/ops` and the panel both
/// call this.
pub async fn change_status(
    state: &AppState,
    op: &OperatorAuth,
    id: TenantId,
    change: StatusChange,
    reason: Option<String>,
) -> Result<(), ApiError> {
    if let Some(r) = &reason
        && !docket_platform::safety::is_printable_line(r, 500)
    {
        return Err(ApiError::bad_request(
            "invalid_reason",
            "a reason must be 1 to 500 printable characters (it goes into both audit chains)",
        ));
    }
    // The row as the control role; its audit events commit with it.
    let mut tx = state.control.pool().begin().await?;
    let updated = sqlx::query("UPDATE tenants SET status = $2, updated_at = now() WHERE id = $1 AND status IN ('active', 'suspended')")
        .bind(id)
        .bind(change.stored())
        .execute(&mut *tx)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(ApiError::not_found("tenant"));
    }
    let mut ev = op
        .event(change.action(), Outcome::Allowed)
        .target(format!("tenant:{id}"));
    if let Some(r) = &reason {
        ev = ev.detail("reason", r.clone());
    }
    state
        .auditor
        .commit_operator_change(tx, id, ev)
        .await
        .map_err(ApiError::internal)
}

async fn set_status(
    state: &AppState,
    op: &OperatorAuth,
    id: &str,
    change: StatusChange,
    reason: Option<String>,
) -> Result<Json<TenantStatusChanged>, ApiError> {
    let id = TenantId(parse_id(id, "tenant")?);
    change_status(state, op, id, change, reason).await?;
    Ok(Json(TenantStatusChanged {
        tenant_id: id,
        status: change.stored(),
    }))
}

/// The optional `{"reason": …}` body (an empty body is fine).
fn reason(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    // `null` is no body too (the contract's body is optional).
    crate::json::parse::<Option<StatusBody>>(body).map(|c| c.and_then(|c| c.reason))
}

/// Suspend a tenant
///
/// Operators: every request on the tenant's behalf is then refused with 403
/// `tenant_suspended` until it is resumed. Only an active or suspended tenant can be
/// suspended (suspending a suspended one is accepted again). Audited (`ops.tenants.suspend`)
/// on the tenant's and the platform's chains. Answers the status `suspended`.
#[utoipa::path(
    post,
    path = "/ops/tenants/{id}/suspend",
    tag = "ops",
    params(("id" = String, Path, description = "The tenant's id")),
    request_body(content = Option<StatusBody>, description = "Optional `{\"reason\": \"…\"}`; the body may be empty. Read as JSON whatever the `Content-Type`."),
    responses(
        (status = 200, description = "Suspended", body = TenantStatusChanged),
        (status = 400, description = "`invalid_reason` (empty, longer than 500 characters or holding a control character), `invalid_json`, `invalid_body`, `invalid_text` (a control character in the body)", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: the id is not a UUID, or no tenant with it is active or suspended (unknown, being deleted or deleted)", body = crate::openapi::ErrorBody),
    )
)]
async fn suspend(
    State(state): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<TenantStatusChanged>, ApiError> {
    set_status(&state, &op, &id, StatusChange::Suspend, reason(&body)?).await
}

/// Resume a suspended tenant
///
/// Operators: the tenant is active again (resuming an active one is accepted too). Only an
/// active or suspended tenant can be resumed. Audited (`ops.tenants.resume`) on the tenant's
/// and the platform's chains. Answers the status `active`.
#[utoipa::path(
    post,
    path = "/ops/tenants/{id}/resume",
    tag = "ops",
    params(("id" = String, Path, description = "The tenant's id")),
    request_body(content = Option<StatusBody>, description = "Optional `{\"reason\": \"…\"}`; the body may be empty. Read as JSON whatever the `Content-Type`."),
    responses(
        (status = 200, description = "Resumed", body = TenantStatusChanged),
        (status = 400, description = "`invalid_reason` (empty, longer than 500 characters or holding a control character), `invalid_json`, `invalid_body`, `invalid_text` (a control character in the body)", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: the id is not a UUID, or no tenant with it is active or suspended (unknown, being deleted or deleted)", body = crate::openapi::ErrorBody),
    )
)]
async fn resume(
    State(state): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<TenantStatusChanged>, ApiError> {
    set_status(&state, &op, &id, StatusChange::Resume, reason(&body)?).await
}
