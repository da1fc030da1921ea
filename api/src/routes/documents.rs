//! Documents: status, listing, and job records (uploading and retrying one: `uploads`;
//! deleting one: `deletions`).

use crate::auth::TenantAuth;
use crate::error::ApiError;
use crate::routes::{Page, parse_id};
use crate::state::AppState;
use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use docket_platform::documents::{self};
use docket_platform::ids::{DocumentId, JobId};
use docket_platform::jobs::record;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// `/v1/documents`, `/v1/jobs`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // Uploads stream to object storage under our own limit, not axum's 2 MB default
        // (the listing reads no body, so lifting the limit on the path changes nothing for it).
        .routes(routes!(super::uploads::upload, list).layer(DefaultBodyLimit::disable()))
        .routes(routes!(show, super::deletions::delete_document))
        .routes(routes!(super::uploads::retry))
        .routes(routes!(job))
}

/// Show a document and its processing
///
/// The document's status and pipeline stages; audited (`documents.read`). Answers `{id,
/// filename, content_type, bytes, sha256, status, stage, pages, chunks, error, created_at,
/// updated_at, stages}`: `status` is `queued`, `processing`, `ready`, `failed`, `cancelled`
/// or `deleting`; `stage` the current or last of `parse`, `chunk`, `embed`, `index`; `error`
/// is `{code, message}` or null; `stages` lists its jobs as `{name, status, started_at,
/// finished_at, attempts, job_id}`.
#[utoipa::path(
    get,
    path = "/v1/documents/{id}",
    tag = "documents",
    params(("id" = String, Path, description = "The document's id")),
    responses((status = 200, description = "The document", body = serde_json::Value))
)]
async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&state, Capability::DocumentsRead).await?;
    let id = DocumentId(parse_id(&id, "document")?);
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let d = documents::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("document"))?;
    let stages: Vec<Value> = record::for_document(&mut tx, id)
        .await?
        .into_iter()
        .map(|j| json!({"name": j.kind, "status": j.status, "started_at": j.started_at, "finished_at": j.finished_at, "attempts": j.attempts, "job_id": j.id}))
        .collect();
    let ev = auth
        .event("documents.read", Outcome::Allowed)
        .target(format!("document:{id}"));
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    let error = d
        .error_code
        .as_ref()
        .map(|c| json!({"code": c, "message": d.error_message}));
    Ok(Json(json!({
        "id": d.id, "filename": d.filename, "content_type": d.content_type, "bytes": d.byte_size, "sha256": d.sha256,
        "status": d.status, "stage": d.stage, "pages": d.pages, "chunks": d.chunks, "error": error,
        "created_at": d.created_at, "updated_at": d.updated_at, "stages": stages,
    })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only documents in this status: `queued`, `processing`, `ready`, `failed` or
    /// `cancelled`.
    status: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Documents per page, 1 to 200 (default 50).
    limit: Option<i64>,
}

/// List the tenant's documents
///
/// Newest first, by cursor; audited (`documents.list`). Answers `{documents: [{id,
/// filename, content_type, byte_size, sha256, status, stage, pages, chunks, error_code,
/// error_message, created_at, updated_at}], next_cursor}`; `next_cursor` is null on the last
/// page.
#[utoipa::path(
    get,
    path = "/v1/documents",
    tag = "documents",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of documents", body = serde_json::Value),
        (status = 400, description = "`invalid_query`, `invalid_limit`, `invalid_cursor`, `invalid_status`", body = crate::openapi::ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    auth: TenantAuth,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    auth.require(&state, Capability::DocumentsRead).await?;
    let page = Page::parse(q.limit, q.cursor.as_deref())?;
    if let Some(s) = q.status.as_deref()
        && !["queued", "processing", "ready", "failed", "cancelled"].contains(&s)
    {
        return Err(ApiError::bad_request(
            "invalid_status",
            "status must be queued, processing, ready, failed or cancelled",
        ));
    }
    let after = page.after.map(|(at, id)| (at, DocumentId(id)));
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let docs = documents::list(&mut tx, q.status.as_deref(), after, page.limit).await?;
    let ev = auth
        .event("documents.list", Outcome::Allowed)
        .detail("count", docs.len());
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    let next = page.next(docs.len(), docs.last().map(|d| (d.created_at, d.id.as_uuid())));
    Ok(Json(json!({"documents": docs, "next_cursor": next})))
}

/// Show a job
///
/// One pipeline job of a document. Answers `{id, kind, target_id, status, attempts,
/// max_attempts, error_code, error_message, request_id, created_at, started_at,
/// finished_at}`: `kind` is `parse`, `chunk`, …; `status` is `queued`, `running`,
/// `succeeded`, `failed` or `cancelled`.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "documents",
    params(("id" = String, Path, description = "The job's id")),
    responses((status = 200, description = "The job", body = serde_json::Value))
)]
async fn job(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&state, Capability::DocumentsRead).await?;
    let id = JobId(parse_id(&id, "job")?);
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let j = record::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
    Ok(Json(serde_json::to_value(j).map_err(ApiError::internal)?))
}
