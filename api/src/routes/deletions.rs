//! Deletions: `DELETE /v1/documents/{id}` (capability `documents.write`; owners and admins
//! may delete any document, members only documents they uploaded themselves;
//! `?dry_run=true` returns what would be removed, per store, and removes nothing),
//! `GET /v1/deletions`, `GET /v1/deletions/{id}` (status, counts per store, residue found;
//! also while the tenant is in its deletion's grace period),
//! `GET /v1/deletions/{id}/certificate` (the signed certificate, once done); operators:
//! `GET /ops/deletions` (every tenant's, subjects hashed). The `delete`
//! job does the sweep (`platform::deletions`). A user's personal data is erased at once
//! (`DELETE /v1/users/{id}?erase=true`, routed with the users: [`erase_user`]).

use crate::auth::{Gate, OperatorAuth, TenantAuth, TenantAuthDuringDeletion};
use crate::error::ApiError;
use crate::routes::parse_id;
use crate::routes::users::UserRemoval;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use docket_platform::audit::Outcome;
use docket_platform::authz::{Capability, Role};
use docket_platform::deletions::certificate::SignedCertificate;
use docket_platform::deletions::job::{self, DeleteJob};
use docket_platform::deletions::user::{self, Erased};
use docket_platform::deletions::{self, Deletion, DeletionScope, DeletionStatus, plan};
use docket_platform::identity::users;
use docket_platform::ids::{DocumentId, UserId};
use docket_platform::placement;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::deletions_views::{
    DeletionList, DeletionQueued, DocumentDeletionPlan, OperatorDeletion, OperatorDeletionList, UserErasure,
    UserErasurePlan,
};

/// `/v1/deletions…` (the `DELETE` on a document is routed with the document's routes).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, super::tenant_deletion::request))
        .routes(routes!(one))
        .routes(routes!(certificate))
        .routes(routes!(ops_list))
}

/// List every tenant's deletions
///
/// `GET /ops/deletions`: every tenant's deletions (status, counts, residue found), for
/// operators, each with its `tenant_id`; subjects only hashed, as everywhere. Audited
/// (`ops.deletions.list`).
#[utoipa::path(
    get,
    path = "/ops/deletions",
    tag = "ops",
    responses((status = 200, description = "Every tenant's deletions", body = OperatorDeletionList))
)]
async fn ops_list(
    State(state): State<AppState>,
    op: OperatorAuth,
) -> Result<Json<OperatorDeletionList>, ApiError> {
    let all = deletions::list_all(&state.control).await?;
    state
        .auditor
        .platform(
            state.control.pool(),
            op.event("ops.deletions.list", Outcome::Allowed),
        )
        .await
        .map_err(ApiError::internal)?;
    let deletions = all
        .into_iter()
        .map(|(tenant_id, deletion)| OperatorDeletion { tenant_id, deletion })
        .collect();
    Ok(Json(OperatorDeletionList { deletions }))
}

/// `?dry_run=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// `true`: say what would be removed, per store, and remove nothing.
    #[serde(default)]
    dry_run: bool,
}

/// Delete a document
///
/// `DELETE /v1/documents/{id}[?dry_run=true]`. Capability `documents.write`; owners and
/// admins may delete any document, members only documents they uploaded themselves. The
/// document answers nothing from the moment it is marked; the `delete` job removes it from
/// every store, checks for residue and issues a signed certificate. Audited
/// (`deletions.requested`). Answers 202 with the queued deletion (a second request while it
/// is being deleted answers the same deletion); with `dry_run=true`, 200 with the counts per
/// store, and nothing is removed.
#[utoipa::path(
    delete,
    path = "/v1/documents/{id}",
    tag = "documents",
    params(("id" = String, Path, description = "The document's id"), DeleteQuery),
    responses(
        (status = 200, description = "Dry run: what would be removed, per store", body = DocumentDeletionPlan),
        (status = 202, description = "The deletion is queued", body = DeletionQueued),
        (status = 400, description = "`invalid_query`: an unknown parameter, or `dry_run` is not a boolean", body = crate::openapi::ErrorBody),
        (status = 403, description = "`not_document_owner`: a member may delete only documents they uploaded", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: no such document of this tenant", body = crate::openapi::ErrorBody),
    )
)]
pub async fn delete_document(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    auth.govern(&state, Gate::new(Capability::DocumentsWrite)).await?;
    let d = DocumentId(parse_id(&id, "document")?);
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    // Locked: two requests at once make one deletion (the second sees it `deleting`).
    let row: Option<(String, Option<uuid::Uuid>)> =
        sqlx::query_as("SELECT status, created_by FROM documents WHERE id = $1 FOR UPDATE")
            .bind(d)
            .fetch_optional(tx.conn())
            .await?;
    let Some((status, created_by)) = row else {
        return Err(ApiError::not_found("document"));
    };
    // Members delete only what they uploaded themselves; owners and admins anything.
    let own = created_by.is_some() && created_by == auth.user_id().map(|u| u.0);
    if !matches!(auth.role, Role::Owner | Role::Admin) && !own {
        tx.commit().await?;
        return Err(auth
            .refuse(
                &state,
                "deletions.request",
                StatusCode::FORBIDDEN,
                "not_document_owner",
                "only owners, admins and the member who uploaded a document may delete it",
            )
            .await);
    }
    if q.dry_run {
        let tier = placement::read(&mut tx).await?.current;
        let stores = plan::document(&mut tx, &state.blobs, &state.queue, tier.as_str(), d)
            .await
            .map_err(ApiError::internal)?;
        tx.commit().await?;
        let dry_run = DocumentDeletionPlan {
            dry_run: true,
            scope: DeletionScope::Document,
            document_id: d,
            stores,
        };
        return Ok((StatusCode::OK, Json(dry_run)).into_response());
    }
    if status == "deleting"
        && let Some(existing) = deletions::pending_for(&mut tx, d.as_uuid()).await?
    {
        tx.commit().await?;
        return Ok(accepted(existing).into_response());
    }
    // Marked first: from now on it answers nothing and no stage starts on it; it leaves
    // any import's feed.
    sqlx::query(
        "UPDATE documents SET status = 'deleting', feed_state = NULL, updated_at = now() WHERE id = $1",
    )
    .bind(d)
    .execute(tx.conn())
    .await?;
    let deletion = uuid::Uuid::new_v4();
    deletions::create(
        &mut tx,
        deletion,
        DeletionScope::Document,
        d.as_uuid(),
        &auth.actor_label(),
    )
    .await?;
    let ev = auth
        .event("deletions.requested", Outcome::Allowed)
        .target(format!("deletion:{deletion}"))
        .detail("scope", "document")
        .detail("document", d.to_string());
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    let job = DeleteJob {
        v: job::DELETE_VERSION,
        tenant_id: auth.tenant_id(),
        deletion_id: deletion,
    };
    // A push that fails is retried by the calendar (the deletion is recorded and the
    // document already answers nothing).
    if let Err(e) = job::push(&state.queue, &job, 0).await {
        tracing::warn!(deletion = %deletion, error = %e, "delete job not queued; the calendar queues it again");
    }
    Ok(accepted(deletion).into_response())
}

/// `DELETE /v1/users/{id}?erase=true[&dry_run=true]` (`users.manage`, checked by the
/// caller): the address, password hash, sessions and login throttle go in one
/// transaction, checked by a residue scan, with the certificate; the last active owner
/// cannot be erased.
pub async fn erase_user(
    state: &AppState,
    auth: &TenantAuth,
    id: UserId,
    dry_run: bool,
) -> Result<UserRemoval, ApiError> {
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    // The same rules as any change to a user, under the same lock (the dry run too).
    crate::routes::users::may_change(state, auth, &mut tx, id).await?;
    if dry_run {
        let counts = user::plan(&mut tx, &state.auditor, id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found("user"))?;
        tx.commit().await?;
        return Ok(UserRemoval::DryRun(UserErasurePlan {
            dry_run: true,
            scope: DeletionScope::User,
            user_id: id,
            stores: counts,
        }));
    }
    let erased = user::erase(
        &mut tx,
        &state.auditor,
        &state.keys,
        &state.blobs,
        id,
        &auth.actor_label(),
    )
    .await
    .map_err(ApiError::internal)?;
    let (deletion, sha) = match erased {
        Erased::NotFound => return Err(ApiError::not_found("user")),
        Erased::ExportRunning => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "export_in_progress",
                "an export is being written and copies every user; erase once it has ended",
            ));
        }
        Erased::Residue(scan) => {
            drop(tx); // rolls the erasure back: nothing half-done
            tracing::error!(stores = ?scan.found, "user erasure found the address left behind");
            record_residue(state, auth, id, &scan).await?;
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "residue_found",
                "the address was still found after erasing it; nothing was changed and operators were alerted",
            ));
        }
        Erased::Done {
            deletion,
            certificate_sha256,
        } => (deletion, certificate_sha256),
    };
    if users::active_owner_count(&mut tx)
        .await
        .map_err(ApiError::internal)?
        == 0
    {
        drop(tx);
        return Err(auth
            .refuse(
                state,
                "users.erase",
                StatusCode::CONFLICT,
                "last_owner",
                "the organisation must keep at least one active owner",
            )
            .await);
    }
    let ev = auth
        .event("deletions.requested", Outcome::Allowed)
        .target(format!("deletion:{deletion}"))
        .detail("scope", "user");
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(UserRemoval::Erased(UserErasure {
        deletion_id: deletion,
        status: DeletionStatus::Done,
        certificate_sha256: sha,
        status_url: format!("/v1/deletions/{deletion}"),
        certificate_url: format!("/v1/deletions/{deletion}/certificate"),
    }))
}

/// Records an erasure that found residue (rolled back) as a `residue_found` deletion, so
/// `/metrics` counts it for operators.
async fn record_residue(
    state: &AppState,
    auth: &TenantAuth,
    id: UserId,
    scan: &deletions::residue::Scan,
) -> Result<(), ApiError> {
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    sqlx::query(
        "INSERT INTO deletions (id, tenant_id, scope, target_sha256, status, requested_by, residue,
                                error_code, error_message, attempts, started_at, finished_at)
         VALUES ($1, $2, 'user', $3, 'residue_found', $4, $5, 'residue_found',
                 'the address was still found after erasing it; the erasure was rolled back', 1, now(), now())",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(auth.tenant_id())
    .bind(deletions::subject_sha256("user", id.0))
    .bind(auth.actor_label())
    .bind(serde_json::to_value(&scan.found).unwrap_or_default())
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(())
}

fn accepted(id: uuid::Uuid) -> (StatusCode, Json<DeletionQueued>) {
    (
        StatusCode::ACCEPTED,
        Json(DeletionQueued {
            deletion_id: id,
            status: DeletionStatus::Queued,
            status_url: format!("/v1/deletions/{id}"),
            certificate_url: format!("/v1/deletions/{id}/certificate"),
        }),
    )
}

/// List the tenant's deletions
///
/// The tenant's latest 200 deletions (documents, users, the tenant), newest first, subjects
/// only hashed. Capability `documents.write`; also answers while the tenant is in its
/// deletion's grace period.
#[utoipa::path(
    get,
    path = "/v1/deletions",
    tag = "compliance",
    responses((status = 200, description = "The tenant's deletions, newest first", body = DeletionList))
)]
async fn list(
    State(state): State<AppState>,
    TenantAuthDuringDeletion(auth): TenantAuthDuringDeletion,
) -> Result<Json<DeletionList>, ApiError> {
    auth.require(&state, Capability::DocumentsWrite).await?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let all = deletions::list(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(DeletionList { deletions: all }))
}

/// Show a deletion
///
/// Its status, counts per store and residue found. Capability `documents.write`; also
/// answers while the tenant is in its deletion's grace period.
#[utoipa::path(
    get,
    path = "/v1/deletions/{id}",
    tag = "compliance",
    params(("id" = String, Path, description = "The deletion's id")),
    responses(
        (status = 200, description = "The deletion", body = Deletion),
        (status = 404, description = "`not_found`: no such deletion of this tenant", body = crate::openapi::ErrorBody),
    )
)]
async fn one(
    State(state): State<AppState>,
    TenantAuthDuringDeletion(auth): TenantAuthDuringDeletion,
    Path(id): Path<String>,
) -> Result<Json<Deletion>, ApiError> {
    auth.require(&state, Capability::DocumentsWrite).await?;
    let id = parse_id(&id, "deletion")?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let d = deletions::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("deletion"))?;
    tx.commit().await?;
    Ok(Json(d))
}

/// Fetch a deletion's certificate
///
/// The signed deletion certificate exactly as issued (JSON, to verify offline against
/// `/.well-known/docket-keys.json`), once the deletion is done. Capability
/// `documents.write`.
#[utoipa::path(
    get,
    path = "/v1/deletions/{id}/certificate",
    tag = "compliance",
    params(("id" = String, Path, description = "The deletion's id")),
    responses(
        (status = 200, description = "The signed certificate, byte for byte as issued", content_type = "application/json", body = SignedCertificate),
        (status = 404, description = "`not_found`: no such deletion of this tenant", body = crate::openapi::ErrorBody),
        (status = 409, description = "`certificate_not_ready`: the deletion is not done; its certificate is issued when it is", body = crate::openapi::ErrorBody),
    )
)]
async fn certificate(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    auth.require(&state, Capability::DocumentsWrite).await?;
    let id = parse_id(&id, "deletion")?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let Some(d) = deletions::get(&mut tx, id).await? else {
        return Err(ApiError::not_found("deletion"));
    };
    let text = deletions::certificate(&mut tx, id).await?;
    tx.commit().await?;
    match text {
        Some(text) => Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response()),
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "certificate_not_ready",
            format!(
                "the deletion is {}; its certificate is issued when it is done",
                d.status.as_str()
            ),
        )),
    }
}
