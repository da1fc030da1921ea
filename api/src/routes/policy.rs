//! The tenant's own policy: `GET/PUT /v1/tenant/policy` (owners change it): whether flagged
//! input is refused, and how questions that name no mode are answered.

use crate::auth::TenantAuth;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use docket_platform::queries::AnswerMode;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

/// `/v1/tenant/policy`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, update))
}

/// A change: fields left out keep their value.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
struct Policy {
    /// Whether questions flagged as prompt-injection attempts are refused (400
    /// `flagged_input`) rather than answered and only audited.
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(nullable = false)]
    refuse_flagged_input: Option<bool>,
    /// How questions that name no mode are answered: `extractive` or `generative` (the
    /// latter needs the plan's `generative_answers` feature).
    #[serde(default, deserialize_with = "crate::json::present")]
    #[schema(nullable = false)]
    default_answer_mode: Option<AnswerMode>,
}

/// The tenant's policy in force.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TenantPolicy {
    /// Whether questions flagged as prompt-injection attempts are refused (400
    /// `flagged_input`) rather than answered and only audited.
    refuse_flagged_input: bool,
    /// How questions that name no mode are answered.
    default_answer_mode: AnswerMode,
}

fn body(refuse: bool, mode: AnswerMode) -> Json<TenantPolicy> {
    Json(TenantPolicy {
        refuse_flagged_input: refuse,
        default_answer_mode: mode,
    })
}

/// Show the tenant's policy
///
/// The tenant's policy (`queries.read`): whether flagged input is refused, and `extractive`
/// or `generative` for questions that name no mode.
#[utoipa::path(
    get,
    path = "/v1/tenant/policy",
    tag = "tenant",
    responses((status = 200, description = "The policy", body = TenantPolicy))
)]
async fn show(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<TenantPolicy>, ApiError> {
    auth.require(&state, Capability::QueriesRead).await?;
    let ent = &auth.entitlements;
    Ok(body(ent.refuse_flagged_input, ent.default_answer_mode))
}

/// Change the tenant's policy
///
/// Changes either setting or both (owners, `tenant.manage`); fields left out keep their
/// value. Audited (`tenant.policy`). Answers the policy now in force.
#[utoipa::path(
    put,
    path = "/v1/tenant/policy",
    tag = "tenant",
    request_body = Policy,
    responses(
        (status = 200, description = "The policy now in force", body = TenantPolicy),
        (status = 400, description = "`empty_policy`: neither field was sent", body = crate::openapi::ErrorBody),
        (status = 403, description = "`feature_not_in_plan`: `generative` as the default on a plan without generative answers", body = crate::openapi::ErrorBody),
    )
)]
async fn update(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(p): ApiJson<Policy>,
) -> Result<Json<TenantPolicy>, ApiError> {
    auth.require(&state, Capability::TenantManage).await?;
    let ent = &auth.entitlements;
    if p.refuse_flagged_input.is_none() && p.default_answer_mode.is_none() {
        return Err(ApiError::bad_request(
            "empty_policy",
            "send refuse_flagged_input, default_answer_mode or both",
        ));
    }
    // A default the plan cannot use would silently never apply: refused when set. (Consent
    // is checked per question: it can be withdrawn after the default is set.)
    if p.default_answer_mode == Some(AnswerMode::Generative) && !ent.has("generative_answers") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "feature_not_in_plan",
            format!(
                "generative answers are not part of the {} plan; upgrade to make them the default",
                ent.plan_id
            ),
        ));
    }
    let refuse = p.refuse_flagged_input.unwrap_or(ent.refuse_flagged_input);
    let mode = p.default_answer_mode.unwrap_or(ent.default_answer_mode);
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    sqlx::query(
        "UPDATE tenants SET refuse_flagged_input = $2, default_answer_mode = $3, updated_at = now() WHERE id = $1",
    )
    .bind(auth.tenant_id())
    .bind(refuse)
    .bind(mode)
    .execute(tx.conn())
    .await?;
    let ev = auth
        .event("tenant.policy", Outcome::Allowed)
        .detail("refuse_flagged_input", refuse)
        .detail("default_answer_mode", mode.as_str());
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(body(refuse, mode))
}
