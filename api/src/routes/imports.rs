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
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use docket_platform::ids::ImportId;
use docket_platform::imports::job::{self, ImportJob, archive_key};
use docket_platform::imports::{self, NewImport, SourceKind, progress};
use serde::Deserialize;
use serde_json::{Value, json};
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
/// (`imports.create`). Answers `{import_id, status, total, status_url}` (`total`: the
/// archive's files, 0 for a bucket until it is listed).
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
        (status = 202, description = "Recorded and queued: `{import_id, status, total, status_url}`", body = serde_json::Value),
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
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
        Json(json!({
            "import_id": import.id, "status": import.status, "total": import.total,
            "status_url": format!("/v1/imports/{id}"),
        })),
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
/// Totals, progress, ETA and the first failures. Answers `{import_id, status, source,
/// source_detail, started_at, finished_at, total, queued, processing, ready, failed,
/// duplicates, cancelled, deleted, stalled, pages, chunks, eta_seconds,
/// documents_per_minute, waiting_for_feeder, in_queue, error, failures,
/// failures_next_cursor}`: `status` is `unpacking`, `running`, `done`, `cancelled` or
/// `failed`; `source` is `zip`, `s3` or `folder`; `source_detail` names the bucket or the
/// archive (never credentials); `eta_seconds` is null before the first document finishes;
/// `error` is `{code, message}` or null; `failures` holds the first 20 as `{entry,
/// filename, code, message}`, and `failures_next_cursor` (null when there are no more) pages
/// the rest with `GET /v1/imports/{id}/failures`.
#[utoipa::path(
    get,
    path = "/v1/imports/{id}",
    tag = "imports",
    params(("id" = String, Path, description = "The import's id")),
    responses((status = 200, description = "The import's report", body = serde_json::Value))
)]
async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&state, Capability::DocumentsRead).await?;
    let (import, counts) = load(&state, &auth, &id).await?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let first = progress::failures(&mut tx, import.id, None, FIRST_FAILURES).await?;
    tx.commit().await?;
    let next = (first.len() as i64 == FIRST_FAILURES).then(|| first.last().map(|f| f.entry.to_string()));
    let report = progress::report(&import, &counts, chrono::Utc::now());
    let error = import
        .error_code
        .as_ref()
        .map(|c| json!({"code": c, "message": import.error_message}));
    let mut body = serde_json::to_value(&report).map_err(ApiError::internal)?;
    if let Some(o) = body.as_object_mut() {
        o.insert("import_id".into(), json!(import.id));
        o.insert("status".into(), json!(import.status));
        o.insert("source".into(), json!(import.source));
        o.insert("source_detail".into(), import.source_detail.clone());
        o.insert("started_at".into(), json!(import.started_at));
        o.insert("finished_at".into(), json!(import.finished_at));
        o.insert("waiting_for_feeder".into(), json!(counts.waiting));
        o.insert("in_queue".into(), json!(counts.in_queue));
        o.insert("error".into(), error.unwrap_or(Value::Null));
        o.insert("failures".into(), json!(first));
        o.insert("failures_next_cursor".into(), json!(next.flatten()));
    }
    Ok(Json(body))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct FailureParams {
    /// The `next_cursor` (or `failures_next_cursor`) of the previous page.
    cursor: Option<String>,
    /// Failures per page, 1 to 500 (default 50).
    limit: Option<i64>,
}

/// List an import's failures
///
/// Failed entries and documents in entry order, by cursor. Answers `{failures: [{entry,
/// filename, code, message}], next_cursor}`; `next_cursor` is null on the last page.
#[utoipa::path(
    get,
    path = "/v1/imports/{id}/failures",
    tag = "imports",
    params(("id" = String, Path, description = "The import's id"), FailureParams),
    responses(
        (status = 200, description = "A page of failures", body = serde_json::Value),
        (status = 400, description = "`invalid_query`, `invalid_limit`, `invalid_cursor`", body = crate::openapi::ErrorBody),
    )
)]
async fn failures(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
    params: Result<Query<FailureParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({"failures": page, "next_cursor": next.flatten()})))
}

/// Cancel an import
///
/// Cancels what has not started: documents still waiting become `cancelled`; documents
/// already in the pipeline finish. Audited (`imports.cancel`). Answers `{import_id, status:
/// "cancelled", cancelled}` (`cancelled`: how many documents were cancelled).
#[utoipa::path(
    delete,
    path = "/v1/imports/{id}",
    tag = "imports",
    params(("id" = String, Path, description = "The import's id")),
    responses(
        (status = 200, description = "Cancelled: `{import_id, status, cancelled}`", body = serde_json::Value),
        (status = 409, description = "`import_finished`: the import is already done, cancelled or failed", body = crate::openapi::ErrorBody),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(
        json!({"import_id": id, "status": "cancelled", "cancelled": cancelled}),
    ))
}
