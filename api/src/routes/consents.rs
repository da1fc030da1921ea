//! Consent records: `GET /v1/consents` (`audit.read`: every purpose's current state and the
//! history, newest first) and `POST /v1/consents` (owners, `tenant.manage`: a new decision,
//! audited; earlier decisions stay as they were).

use crate::auth::TenantAuth;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use docket_platform::consents::{self, Purpose, TermsVersion};
use serde::Deserialize;
use serde_json::{Value, json};

/// `/v1/consents`.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/consents", get(list).post(decide))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Filter {
    purpose: Option<String>,
}

fn purpose(s: &str) -> Result<Purpose, ApiError> {
    s.parse()
        .map_err(|e: String| ApiError::bad_request("unknown_purpose", e))
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decide {
    purpose: String,
    granted: bool,
    terms_version: String,
}

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
