//! Bulk imports: `POST /v1/imports` (a zip archive as the body, or JSON naming a bucket
//! prefix with read-only credentials), `GET /v1/imports/{id}` (totals, progress, ETA, the
//! first failures), `GET /v1/imports/{id}/failures` (the rest, by cursor) and
//! `DELETE /v1/imports/{id}` (cancel what has not started). Plan feature `bulk_import`.

use crate::auth::{Gate, TenantAuth};
use crate::error::ApiError;
use crate::routes::{parse_id, within_plan_limits};
use crate::state::AppState;
use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use chrono::{DateTime, Utc};
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use docket_platform::ids::ImportId;
use docket_platform::imports::job::{self, ImportJob, archive_key};
use docket_platform::imports::progress::{self, Failure};
use docket_platform::imports::{self, NewImport, SourceKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::import_sources::{BucketImport, bucket_import, zip_import};

/// `/v1/imports`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // Archives stream to a temporary file under the plan's limit, not axum's 2 MB.
        .routes(routes!(create).layer(DefaultBodyLimit::disable()))
        .routes(routes!(show, cancel))
        .routes(routes!(failures))
}

/// Failures shown on the status page; the rest are paged.
const FIRST_FAILURES: i64 = 20;

/// An import, recorded and queued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ImportQueued {
    /// The import's id.
    import_id: ImportId,
    /// `unpacking`, the status every import starts in.
    status: String,
    /// The archive's files; 0 for a bucket until it is listed.
    total: i32,
    /// Where to follow it (`GET /v1/imports/{id}`).
    status_url: String,
}

/// An import's report: totals, progress, ETA and the first failures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ImportReport {
    /// The import's id.
    import_id: ImportId,
    /// `unpacking`, `running`, `done`, `cancelled` or `failed`.
    status: String,
    /// `zip`, `s3` or `folder`.
    source: String,
    /// What it reads: the bucket, prefix and endpoint, or the archive's name and size (never
    /// credentials).
    source_detail: Value,
    /// Started.
    started_at: DateTime<Utc>,
    /// Finished (done, cancelled or failed).
    finished_at: Option<DateTime<Utc>>,
    /// Totals and progress (`eta_seconds` is null before the first document finishes).
    #[serde(flatten)]
    progress: progress::Report,
    /// Documents waiting for the feeder.
    waiting_for_feeder: i64,
    /// Documents admitted to the job queue, not started yet.
    in_queue: i64,
    /// Why the source could not be read (status `failed`); null otherwise.
    error: Option<ImportError>,
    /// The first 20 failures, in entry order.
    failures: Vec<Failure>,
    /// The `cursor` of the rest (`GET /v1/imports/{id}/failures`); null when there are no
    /// more.
    failures_next_cursor: Option<String>,
}

/// Why an import's source could not be read.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ImportError {
    /// Machine-readable code.
    code: String,
    /// A sentence a person understands.
    message: Option<String>,
}

/// A page of an import's failures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ImportFailurePage {
    /// Failed entries and documents, in entry order.
    failures: Vec<Failure>,
    /// The `cursor` of the next page; null on the last page.
    next_cursor: Option<String>,
}

/// An import, cancelled.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ImportCancelled {
    /// The import's id.
    import_id: ImportId,
    /// Always `cancelled`.
    status: String,
    /// How many documents were cancelled (those already in the pipeline finish).
    cancelled: i64,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct CreateParams {
    /// The archive's name, shown in the import's `source_detail` (default `archive.zip`;
    /// ignored for a bucket import).
    filename: Option<String>,
}

/// Start a bulk import
///
/// From a zip archive sent as the body (`application/zip` or `application/octet-stream`),
/// or from a bucket prefix named in JSON with read-only credentials. The archive is
/// received up to the plan's import size, its central directory checked (entries, declared
/// size, zip bombs, unsafe paths, encryption) and stored encrypted; a bucket's fields and
/// endpoint are checked now and again when the worker connects. Needs the plan feature
/// `bulk_import`; counts against the plan's document and storage limits; audited
/// (`imports.create`).
#[utoipa::path(
    post,
    path = "/v1/imports",
    tag = "imports",
    params(CreateParams),
    request_body(
        content(
            (BucketImport = "application/json"),
            (String = "application/zip"),
            (String = "application/octet-stream"),
        ),
        description = "A zip archive as the raw body (`application/zip` or `application/octet-stream`), or JSON naming a bucket prefix (at most 64 KiB)"
    ),
    responses(
        (status = 202, description = "Recorded and queued", body = ImportQueued),
        (status = 400, description = "bucket: `invalid_body` (not the expected JSON shape), `invalid_text`, `invalid_source` (bucket, prefix, region or credentials), `invalid_endpoint`, `forbidden_endpoint` (not a public internet address), `destination_unreachable` (the endpoint's host does not resolve); archive: `upload_interrupted`, `empty_file`, `invalid_archive`, `zip_bomb`, `unsafe_path`, `encrypted_archive`, `empty_archive` (no files); either: `invalid_query`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`feature_not_in_plan` (`bulk_import`), `plan_limit`: the plan's document or storage limit is reached, or the archive's files would pass it", body = crate::openapi::ErrorBody),
        (status = 413, description = "`too_large` (the archive is larger than the plan's import limit, or the JSON than 64 KiB), `too_many_entries`, `archive_too_large` (it would unpack to more than the plan allows)", body = crate::openapi::ErrorBody),
        (status = 415, description = "`unsupported_media_type`: send `application/zip`, `application/octet-stream` or `application/json`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`queue_unavailable` (with `Retry-After`): the import could not be queued; it is marked failed, start it again", body = crate::openapi::ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    auth: TenantAuth,
    headers: HeaderMap,
    params: Result<Query<CreateParams>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> Result<(StatusCode, Json<ImportQueued>), ApiError> {
    auth.govern(
        &state,
        Gate::new(Capability::DocumentsWrite)
            .feature("bulk_import")
            .metered(),
    )
    .await?;
    let Query(params) = params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let ent = auth.entitlements.clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let id = ImportId::new_random();
    let new = if content_type.starts_with("application/json") {
        within_plan_limits(&state, &auth, &ent, 0, 0).await?;
        bucket_import(&state, id, req.into_body()).await?
    } else if content_type.starts_with("application/zip")
        || content_type.starts_with("application/octet-stream")
    {
        let name = params.filename.unwrap_or_else(|| "archive.zip".into());
        zip_import(&state, &auth, &ent, id, &name, req.into_body()).await?
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send a zip archive (Content-Type: application/zip) or JSON naming an S3 source",
        ));
    };
    let (detail, sealed, total, source) = new;
    let recorded = record(&state, &auth, id, detail, sealed, total, source).await;
    let import = match recorded {
        Ok(i) => i,
        Err(e) => {
            // Nothing stored may outlive a failed request: the archive has no import row
            // (and so no owner, no quota and no sweep) unless this succeeded.
            if source == SourceKind::Zip
                && let Err(d) = state.blobs.delete(auth.tenant_id(), &archive_key(id)).await
            {
                tracing::error!(error = %d, import = %id, "could not remove the archive of a failed import request");
            }
            return Err(e);
        }
    };
    let envelope = ImportJob {
        v: job::IMPORT_VERSION,
        tenant_id: auth.tenant_id(),
        import_id: id,
    };
    if let Err(e) = job::push(&state.queue, &envelope).await {
        tracing::error!(error = %e, import = %id, "could not queue the import job");
        let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
        imports::fail(
            &mut tx,
            id,
            "queue_unavailable",
            "the import could not be queued; start it again",
        )
        .await?;
        tx.commit().await?;
        return Err(ApiError::queue_unavailable("the import"));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(ImportQueued {
            import_id: import.id,
            status: import.status,
            total: import.total,
            status_url: format!("/v1/imports/{id}"),
        }),
    ))
}

/// Records the import and its audit event in one transaction.
async fn record(
    state: &AppState,
    auth: &TenantAuth,
    id: ImportId,
    detail: Value,
    sealed: Option<Vec<u8>>,
    total: i32,
    source: SourceKind,
) -> Result<imports::Import, ApiError> {
    let actor = auth.actor_label();
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let import = imports::insert(
        &mut tx,
        &NewImport {
            id,
            source,
            detail,
            sealed_credentials: sealed,
            total,
            actor: &actor,
            created_by: auth.user_id(),
            request_id: auth.ctx.request_id.as_deref(),
        },
    )
    .await?;
    let ev = auth
        .event("imports.create", Outcome::Allowed)
        .target(format!("import:{id}"))
        .detail("source", source.as_str())
        .detail("entries", total);
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(import)
}

async fn load(
    state: &AppState,
    auth: &TenantAuth,
    id: &str,
) -> Result<(imports::Import, progress::Counts), ApiError> {
    let id = ImportId(parse_id(id, "import")?);
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let import = imports::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("import"))?;
    let counts = progress::counts(&mut tx, id).await?;
    tx.commit().await?;
    Ok((import, counts))
}

/// Show an import's progress
///
/// Totals, progress, ETA and the first failures: `source_detail` names the bucket or the
/// archive (never credentials); `eta_seconds` is null before the first document finishes;
/// `failures` holds the first 20, and `failures_next_cursor` (null when there are no more)
/// pages the rest with `GET /v1/imports/{id}/failures`.
#[utoipa::path(
    get,
    path = "/v1/imports/{id}",
    tag = "imports",
    params(("id" = String, Path, description = "The import's id")),
    responses((status = 200, description = "The import's report", body = ImportReport))
)]
async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<ImportReport>, ApiError> {
    auth.require(&state, Capability::DocumentsRead).await?;
    let (import, counts) = load(&state, &auth, &id).await?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let first = progress::failures(&mut tx, import.id, None, FIRST_FAILURES).await?;
    tx.commit().await?;
    let next = (first.len() as i64 == FIRST_FAILURES).then(|| first.last().map(|f| f.entry.to_string()));
    let progress = progress::report(&import, &counts, Utc::now());
    let error = import.error_code.map(|code| ImportError {
        code,
        message: import.error_message,
    });
    Ok(Json(ImportReport {
        import_id: import.id,
        status: import.status,
        source: import.source,
        source_detail: import.source_detail,
        started_at: import.started_at,
        finished_at: import.finished_at,
        progress,
        waiting_for_feeder: counts.waiting,
        in_queue: counts.in_queue,
        error,
        failures: first,
        failures_next_cursor: next.flatten(),
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct FailureParams {
    /// The `next_cursor` (or `failures_next_cursor`) of the previous page.
    #[param(pattern = r"^[+-]?[0-9]{1,9}$")]
    cursor: Option<String>,
    /// Failures per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// List an import's failures
///
/// Failed entries and documents in entry order, by cursor; `next_cursor` is null on the
/// last page.
#[utoipa::path(
    get,
    path = "/v1/imports/{id}/failures",
    tag = "imports",
    params(("id" = String, Path, description = "The import's id"), FailureParams),
    responses(
        (status = 200, description = "A page of failures", body = ImportFailurePage),
        (status = 400, description = "`invalid_query`, `invalid_limit`, `invalid_cursor`", body = crate::openapi::ErrorBody),
    )
)]
async fn failures(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    params: Result<Query<FailureParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ImportFailurePage>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    auth.require(&state, Capability::DocumentsRead).await?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", "limit must be 1 to 500"));
    }
    let after = match p.cursor.as_deref() {
        None => None,
        Some(c) => Some(c.parse::<i32>().map_err(|_| {
            ApiError::bad_request("invalid_cursor", "the cursor is not one this API returned")
        })?),
    };
    let id = ImportId(parse_id(&id, "import")?);
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    imports::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("import"))?;
    let page = progress::failures(&mut tx, id, after, limit).await?;
    tx.commit().await?;
    let next = (page.len() as i64 == limit).then(|| page.last().map(|f| f.entry.to_string()));
    Ok(Json(ImportFailurePage {
        failures: page,
        next_cursor: next.flatten(),
    }))
}

/// Cancel an import
///
/// Cancels what has not started: documents still waiting become `cancelled`; documents
/// already in the pipeline finish. Audited (`imports.cancel`). Answers `status: "cancelled"`
/// and how many documents were cancelled.
#[utoipa::path(
    delete,
    path = "/v1/imports/{id}",
    tag = "imports",
    params(("id" = String, Path, description = "The import's id")),
    responses(
        (status = 200, description = "Cancelled", body = ImportCancelled),
        (status = 409, description = "`import_finished`: the import is already done, cancelled or failed", body = crate::openapi::ErrorBody),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<ImportCancelled>, ApiError> {
    auth.require(&state, Capability::DocumentsWrite).await?;
    let id = ImportId(parse_id(&id, "import")?);
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let import = imports::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("import"))?;
    let Some(cancelled) = imports::cancel(&mut tx, id).await? else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "import_finished",
            format!("the import is already {}; nothing to cancel", import.status),
        ));
    };
    let ev = auth
        .event("imports.cancel", Outcome::Allowed)
        .target(format!("import:{id}"))
        .detail("cancelled", cancelled);
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(ImportCancelled {
        import_id: id,
        status: "cancelled".into(),
        cancelled,
    }))
}
