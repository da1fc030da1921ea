//! Operator endpoints (`/ops`): operator tokens only, every action on the platform chain.

use crate::auth::refusal::Refusal;
use crate::auth::tokens::{self, TokenResponse};
use crate::auth::{OperatorAuth, RequestCtx};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::routes::parse_id;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::identity::jwt::Audience;
use docket_platform::identity::operators;
use docket_platform::identity::users::Email;
use docket_platform::ids::TenantId;
use docket_platform::tenants;
use serde::Deserialize;
use serde_json::{Value, json};

/// `/ops/*`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ops/auth/login", post(login))
        .route("/ops/tenants", get(list_tenants))
        .route("/ops/tenants/{id}/suspend", post(suspend))
        .route("/ops/tenants/{id}/resume", post(resume))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    ctx: RequestCtx,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<TokenResponse>, ApiError> {
    crate::auth::preauth::admit(&state, &ctx, "ops.login").await?;
    let email =
        Email::parse(&body.email).map_err(|e| ApiError::bad_request("invalid_email", e.to_string()))?;
    // Operators are throttled like users: the same failures and lockout, per account (in
    // Redis: operators have no tenant to keep a throttle row in).
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
        return Err(refusal.record_once(&state, &ctx, &window, wait).await);
    }
    let found = operators::find_for_login(&state.control, &email).await?;
    let (id, hash, active) = match &found {
        Some((id, h, a)) => (Some(*id), Some(h.clone()), *a),
        None => (None, None, false),
    };
    let pw = body.password;
    let ok = docket_platform::identity::password::verify_bounded(pw, hash).await;
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
        return Err(refusal
            .action("ops.login")
            .actor(actor)
            .record(&state, &ctx)
            .await);
    };
    state
        .auditor
        .platform(
            state.control.pool(),
            ctx.stamp(Event::new("ops.login", Outcome::Allowed, actor)),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        tokens::issue(&state, Audience::Operator, id.0, None, None).await?,
    ))
}

async fn list_tenants(State(state): State<AppState>, op: OperatorAuth) -> Result<Json<Value>, ApiError> {
    let list = tenants::list(&state.control).await.map_err(ApiError::internal)?;
    state
        .auditor
        .platform(
            state.control.pool(),
            op.event("ops.tenants.list", Outcome::Allowed),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({"tenants": list})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusChange {
    reason: Option<String>,
}

async fn set_status(
    state: &AppState,
    op: &OperatorAuth,
    id: &str,
    status: &str,
    reason: Option<String>,
) -> Result<Json<Value>, ApiError> {
    let id = TenantId(parse_id(id, "tenant")?);
    // The row as the control role; its audit events commit with it.
    let mut tx = state.control.pool().begin().await?;
    let updated = sqlx::query("UPDATE tenants SET status = $2, updated_at = now() WHERE id = $1 AND status IN ('active', 'suspended')")
        .bind(id)
        .bind(status)
        .execute(&mut *tx)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(ApiError::not_found("tenant"));
    }
    let action = format!(
        "ops.tenants.{}",
        if status == "suspended" {
            "suspend"
        } else {
            "resume"
        }
    );
    let mut ev = op.event(&action, Outcome::Allowed).target(format!("tenant:{id}"));
    if let Some(r) = &reason {
        ev = ev.detail("reason", r.clone());
    }
    state
        .auditor
        .commit_operator_change(tx, id, ev)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({"tenant_id": id, "status": status})))
}

/// The optional `{"reason": …}` body (an empty body is fine).
fn reason(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    crate::json::parse::<StatusChange>(body).map(|c| c.reason)
}

async fn suspend(
    State(state): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    set_status(&state, &op, &id, "suspended", reason(&body)?).await
}

async fn resume(
    State(state): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    set_status(&state, &op, &id, "active", reason(&body)?).await
}
