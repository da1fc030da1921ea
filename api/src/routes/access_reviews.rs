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
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use docket_platform::access_reviews::decide::{self, Applied, Asked, DecideError, Decision, Recorded};
use docket_platform::access_reviews::issue::SignedReport;
use docket_platform::access_reviews::report::Report;
use docket_platform::access_reviews::{self as reviews, OVERDUE_DAYS, Review, pdf};
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Most decisions one request may carry.
const MAX_DECISIONS: usize = 1_000;

/// `/v1/access-reviews`, `/ops/access-reviews`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(one))
        .routes(routes!(signed))
        .routes(routes!(decisions))
        .routes(routes!(complete))
        .routes(routes!(ops_overdue))
}

/// The tenant's access reviews.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AccessReviewList {
    /// Every review, newest quarter first.
    access_reviews: Vec<Review>,
}

/// An access review with its report and decisions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AccessReviewView {
    /// The review.
    access_review: Review,
    /// The issued report (the `report` of the signed document); null before it is issued.
    report: Option<Report>,
    /// Every decision taken, in order.
    decisions: Vec<Recorded>,
    /// The current address of each user the report names, keyed `user:{id}` (empty before
    /// the report is issued).
    addresses: BTreeMap<String, String>,
}

/// The decisions a request applied.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AppliedDecisions {
    /// One per decision asked, in the order asked.
    applied: Vec<Applied>,
}

/// A completed access review.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CompletedReview {
    /// The review, now `completed`, with `completed_by` and `completed_at`.
    access_review: Option<Review>,
}

/// Open access reviews past their due date, of every tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OverdueReviews {
    /// An open review issued more than this many days ago is overdue.
    overdue_after_days: i64,
    /// The overdue reviews, oldest first.
    overdue: Vec<OverdueReview>,
}

/// An open review past its due date.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OverdueReview {
    /// The tenant.
    tenant_id: uuid::Uuid,
    /// Its slug.
    tenant_slug: String,
    /// The review.
    review_id: uuid::Uuid,
    /// Its quarter, `YYYYQn`.
    quarter: String,
    /// When its report was issued.
    issued_at: DateTime<Utc>,
    /// Whole days since then.
    days_open: i64,
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

/// List the tenant's access reviews
///
/// Every quarterly review, newest quarter first. Capability `audit.read`.
#[utoipa::path(
    get,
    path = "/v1/access-reviews",
    tag = "compliance",
    responses((status = 200, description = "The tenant's access reviews", body = AccessReviewList))
)]
async fn list(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<AccessReviewList>, ApiError> {
    auth.require(&state, Capability::AuditRead).await?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let all = reviews::list(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(AccessReviewList { access_reviews: all }))
}

/// Show an access review, or download it as PDF
///
/// `{id}`: the review, its report (null before it is issued) and decisions, with the
/// current addresses of the users the report names by id. `{id}.pdf`: the report rendered
/// as PDF from the signed report (`Content-Disposition: attachment`), audited
/// (`access_review.download`). Capability `audit.read`.
#[utoipa::path(
    get,
    path = "/v1/access-reviews/{id}",
    tag = "compliance",
    params(("id" = String, Path, description = "The review's id; with a `.pdf` suffix, the report as PDF")),
    responses(
        (status = 200, description = "The review as JSON, or (for `{id}.pdf`) its report as PDF", content(
            (AccessReviewView = "application/json"),
            (String = "application/pdf")
        )),
        (status = 404, description = "`not_found`: no such access review of this tenant", body = crate::openapi::ErrorBody),
        (status = 409, description = "`review_not_issued` (`{id}.pdf` only): the review's report is not issued yet", body = crate::openapi::ErrorBody),
    )
)]
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
    let addresses = addresses
        .into_iter()
        .map(|(id, email)| (format!("user:{id}"), email))
        .collect();
    Ok(Json(AccessReviewView {
        access_review: review,
        report: issued.map(|(_, r)| r),
        decisions,
        addresses,
    })
    .into_response())
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

/// Fetch an access review's signed report
///
/// The signed report, byte for byte as issued (JSON `{report, signature}`), to verify offline
/// against `/.well-known/docket-keys.json`. Capability `audit.read`.
#[utoipa::path(
    get,
    path = "/v1/access-reviews/{id}/report",
    tag = "compliance",
    params(("id" = String, Path, description = "The review's id")),
    responses(
        (status = 200, description = "The signed report as issued", content_type = "application/json", body = SignedReport),
        (status = 404, description = "`not_found`: no such access review of this tenant", body = crate::openapi::ErrorBody),
        (status = 409, description = "`review_not_issued`: the review's report is not issued yet", body = crate::openapi::ErrorBody),
    )
)]
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

/// A decision on one finding.
/// What a decision does with a finding's access.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum DecisionName {
    Keep,
    Revoke,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DecisionItem {
    /// The finding, as the report names it.
    finding_id: String,
    /// `keep` or `revoke`.
    #[schema(value_type = DecisionName)]
    decision: String,
    /// Why: required to keep (1 to 1000 characters), an optional note to revoke.
    reason: Option<String>,
}

/// Decisions on a review's findings.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DecisionsBody {
    /// 1 to 1000 decisions, applied together or not at all.
    #[schema(min_items = 1, max_items = 1000)]
    decisions: Vec<DecisionItem>,
}

/// Decide findings of an access review
///
/// Keeps or revokes the access each finding names (a revoke disables the user or revokes
/// the key at once); every decision is audited (`access_review.keep` /
/// `access_review.revoke`) and none is changed later. All or nothing: one refused decision
/// refuses the request. Capability `tenant.manage`.
#[utoipa::path(
    post,
    path = "/v1/access-reviews/{id}/decisions",
    tag = "compliance",
    params(("id" = String, Path, description = "The review's id")),
    request_body = DecisionsBody,
    responses(
        (status = 200, description = "The decisions applied", body = AppliedDecisions),
        (status = 400, description = "`invalid_decisions` (not 1 to 1000 decisions), `invalid_decision` (neither `keep` nor `revoke`), `unknown_finding` (not in this review), `reason_required` (a keep without a reason, or a reason over 1000 characters)", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: no such access review of this tenant", body = crate::openapi::ErrorBody),
        (status = 409, description = "`review_not_open` (not issued yet, or completed), `already_decided` (decisions are not changed), `cannot_modify_self` (revoking your own access), `last_owner` (revoking the last active owner)", body = crate::openapi::ErrorBody),
    )
)]
async fn decisions(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecisionsBody>,
) -> Result<Json<AppliedDecisions>, ApiError> {
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
    Ok(Json(AppliedDecisions { applied }))
}

/// Complete an access review
///
/// Once every finding is decided; audited (`access_review.completed`). Capability
/// `tenant.manage`.
#[utoipa::path(
    post,
    path = "/v1/access-reviews/{id}/complete",
    tag = "compliance",
    params(("id" = String, Path, description = "The review's id")),
    responses(
        (status = 200, description = "The completed review", body = CompletedReview),
        (status = 404, description = "`not_found`: no such access review of this tenant", body = crate::openapi::ErrorBody),
        (status = 409, description = "`review_not_open` (not issued yet, or completed already), `findings_undecided` (decide every finding first)", body = crate::openapi::ErrorBody),
    )
)]
async fn complete(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<CompletedReview>, ApiError> {
    auth.require(&state, Capability::TenantManage).await?;
    let id = parse_id(&id, "access review")?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let ev = auth.event("access_review.completed", Outcome::Allowed);
    decide::complete(&mut tx, &state.auditor, id, &auth.actor_label(), ev)
        .await
        .map_err(refused)?;
    let review = reviews::get(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Json(CompletedReview {
        access_review: review,
    }))
}

/// List overdue access reviews
///
/// Open reviews of every tenant issued more than the due period (30 days) ago, oldest
/// first. Audited (`ops.access_reviews.list`).
#[utoipa::path(
    get,
    path = "/ops/access-reviews",
    tag = "ops",
    responses((status = 200, description = "Open reviews past their due date", body = OverdueReviews))
)]
async fn ops_overdue(
    State(state): State<AppState>,
    op: OperatorAuth,
) -> Result<Json<OverdueReviews>, ApiError> {
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
    let overdue = rows
        .into_iter()
        .map(
            |(tenant_id, tenant_slug, review_id, quarter, issued_at)| OverdueReview {
                tenant_id,
                tenant_slug,
                review_id,
                quarter,
                issued_at,
                days_open: (now - issued_at).num_days(),
            },
        )
        .collect();
    Ok(Json(OverdueReviews {
        overdue_after_days: OVERDUE_DAYS,
        overdue,
    }))
}
