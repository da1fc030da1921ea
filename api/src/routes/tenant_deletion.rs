//! Deleting the whole tenant. An owner (`deletions.request`): `POST /v1/deletions
//! {"scope": "tenant"}` (201, a one-time confirmation code; `"dry_run": true` counts per
//! store instead), `POST /v1/deletions/{id}/confirm {"confirmation_code"}` (202: the grace
//! period starts, the tenant is suspended, and the certificate token is handed over),
//! `POST /v1/deletions/{id}/cancel` during confirmation or the grace period. Whoever holds
//! the certificate token: `GET /v1/deletion-certificates/{id}` (the tenant's own
//! credentials are gone by then). Operators: `POST /ops/tenants/{id}/deletion {"reason"}`
//! (scheduled at once; `"dry_run": true` counts), `POST /ops/deletions/{id}/cancel`,
//! `GET /ops/deletions/{id}/certificate`. The sweep is the `delete` job's
//! (`platform::deletions::tenant_sweep`), queued by the calendar when the grace ends.

use crate::auth::{OperatorAuth, TenantAuth, TenantAuthDuringDeletion};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::routes::parse_id;
use crate::routes::tenant_deletion_views::{
    TenantDeletionCancelled, TenantDeletionDryRun, TenantDeletionRequested, TenantDeletionScheduled,
};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docket_platform::audit::{Event, Outcome};
use docket_platform::authz::Capability;
use docket_platform::db::TenantTx;
use docket_platform::deletions::certificate::SignedCertificate;
use docket_platform::deletions::tenant::{self, CERTIFICATE_TOKEN_PREFIX, TenantDeletionError};
use docket_platform::deletions::{self, plan};
use docket_platform::ids::TenantId;
use docket_platform::placement;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

/// The tenant-deletion routes (`POST /v1/deletions` is routed with the deletions' list).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(confirm))
        .routes(routes!(cancel))
        .routes(routes!(certificate_by_token))
        .routes(routes!(ops_request))
        .routes(routes!(ops_cancel))
        .routes(routes!(ops_certificate))
}

/// The one scope `POST /v1/deletions` deletes.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum ScopeName {
    Tenant,
}

/// `POST /v1/deletions` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    /// Must be `tenant`: the whole organisation (documents and users are deleted on their
    /// own routes).
    #[schema(value_type = ScopeName)]
    scope: String,
    /// `true`: count what would be removed, per store, and remove nothing.
    #[serde(default)]
    dry_run: bool,
}

/// `POST /v1/deletions/{id}/confirm` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// The one-time code `POST /v1/deletions` returned.
    confirmation_code: String,
}

/// `POST /ops/tenants/{id}/deletion` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpsBody {
    /// Why the tenant is deleted (required unless `dry_run`); audited.
    reason: Option<String>,
    /// `true`: count what would be removed, per store, and remove nothing.
    #[serde(default)]
    dry_run: bool,
}

/// A tenant deletion error as the API answers it.
fn refused(e: TenantDeletionError) -> ApiError {
    let msg = e.to_string();
    match e {
        TenantDeletionError::Db(d) => d.into(),
        TenantDeletionError::Pending(..) => ApiError::new(StatusCode::CONFLICT, "deletion_pending", msg),
        TenantDeletionError::NotFound => ApiError::not_found("deletion"),
        TenantDeletionError::WrongState(_) => ApiError::new(StatusCode::CONFLICT, "invalid_state", msg),
        TenantDeletionError::WrongCode => {
            ApiError::new(StatusCode::FORBIDDEN, "wrong_confirmation_code", msg)
        }
        TenantDeletionError::Expired => ApiError::new(StatusCode::GONE, "confirmation_expired", msg),
        TenantDeletionError::TenantState(_) => ApiError::new(StatusCode::CONFLICT, "invalid_state", msg),
    }
}

/// The dry run of deleting the tenant of `tx`.
async fn dry_run(state: &AppState, tx: &mut TenantTx) -> Result<TenantDeletionDryRun, ApiError> {
    let tier = placement::read(tx).await?.current;
    let stores = plan::tenant(tx, &state.blobs, &state.queue, tier.as_str())
        .await
        .map_err(ApiError::internal)?;
    Ok(TenantDeletionDryRun::new(stores))
}

/// Ask to delete the whole organisation
///
/// `POST /v1/deletions`: the whole tenant (owner only, capability `deletions.request`).
/// Documents and users are deleted on their own routes. Answers 201 with a one-time
/// confirmation code: nothing happens until the code is confirmed at `confirm_url`.
/// Audited (`deletions.requested`). With `"dry_run": true`, 200 with the counts per store,
/// and nothing is recorded.
#[utoipa::path(
    post,
    path = "/v1/deletions",
    tag = "compliance",
    request_body = RequestBody,
    responses(
        (status = 200, description = "Dry run: what would be removed, per store", body = TenantDeletionDryRun),
        (status = 201, description = "Recorded, awaiting confirmation with the one-time code", body = TenantDeletionRequested),
        (status = 400, description = "`unsupported_scope`: `scope` is not `tenant`", body = crate::openapi::ErrorBody),
        (status = 409, description = "`deletion_pending` (a deletion of the organisation is already under way), `invalid_state` (the organisation is neither active nor suspended)", body = crate::openapi::ErrorBody),
    )
)]
pub async fn request(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(body): ApiJson<RequestBody>,
) -> Result<Response, ApiError> {
    if body.scope != "tenant" {
        return Err(ApiError::bad_request(
            "unsupported_scope",
            "POST /v1/deletions deletes the whole organisation (\"scope\": \"tenant\"); delete a document with \
             DELETE /v1/documents/{id} and a user's personal data with DELETE /v1/users/{id}?erase=true",
        ));
    }
    auth.require(&state, Capability::DeletionsRequest).await?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    if body.dry_run {
        let plan = dry_run(&state, &mut tx).await?;
        tx.commit().await?;
        return Ok((StatusCode::OK, Json(plan)).into_response());
    }
    let asked = tenant::request(&mut tx, &auth.actor_label())
        .await
        .map_err(refused)?;
    let ev = auth
        .event("deletions.requested", Outcome::Allowed)
        .target(format!("deletion:{}", asked.deletion))
        .detail("scope", "tenant");
    commit_audited(&state, tx, ev).await?;
    let grace = state.config.billing.tenant_deletion_grace.as_secs();
    Ok((
        StatusCode::CREATED,
        Json(TenantDeletionRequested::new(asked, grace)),
    )
        .into_response())
}

/// Confirm the organisation's deletion
///
/// With the one-time code: the grace period starts, the organisation is suspended (only the
/// deletion's own routes answer) and the deletion is swept when the grace ends. Capability
/// `deletions.request`; audited (`deletions.confirmed`; a wrong or expired code is audited as
/// refused). Answers 202 with the certificate token (`dct_…`, shown once: it fetches the
/// certificate at `GET /v1/deletion-certificates/{id}` once the organisation's credentials
/// are gone).
#[utoipa::path(
    post,
    path = "/v1/deletions/{id}/confirm",
    tag = "compliance",
    params(("id" = String, Path, description = "The deletion's id")),
    request_body = ConfirmBody,
    responses(
        (status = 202, description = "Scheduled: the grace period has started", body = TenantDeletionScheduled),
        (status = 403, description = "`wrong_confirmation_code`: the code does not match", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: no such tenant deletion", body = crate::openapi::ErrorBody),
        (status = 409, description = "`invalid_state`: the deletion is not awaiting confirmation, or the organisation is neither active nor suspended", body = crate::openapi::ErrorBody),
        (status = 410, description = "`confirmation_expired`: the code expired; ask for the deletion again", body = crate::openapi::ErrorBody),
    )
)]
async fn confirm(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<(StatusCode, Json<TenantDeletionScheduled>), ApiError> {
    auth.require(&state, Capability::DeletionsRequest).await?;
    let id = parse_id(&id, "deletion")?;
    let grace = state.config.billing.tenant_deletion_grace;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let scheduled = match tenant::confirm(&mut tx, id, &body.confirmation_code, grace).await {
        Ok(s) => s,
        Err(e @ (TenantDeletionError::WrongCode | TenantDeletionError::Expired)) => {
            drop(tx);
            let api = refused(e);
            return Err(auth
                .refuse(&state, "deletions.confirm", api.status, api.code, api.message)
                .await);
        }
        Err(e) => return Err(refused(e)),
    };
    let ev = auth
        .event("deletions.confirmed", Outcome::Allowed)
        .target(format!("deletion:{id}"))
        .detail("scope", "tenant")
        .detail("grace_ends_at", scheduled.grace_ends_at.to_rfc3339());
    commit_audited(&state, tx, ev).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(TenantDeletionScheduled::from(scheduled)),
    ))
}

/// Cancel the organisation's deletion
///
/// While it awaits confirmation or is in its grace period (nothing was removed): the
/// organisation gets back the status it had. Capability `deletions.request`; answers during
/// the grace period; audited (`deletions.cancelled`).
#[utoipa::path(
    post,
    path = "/v1/deletions/{id}/cancel",
    tag = "compliance",
    params(("id" = String, Path, description = "The deletion's id")),
    responses(
        (status = 200, description = "Cancelled, with the organisation's restored status", body = TenantDeletionCancelled),
        (status = 404, description = "`not_found`: no such tenant deletion", body = crate::openapi::ErrorBody),
        (status = 409, description = "`invalid_state`: the deletion is past awaiting confirmation and its grace period (queued, running, done, …)", body = crate::openapi::ErrorBody),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    TenantAuthDuringDeletion(auth): TenantAuthDuringDeletion,
    Path(id): Path<String>,
) -> Result<Json<TenantDeletionCancelled>, ApiError> {
    auth.require(&state, Capability::DeletionsRequest).await?;
    let id = parse_id(&id, "deletion")?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let restored = tenant::cancel(&mut tx, id).await.map_err(refused)?;
    let ev = auth
        .event("deletions.cancelled", Outcome::Allowed)
        .target(format!("deletion:{id}"))
        .detail("scope", "tenant");
    commit_audited(&state, tx, ev).await?;
    Ok(Json(TenantDeletionCancelled::new(id, restored)))
}

/// The certificate token from `Authorization: Bearer dct_…`.
fn certificate_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ")
        .filter(|t| t.starts_with(CERTIFICATE_TOKEN_PREFIX))
}

/// Fetch an organisation's deletion certificate with its token
///
/// For whoever holds the certificate token the confirmation returned, sent as
/// `Authorization: Bearer dct_…` (the organisation's own credentials are gone by then). The
/// signed certificate exactly as issued (JSON), once the deletion is done.
#[utoipa::path(
    get,
    path = "/v1/deletion-certificates/{id}",
    tag = "compliance",
    params(("id" = String, Path, description = "The tenant deletion's id")),
    responses(
        (status = 200, description = "The signed certificate, byte for byte as issued", content_type = "application/json", body = SignedCertificate),
        (status = 401, description = "`missing_credentials` (no `Authorization: Bearer dct_…`), `invalid_token` (the token does not match this deletion, or there is no such tenant deletion)", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: the id is not a deletion id", body = crate::openapi::ErrorBody),
        (status = 409, description = "`certificate_not_ready`: the deletion has not finished", body = crate::openapi::ErrorBody),
    )
)]
async fn certificate_by_token(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(token) = certificate_token(&headers) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_credentials",
            "send `Authorization: Bearer <certificate token>` (the dct_… token the confirmation returned)",
        ));
    };
    let id = parse_id(&id, "deletion")?;
    match tenant::certificate_for_token(&state.control, id, token).await {
        Ok(Some(text)) => Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response()),
        Ok(None) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "certificate_not_ready",
            "the deletion has not finished; its certificate is issued when it is done",
        )),
        // An unknown deletion and a wrong token answer alike.
        Err(TenantDeletionError::NotFound) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the certificate token does not match this deletion",
        )),
        Err(e) => Err(refused(e)),
    }
}

/// Records `ev` on the tenant's chain in `tx` and commits: the change and its event, or
/// neither.
async fn commit_audited(state: &AppState, mut tx: TenantTx, ev: Event) -> Result<(), ApiError> {
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(())
}

/// Records an operator's change in `tx` on both chains and commits.
async fn commit_ops(state: &AppState, mut tx: TenantTx, ev: Event) -> Result<(), ApiError> {
    state
        .auditor
        .operator_change(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(())
}

/// Delete a tenant
///
/// An operator's tenant deletion: scheduled at once (the request, with its reason, is the
/// confirmation), with the same grace period and cancel as an owner's; audited on both
/// chains (`ops.tenants.delete`). Answers 202 as an owner's confirmation does. With
/// `"dry_run": true`, 200 with the counts per store, and nothing is recorded.
#[utoipa::path(
    post,
    path = "/ops/tenants/{id}/deletion",
    tag = "ops",
    params(("id" = String, Path, description = "The tenant's id")),
    request_body = OpsBody,
    responses(
        (status = 200, description = "Dry run: what would be removed, per store", body = TenantDeletionDryRun),
        (status = 202, description = "Scheduled: the grace period has started", body = TenantDeletionScheduled),
        (status = 400, description = "`reason_required`: no (or a blank) `reason`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: no such tenant", body = crate::openapi::ErrorBody),
        (status = 409, description = "`deletion_pending` (a deletion of the tenant is already under way), `invalid_state` (the tenant is neither active nor suspended)", body = crate::openapi::ErrorBody),
    )
)]
async fn ops_request(
    State(state): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<OpsBody>,
) -> Result<Response, ApiError> {
    let t = TenantId(parse_id(&id, "tenant")?);
    let mut tx = state.control.begin_tenant(t).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)")
        .bind(t)
        .fetch_one(tx.conn())
        .await?;
    if !exists {
        return Err(ApiError::not_found("tenant"));
    }
    if body.dry_run {
        let plan = dry_run(&state, &mut tx).await?;
        tx.commit().await?;
        return Ok((StatusCode::OK, Json(plan)).into_response());
    }
    let Some(reason) = body.reason.filter(|r| !r.trim().is_empty()) else {
        return Err(ApiError::bad_request(
            "reason_required",
            "an operator's tenant deletion needs a reason",
        ));
    };
    let grace = state.config.billing.tenant_deletion_grace;
    let label = format!("operator:{}", op.operator);
    let scheduled = tenant::schedule_by_operator(&mut tx, &label, &reason, grace)
        .await
        .map_err(refused)?;
    let ev = op
        .event("ops.tenants.delete", Outcome::Allowed)
        .target(format!("deletion:{}", scheduled.deletion))
        .detail("tenant", t.to_string())
        .detail("reason", reason)
        .detail("grace_ends_at", scheduled.grace_ends_at.to_rfc3339());
    commit_ops(&state, tx, ev).await?;
    let scheduled = TenantDeletionScheduled::from(scheduled);
    Ok((StatusCode::ACCEPTED, Json(scheduled)).into_response())
}

/// The tenant a deletion belongs to (operators name deletions by id alone).
async fn tenant_of(state: &AppState, id: uuid::Uuid) -> Result<TenantId, ApiError> {
    sqlx::query_scalar("SELECT tenant_id FROM deletions WHERE id = $1")
        .bind(id)
        .fetch_optional(state.control.pool())
        .await?
        .ok_or_else(|| ApiError::not_found("deletion"))
}

/// Cancel a tenant's deletion
///
/// While it awaits confirmation or is in its grace period: the tenant gets back the status
/// it had; audited on both chains (`ops.deletions.cancel`).
#[utoipa::path(
    post,
    path = "/ops/deletions/{id}/cancel",
    tag = "ops",
    params(("id" = String, Path, description = "The deletion's id")),
    responses(
        (status = 200, description = "Cancelled, with the tenant's restored status", body = TenantDeletionCancelled),
        (status = 404, description = "`not_found`: no such deletion, or it is not a tenant deletion", body = crate::openapi::ErrorBody),
        (status = 409, description = "`invalid_state`: the deletion is past awaiting confirmation and its grace period", body = crate::openapi::ErrorBody),
    )
)]
async fn ops_cancel(
    State(state): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
) -> Result<Json<TenantDeletionCancelled>, ApiError> {
    let id = parse_id(&id, "deletion")?;
    let t = tenant_of(&state, id).await?;
    let mut tx = state.control.begin_tenant(t).await?;
    let restored = tenant::cancel(&mut tx, id).await.map_err(refused)?;
    let ev = op
        .event("ops.deletions.cancel", Outcome::Allowed)
        .target(format!("deletion:{id}"))
        .detail("tenant", t.to_string());
    commit_ops(&state, tx, ev).await?;
    Ok(Json(TenantDeletionCancelled::new(id, restored)))
}

/// Fetch a deletion's certificate
///
/// Any tenant's deletion certificate exactly as issued (JSON), once done; audited
/// (`ops.deletions.certificate`).
#[utoipa::path(
    get,
    path = "/ops/deletions/{id}/certificate",
    tag = "ops",
    params(("id" = String, Path, description = "The deletion's id")),
    responses(
        (status = 200, description = "The signed certificate, byte for byte as issued", content_type = "application/json", body = SignedCertificate),
        (status = 404, description = "`not_found`: no such deletion", body = crate::openapi::ErrorBody),
        (status = 409, description = "`certificate_not_ready`: the deletion has no certificate (not done yet, or it did not end clean)", body = crate::openapi::ErrorBody),
    )
)]
async fn ops_certificate(
    State(state): State<AppState>,
    op: OperatorAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id, "deletion")?;
    let t = tenant_of(&state, id).await?;
    let mut tx = state.control.begin_tenant(t).await?;
    let text = deletions::certificate(&mut tx, id).await?;
    tx.commit().await?;
    state
        .auditor
        .platform(
            state.control.pool(),
            op.event("ops.deletions.certificate", Outcome::Allowed)
                .target(format!("deletion:{id}")),
        )
        .await
        .map_err(ApiError::internal)?;
    match text {
        Some(text) => Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response()),
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "certificate_not_ready",
            "the deletion has no certificate (not done yet, or it did not end clean)",
        )),
    }
}
