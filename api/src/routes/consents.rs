//! Consent records: `GET /v1/consents` (`audit.read`: every purpose's current state and the
//! history, newest first) and `POST /v1/consents` (owners, `tenant.manage`: a new decision,
//! audited; earlier decisions stay as they were).

use crate::auth::TenantAuth;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use docket_platform::consents::{self, Decision, Purpose, TermsVersion};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

/// `/v1/consents`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, decide))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Filter {
    /// Only this purpose: `external_llm_processing` or `usage_analytics`.
    #[param(value_type = Option<Purpose>, inline)]
    purpose: Option<String>,
}

fn purpose(s: &str) -> Result<Purpose, ApiError> {
    s.parse()
        .map_err(|e: String| ApiError::bad_request("unknown_purpose", e))
}

/// Every purpose's current state and the history of decisions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConsentOverview {
    /// Each purpose's current state (its latest decision).
    purposes: Vec<ConsentState>,
    /// Every decision, newest first.
    history: Vec<Decision>,
}

/// A purpose's current state: its latest decision, or not granted if never decided.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConsentState {
    /// The purpose.
    purpose: Purpose,
    /// Whether it is granted now (`false` if never decided).
    granted: bool,
    /// The terms version of the latest decision; null if never decided.
    terms_version: Option<String>,
    /// Who made the latest decision (`user:{id}` or `api_key:{id}`); null if never decided.
    decided_by: Option<String>,
    /// When; null if never decided.
    decided_at: Option<DateTime<Utc>>,
}

/// List the tenant's consents
///
/// Every purpose's current state and the history of decisions, newest first (`audit.read`).
/// A purpose never decided is listed as not granted, with nulls. `decided_by` is
/// `user:{id}` or `api_key:{id}`.
#[utoipa::path(
    get,
    path = "/v1/consents",
    tag = "tenant",
    params(Filter),
    responses(
        (status = 200, description = "Current state and history", body = ConsentOverview),
        (status = 400, description = "`invalid_query` (an unknown or malformed parameter), `unknown_purpose`", body = crate::openapi::ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    auth: TenantAuth,
    query: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ConsentOverview>, ApiError> {
    let Query(f) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    auth.require(&state, Capability::AuditRead).await?;
    let only = f.purpose.as_deref().map(purpose).transpose()?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let current = consents::current(&mut tx).await?;
    let history = consents::history(&mut tx, only).await?;
    tx.commit().await?;
    let purposes = current
        .into_iter()
        .filter(|(p, _)| only.is_none_or(|o| o == *p))
        .map(|(p, d)| match d {
            Some(d) => ConsentState {
                purpose: p,
                granted: d.granted,
                terms_version: Some(d.terms_version),
                decided_by: Some(d.decided_by),
                decided_at: Some(d.decided_at),
            },
            None => ConsentState {
                purpose: p,
                granted: false,
                terms_version: None,
                decided_by: None,
                decided_at: None,
            },
        })
        .collect();
    Ok(Json(ConsentOverview { purposes, history }))
}

/// A consent decision.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Decide {
    /// The purpose: `external_llm_processing` or `usage_analytics`.
    #[schema(value_type = Purpose)]
    purpose: String,
    /// `true` grants, `false` refuses or withdraws.
    granted: bool,
    /// The version of the terms decided on: 1 to 64 letters, digits, `.`, `_` or `-`,
    /// starting with a letter or digit (e.g. `2026-10`).
    #[schema(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    terms_version: String,
}

/// Record a consent decision
///
/// Records a new decision for a purpose (owners, `tenant.manage`); earlier decisions stay
/// as they were, and the newest is the current state (a withdrawal applies from the next
/// request). Audited (`consent.grant` or `consent.revoke`). Answers the decision.
#[utoipa::path(
    post,
    path = "/v1/consents",
    tag = "tenant",
    request_body = Decide,
    responses(
        (status = 201, description = "The decision recorded", body = Decision),
        (status = 400, description = "`unknown_purpose`, `invalid_terms_version`", body = crate::openapi::ErrorBody),
    )
)]
async fn decide(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<Decide>,
) -> Result<(StatusCode, Json<Decision>), ApiError> {
    auth.require(&state, Capability::TenantManage).await?;
    let p = purpose(&body.purpose)?;
    let terms = TermsVersion::parse(&body.terms_version)
        .map_err(|e| ApiError::bad_request("invalid_terms_version", e))?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let d = consents::record(&mut tx, p, body.granted, &terms, &auth.actor_label()).await?;
    let action = if body.granted {
        "consent.grant"
    } else {
        "consent.revoke"
    };
    let ev = auth
        .event(action, Outcome::Allowed)
        .target(format!("purpose:{p}"))
        .detail("terms_version", terms.as_str())
        .detail("consent_id", d.id.to_string());
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(d)))
}
