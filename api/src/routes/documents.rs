//! Documents: status, listing, and job records (uploading and retrying one: `uploads`;
//! deleting one: `deletions`).

use crate::auth::TenantAuth;
use crate::error::ApiError;
use crate::routes::{Page, parse_id};
use crate::state::AppState;
use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use chrono::{DateTime, Utc};
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use docket_platform::documents::{self, Document};
use docket_platform::ids::{DocumentId, JobId};
use docket_platform::jobs::record::{self, JobRecord};
use serde::{Deserialize, Serialize};
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

/// A document, its processing and its pipeline jobs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DocumentDetail {
    /// The document's id.
    id: DocumentId,
    /// The name given at upload (display only).
    filename: String,
    /// The MIME type decided from the content.
    content_type: String,
    /// Size in bytes.
    bytes: i64,
    /// Hex SHA-256 of the original.
    sha256: String,
    /// `queued`, `processing`, `ready`, `failed`, `cancelled` or `deleting`.
    status: String,
    /// The current or last stage: `parse`, `chunk`, `embed` or `index`; null before the
    /// first.
    stage: Option<String>,
    /// Pages, once parsed.
    pages: Option<i32>,
    /// Chunks, once chunked.
    chunks: Option<i32>,
    /// Why it failed; null unless it did.
    error: Option<DocumentError>,
    /// Uploaded.
    created_at: DateTime<Utc>,
    /// Last change.
    updated_at: DateTime<Utc>,
    /// Its pipeline jobs.
    stages: Vec<DocumentStage>,
}

/// Why a document failed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DocumentError {
    /// Machine-readable code.
    code: String,
    /// A sentence a person understands.
    message: Option<String>,
}

/// One pipeline job of a document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DocumentStage {
    /// The stage: `parse`, `chunk`, `embed` or `index`.
    name: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    status: String,
    /// First started.
    started_at: Option<DateTime<Utc>>,
    /// Ended.
    finished_at: Option<DateTime<Utc>>,
    /// Attempts started so far.
    attempts: i32,
    /// The job (`GET /v1/jobs/{id}`).
    job_id: JobId,
}

/// Show a document and its processing
///
/// The document's status and pipeline stages; audited (`documents.read`). `error` is null
/// unless the document failed; `stages` lists its jobs.
#[utoipa::path(
    get,
    path = "/v1/documents/{id}",
    tag = "documents",
    params(("id" = String, Path, description = "The document's id")),
    responses((status = 200, description = "The document", body = DocumentDetail))
)]
async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<DocumentDetail>, ApiError> {
    auth.require(&state, Capability::DocumentsRead).await?;
    let id = DocumentId(parse_id(&id, "document")?);
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let d = documents::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("document"))?;
    let stages: Vec<DocumentStage> = record::for_document(&mut tx, id)
        .await?
        .into_iter()
        .map(|j| DocumentStage {
            name: j.kind,
            status: j.status,
            started_at: j.started_at,
            finished_at: j.finished_at,
            attempts: j.attempts,
            job_id: j.id,
        })
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
    let error = d.error_code.map(|code| DocumentError {
        code,
        message: d.error_message,
    });
    Ok(Json(DocumentDetail {
        id: d.id,
        filename: d.filename,
        content_type: d.content_type,
        bytes: d.byte_size,
        sha256: d.sha256,
        status: d.status,
        stage: d.stage,
        pages: d.pages,
        chunks: d.chunks,
        error,
        created_at: d.created_at,
        updated_at: d.updated_at,
        stages,
    }))
}

/// The statuses a listing can be filtered by (the contract's name for what `list` checks).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum DocumentStatusFilter {
    Queued,
    Processing,
    Ready,
    Failed,
    Cancelled,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only documents in this status: `queued`, `processing`, `ready`, `failed` or
    /// `cancelled`.
    #[param(value_type = Option<DocumentStatusFilter>, inline)]
    status: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(
        pattern = r"^-?[0-9]{1,16}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    cursor: Option<String>,
    /// Documents per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// A page of documents.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DocumentPage {
    /// The documents, newest first.
    documents: Vec<Document>,
    /// The `cursor` of the next page; null on the last page.
    next_cursor: Option<String>,
}

/// List the tenant's documents
///
/// Newest first, by cursor; audited (`documents.list`). `next_cursor` is null on the last
/// page.
#[utoipa::path(
    get,
    path = "/v1/documents",
    tag = "documents",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of documents", body = DocumentPage),
        (status = 400, description = "`invalid_query`, `invalid_limit`, `invalid_cursor`, `invalid_status`", body = crate::openapi::ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    auth: TenantAuth,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DocumentPage>, ApiError> {
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
    Ok(Json(DocumentPage {
        documents: docs,
        next_cursor: next,
    }))
}

/// Show a job
///
/// One pipeline job of a document: `kind` is `parse`, `chunk`, …; `status` is `queued`,
/// `running`, `succeeded`, `failed` or `cancelled`.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "documents",
    params(("id" = String, Path, description = "The job's id")),
    responses((status = 200, description = "The job", body = JobRecord))
)]
async fn job(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<JobRecord>, ApiError> {
    auth.require(&state, Capability::DocumentsRead).await?;
    let id = JobId(parse_id(&id, "job")?);
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let j = record::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
    Ok(Json(j))
}
