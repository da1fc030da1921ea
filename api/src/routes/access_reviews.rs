//! Quarterly access reviews. Reading (`audit.read`): `GET /v1/access-reviews`,
//! `GET /v1/access-reviews/{id}` (the report, its decisions, the current addresses of the
//! users it names by id), `…/{id}.pdf` (rendered from the signed report), and
//! `…/{id}/report` (the signed document exactly as issued, to verify offline). Owners
//! (`tenant.manage`) decide each finding (`POST …/{id}/decisions`) and complete the review
//! (`POST …/{id}/complete`). Operators see open reviews past their due date
//! (`GET /ops/access-reviews`).

use crate::auth::{OperatorAuth, TenantAuth};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::routes::parse_id;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use docket_platform::access_reviews::decide::{self, Asked, DecideError, Decision};
use docket_platform::access_reviews::issue::SignedReport;
use docket_platform::access_reviews::report::Report;
use docket_platform::access_reviews::{self as reviews, OVERDUE_DAYS, pdf};
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use serde::Deserialize;
use serde_json::{Value, json};

/// Most decisions one request may carry.
const MAX_DECISIONS: usize = 1_000;

/// `/v1/access-reviews`, `/ops/access-reviews`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/access-reviews", get(list))
        .route("/v1/access-reviews/{id}", get(one))
        .route("/v1/access-reviews/{id}/report", get(signed))
        .route("/v1/access-reviews/{id}/decisions", post(decisions))
        .route("/v1/access-reviews/{id}/complete", post(complete))
        .route("/ops/access-reviews", get(ops_overdue))
}

fn refused(e: DecideError) -> ApiError {
    let status = match &e {
        DecideError::NotFound => return ApiError::not_found("access review"),
        DecideError::UnknownFinding(_) | DecideError::ReasonRequired(_) => StatusCode::BAD_REQUEST,
        DecideError::NotOpen(_)
        | DecideError::AlreadyDecided(_)
        | DecideError::OwnAccess(_)
        | DecideError::LastOwner(_)
        | DecideError::Undecided(_) => StatusCode::CONFLICT,
        DecideError::Db(_) | DecideError::Audit(_) | DecideError::Report(_) => return ApiError::internal(e),
    };
    ApiError::new(status, e.code(), e.to_string())
}

async fn list(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<Value>, ApiError> {
    auth.require(&state, Capability::AuditRead).await?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let all = reviews::list(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(json!({ "access_reviews": all })))
}

/// `{id}` (the review, its report and decisions) or `{id}.pdf`.
async fn one(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.require(&state, Capability::AuditRead).await?;
    let (raw, as_pdf) = match id.strip_suffix(".pdf") {
        Some(raw) => (raw, true),
        None => (id.as_str(), false),
    };
    let id = parse_id(raw, "access review")?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let Some(review) = reviews::get(&mut tx, id).await? else {
        return Err(ApiError::not_found("access review"));
    };
    let issued = match reviews::report_of(&mut tx, id).await? {
        Some(text) => {
            let signed: SignedReport = serde_json::from_str(&text).map_err(ApiError::internal)?;
            let report: Report = serde_json::from_value(signed.report.clone()).map_err(ApiError::internal)?;
            Some((signed, report))
        }
        None => None,
    };
    // Only the addresses of the users the report names (by id), as they are now.
    let addresses = match &issued {
        Some((_, r)) => {
            reviews::addresses(&mut tx, &r.users.iter().map(|u| u.id).collect::<Vec<_>>()).await?
        }
        None => Default::default(),
    };
    if as_pdf {
        let Some((signed, report)) = issued else {
            return Err(not_issued(&review));
        };
        let sha = review.report_sha256.clone().unwrap_or_default();
        let bytes =
            pdf::render(&report, &signed.signature.kid, &sha, &addresses).map_err(ApiError::internal)?;
        let ev = auth
            .event("access_review.download", Outcome::Allowed)
            .target(format!("access_review:{id}"));
        state
            .auditor
            .tenant(&mut tx, ev)
            .await
            .map_err(ApiError::internal)?;
        tx.commit().await?;
        let mut resp = (StatusCode::OK, bytes).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
        if let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename=\"access-review-{}.pdf\"",
            review.quarter
        )) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        return Ok(resp);
    }
    let decisions = decide::decisions(&mut tx, id).await?;
    tx.commit().await?;
    let report = issued.map(|(s, _)| s.report).unwrap_or(Value::Null);
    let names: serde_json::Map<String, Value> = addresses
        .into_iter()
        .map(|(id, email)| (format!("user:{id}"), Value::String(email)))
        .collect();
    Ok(
        Json(json!({"access_review": review, "report": report, "decisions": decisions, "addresses": names}))
            .into_response(),
    )
}

fn not_issued(review: &reviews::Review) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "review_not_issued",
        format!(
            "the review is {}; its report is available once it is issued",
            review.status.as_str()
        ),
    )
}

/// The signed report, byte for byte as issued.
async fn signed(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.require(&state, Capability::AuditRead).await?;
    let id = parse_id(&id, "access review")?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let Some(review) = reviews::get(&mut tx, id).await? else {
        return Err(ApiError::not_found("access review"));
    };
    let issued = reviews::report_of(&mut tx, id).await?;
    tx.commit().await?;
    match issued {
        Some(text) => Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response()),
        None => Err(not_issued(&review)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionItem {
    finding_id: String,
    decision: String,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionsBody {
    decisions: Vec<DecisionItem>,
}

async fn decisions(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecisionsBody>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&state, Capability::TenantManage).await?;
    let id = parse_id(&id, "access review")?;
    if body.decisions.is_empty() || body.decisions.len() > MAX_DECISIONS {
        return Err(ApiError::bad_request(
            "invalid_decisions",
            format!("send 1 to {MAX_DECISIONS} decisions"),
        ));
    }
    let mut asked = Vec::with_capacity(body.decisions.len());
    for d in body.decisions {
        let decision = match d.decision.as_str() {
            "keep" => Decision::Keep(d.reason.unwrap_or_default()),
            "revoke" => Decision::Revoke(d.reason),
            other => {
                return Err(ApiError::bad_request(
                    "invalid_decision",
                    format!("decision {other:?} is neither `keep` nor `revoke`"),
                ));
            }
        };
        asked.push(Asked {
            finding_id: d.finding_id,
            decision,
        });
    }
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let applied = decide::decide(
        &mut tx,
        &state.auditor,
        id,
        &auth.actor_label(),
        |action| auth.event(action, Outcome::Allowed),
        &asked,
    )
    .await
    .map_err(refused)?;
    tx.commit().await?;
    Ok(Json(json!({ "applied": applied })))
}

async fn complete(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&state, Capability::TenantManage).await?;
    let id = parse_id(&id, "access review")?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let ev = auth.event("access_review.completed", Outcome::Allowed);
    decide::complete(&mut tx, &state.auditor, id, &auth.actor_label(), ev)
        .await
        .map_err(refused)?;
    let review = reviews::get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Json(json!({ "access_review": review })))
}

/// Open reviews issued more than the due period ago, oldest first.
async fn ops_overdue(State(state): State<AppState>, op: OperatorAuth) -> Result<Json<Value>, ApiError> {
    let rows = reviews::overdue(&state.control).await?;
    state
        .auditor
        .platform(
            state.control.pool(),
            op.event("ops.access_reviews.list", Outcome::Allowed),
        )
        .await
        .map_err(ApiError::internal)?;
    let now = chrono::Utc::now();
    let overdue: Vec<Value> = rows
        .into_iter()
        .map(|(tenant, slug, review, quarter, issued)| {
            json!({"tenant_id": tenant, "tenant_slug": slug, "review_id": review, "quarter": quarter,
                   "issued_at": issued, "days_open": (now - issued).num_days()})
        })
        .collect();
    Ok(Json(
        json!({"overdue_after_days": OVERDUE_DAYS, "overdue": overdue}),
    ))
}
