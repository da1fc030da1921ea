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
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use docket_platform::consents::{self, Purpose, TermsVersion};
use serde::Deserialize;
use serde_json::{Value, json};
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
    purpose: Option<String>,
}

fn purpose(s: &str) -> Result<Purpose, ApiError> {
    s.parse()
        .map_err(|e: String| ApiError::bad_request("unknown_purpose", e))
}

/// List the tenant's consents
///
/// Every purpose's current state and the history of decisions, newest first (`audit.read`):
/// `{purposes: [{purpose, granted, terms_version, decided_by, decided_at}], history:
/// [{id, purpose, granted, terms_version, decided_by, decided_at}]}`. A purpose never
/// decided is listed as not granted, with nulls. `decided_by` is `user:{id}` or
/// `api_key:{id}`.
#[utoipa::path(
    get,
    path = "/v1/consents",
    tag = "tenant",
    params(Filter),
    responses(
        (status = 200, description = "Current state and history: `{purposes, history}`", body = serde_json::Value),
        (status = 400, description = "`invalid_query` (an unknown or malformed parameter), `unknown_purpose`", body = crate::openapi::ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    auth: TenantAuth,
    query: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(f) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    auth.require(&state, Capability::AuditRead).await?;
    let only = f.purpose.as_deref().map(purpose).transpose()?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let current = consents::current(&mut tx).await?;
    let history = consents::history(&mut tx, only).await?;
    tx.commit().await?;
    let purposes: Vec<Value> = current
        .into_iter()
        .filter(|(p, _)| only.is_none_or(|o| o == *p))
        .map(|(p, d)| match d {
            Some(d) => json!({
                "purpose": p, "granted": d.granted, "terms_version": d.terms_version,
                "decided_by": d.decided_by, "decided_at": d.decided_at,
            }),
            None => json!({"purpose": p, "granted": false, "terms_version": null, "decided_by": null, "decided_at": null}),
        })
        .collect();
    Ok(Json(json!({"purposes": purposes, "history": history})))
}

/// A consent decision.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Decide {
    /// The purpose: `external_llm_processing` or `usage_analytics`.
    purpose: String,
    /// `true` grants, `false` refuses or withdraws.
    granted: bool,
    /// The version of the terms decided on: 1 to 64 letters, digits, `.`, `_` or `-`,
    /// starting with a letter or digit (e.g. `2026-10`).
    terms_version: String,
}

/// Record a consent decision
///
/// Records a new decision for a purpose (owners, `tenant.manage`); earlier decisions stay
/// as they were, and the newest is the current state (a withdrawal applies from the next
/// request). Audited (`consent.grant` or `consent.revoke`). Answers the decision:
/// `{id, purpose, granted, terms_version, decided_by, decided_at}`.
#[utoipa::path(
    post,
    path = "/v1/consents",
    tag = "tenant",
    request_body = Decide,
    responses(
        (status = 201, description = "The decision recorded: `{id, purpose, granted, terms_version, decided_by, decided_at}`", body = serde_json::Value),
        (status = 400, description = "`unknown_purpose`, `invalid_terms_version`", body = crate::openapi::ErrorBody),
    )
)]
async fn decide(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<Decide>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    Ok((StatusCode::CREATED, Json(json!(d))))
}
