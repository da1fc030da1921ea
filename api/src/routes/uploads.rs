//! Uploading a document: streamed to encrypted storage under the plan's limits, checked for
//! its type, deduplicated by content (an `Idempotency-Key` replays the first answer), and
//! queued for the pipeline; and sending a failed document through it again.

use crate::auth::{Gate, TenantAuth};
use crate::error::ApiError;
use crate::routes::{parse_id, within_plan_limits};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use docket_platform::blobs::BlobError;
use docket_platform::documents::sniff::{SNIFF_LEN, sniff};
use docket_platform::documents::{self, Document, NewDocument};
use docket_platform::ids::DocumentId;
use docket_platform::jobs::{JobKind, Lane};
use docket_platform::tenant_keys;
use futures::stream::{self, BoxStream, StreamExt};
use serde::{Deserialize, Serialize};

type ByteStream<'a> = BoxStream<'a, Result<Bytes, String>>;

/// An upload's query string (public only because the documents router names the upload
/// handler, whose parameters it is).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The file's name (display only; its last path segment, up to 255 characters). Required
    /// for a raw body; for multipart, used when the `file` field names no file.
    #[param(min_length = 1)]
    filename: Option<String>,
}

fn clean_filename(name: &str) -> Result<String, ApiError> {
    // Display only: keep the last path segment, drop control characters.
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    if clean.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_filename",
            "the file name is empty",
        ));
    }
    Ok(clean)
}

/// The answer to an upload or a retry: the document and where to follow it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentAccepted {
    /// The document's id.
    document_id: DocumentId,
    /// Its status (`queued`, `processing`, `ready`, `failed`, `cancelled` or `deleting`):
    /// `queued` when stored or revived now; a duplicate's is whatever it is.
    status: String,
    /// Where to follow it (`GET /v1/documents/{id}`).
    status_url: String,
    /// Whether the tenant already had this content (or the `Idempotency-Key` was used for
    /// it): the answer names the existing document.
    duplicate: bool,
    /// Present, and `true`, only when a failed document was sent through the pipeline
    /// again.
    #[serde(skip_serializing_if = "is_false")]
    retried: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn accepted(d: &Document, duplicate: bool) -> Json<DocumentAccepted> {
    Json(DocumentAccepted {
        document_id: d.id,
        status: d.status.clone(),
        status_url: format!("/v1/documents/{}", d.id),
        duplicate,
        retried: false,
    })
}

/// Upload a document
///
/// Streams one file (PDF, plain text or Markdown, decided from its content) to encrypted
/// storage and queues it for parsing, chunking and indexing. Send it as multipart field
/// `file`, or as the raw body with `?filename=`. Content the tenant already has is not
/// stored twice: it answers 200 with the existing document (`duplicate: true`), and a failed
/// document with the same content is retried instead (202, `retried: true`). An
/// `Idempotency-Key` replays the first answer for the same content. Counts against the
/// plan's document and storage limits and the upload size limit; audited
/// (`documents.upload`). The answer carries `retried: true` when a failed document was
/// revived.
#[utoipa::path(
    post,
    path = "/v1/documents",
    tag = "documents",
    params(
        UploadQuery,
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,200}$", description = "1-200 visible ASCII characters; a repeat with the same key and content answers the first upload's document")
    ),
    request_body(
        content(
            (String = "multipart/form-data"),
            (String = "application/pdf"),
            (String = "text/plain"),
            (String = "text/markdown"),
            (String = "application/octet-stream"),
        ),
        description = "The file: either `multipart/form-data` with the file in field `file` (other fields are ignored), or the raw bytes as the body with `?filename=` (any content type; the type is decided from the content: PDF, plain text or Markdown)"
    ),
    responses(
        (status = 202, description = "Stored and queued, `duplicate: false` (or a failed document with this content revived: `retried: true`)", body = DocumentAccepted),
        (status = 200, description = "The tenant already has this content (or the `Idempotency-Key` was used for it): the existing document, `duplicate: true`", body = DocumentAccepted),
        (status = 400, description = "`invalid_query`, `invalid_idempotency_key`, `invalid_multipart`, `missing_file` (multipart without a `file` field), `missing_filename` (raw body without `?filename=`), `invalid_filename`, `upload_interrupted`, `empty_file`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`plan_limit`: the plan's document or storage limit is reached", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: the existing document with this content was deleted meanwhile", body = crate::openapi::ErrorBody),
        (status = 409, description = "`idempotency_conflict`: the `Idempotency-Key` was already used for different content", body = crate::openapi::ErrorBody),
        (status = 413, description = "`too_large`: the file is larger than the upload limit (the deployment's or the plan's, whichever is lower)", body = crate::openapi::ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the content is not PDF, plain text or Markdown", body = crate::openapi::ErrorBody),
        (status = 503, description = "`queue_unavailable` (with `Retry-After`): the document could not be queued; it is marked failed and can be retried", body = crate::openapi::ErrorBody),
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    auth: TenantAuth,
    headers: HeaderMap,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> Result<(StatusCode, Json<DocumentAccepted>), ApiError> {
    auth.govern(&state, Gate::new(Capability::DocumentsWrite).metered())
        .await?;
    let ent = &auth.entitlements;
    within_plan_limits(&state, &auth, ent, 1, 0).await?;
    let max_bytes = state.config.ingest.max_upload_bytes.min(ent.max_upload_bytes);
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let idem = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            // Visible ASCII only: `to_str` alone would let spaces and tabs through.
            let k = v
                .to_str()
                .ok()
                .filter(|k| (1..=200).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
            let msg = "Idempotency-Key must be 1-200 visible ASCII characters";
            Some(
                k.ok_or_else(|| ApiError::bad_request("invalid_idempotency_key", msg))?
                    .to_owned(),
            )
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if content_type.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &state)
            .await
            .map_err(|e| ApiError::bad_request("invalid_multipart", e.body_text()))?;
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request("invalid_multipart", e.body_text()))?
        {
            if field.name() != Some("file") {
                continue;
            }
            let name = field
                .file_name()
                .map(str::to_owned)
                .or(query.filename)
                .unwrap_or_else(|| "upload".into());
            let declared = field.content_type().map(str::to_owned);
            let body: ByteStream<'_> = field.map(|r| r.map_err(|e| e.to_string())).boxed();
            return receive(&state, &auth, idem, &name, declared, body, max_bytes).await;
        }
        Err(ApiError::bad_request(
            "missing_file",
            "the multipart body has no `file` field",
        ))
    } else {
        let msg = "send multipart field `file`, or a raw body with `?filename=`";
        let name = query
            .filename
            .ok_or_else(|| ApiError::bad_request("missing_filename", msg))?;
        let declared = (!content_type.is_empty()).then_some(content_type);
        let body: ByteStream<'_> = req
            .into_body()
            .into_data_stream()
            .map(|r| r.map_err(|e| e.to_string()))
            .boxed();
        receive(&state, &auth, idem, &name, declared, body, max_bytes).await
    }
}

/// Sniffs, streams to encrypted storage, dedupes, records and enqueues one upload.
async fn receive(
    state: &AppState,
    auth: &TenantAuth,
    idem: Option<String>,
    name: &str,
    declared: Option<String>,
    mut body: ByteStream<'_>,
    limit: u64,
) -> Result<(StatusCode, Json<DocumentAccepted>), ApiError> {
    let filename = clean_filename(name)?;

    // Read just enough to decide the type from the content.
    let mut prefix = Vec::new();
    let mut ended = false;
    while prefix.len() < SNIFF_LEN {
        match body.next().await {
            Some(Ok(b)) => prefix.extend_from_slice(&b),
            Some(Err(e)) => {
                return Err(ApiError::bad_request(
                    "upload_interrupted",
                    format!("the upload stream failed: {e}"),
                ));
            }
            None => {
                ended = true;
                break;
            }
        }
    }
    if prefix.is_empty() {
        return Err(ApiError::bad_request("empty_file", "the file is empty (0 bytes)"));
    }
    let kind = sniff(
        &prefix[..prefix.len().min(SNIFF_LEN)],
        ended && prefix.len() <= SNIFF_LEN,
        &filename,
        declared.as_deref(),
    );
    let Some(mime) = kind.mime() else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Docket accepts PDF, plain text and Markdown; this file's content is none of these",
        ));
    };

    let tenant = auth.tenant_id();
    let mut tx = state.db.begin_tenant(tenant).await?;
    let key = tenant_keys::data_key(&mut tx, &state.config.master_key)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    let id = DocumentId::new_random();
    let object = documents::original_key(id);
    let full = stream::iter([Ok(Bytes::from(prefix))]).chain(body);
    let stored = match state.blobs.put_stream(&key, &object, full, limit).await {
        Ok(s) => s,
        Err(BlobError::TooLarge { limit }) => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "the file is larger than the limit of {limit} bytes ({} MiB)",
                    limit / (1024 * 1024)
                ),
            ));
        }
        Err(BlobError::Source(e)) => {
            return Err(ApiError::bad_request(
                "upload_interrupted",
                format!("the upload stream failed: {e}"),
            ));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };

    let mut tx = state.db.begin_tenant(tenant).await?;
    // Replays and duplicates answer with the existing document; the new copy goes away.
    let existing = match &idem {
        Some(k) => documents::find_by_idempotency_key(&mut tx, k).await?,
        None => None,
    };
    if let Some(d) = existing {
        drop(tx);
        state
            .blobs
            .delete(tenant, &object)
            .await
            .map_err(ApiError::internal)?;
        if d.sha256 != stored.sha256 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "this Idempotency-Key was already used for different content",
            ));
        }
        return again_or_duplicate(state, auth, d).await;
    }
    if let Some(d) = documents::find_by_sha(&mut tx, &stored.sha256).await? {
        drop(tx);
        state
            .blobs
            .delete(tenant, &object)
            .await
            .map_err(ApiError::internal)?;
        // A failed document must not block its content: the same bytes again are a retry.
        return again_or_duplicate(state, auth, d).await;
    }
    let new = NewDocument {
        id,
        filename: &filename,
        content_type: mime,
        byte_size: stored.size as i64,
        sha256: &stored.sha256,
        idempotency_key: idem.as_deref(),
        created_by: auth.user_id(),
    };
    let Some(doc) = documents::insert(&mut tx, &new).await? else {
        // A concurrent upload of the same bytes or key won the race.
        drop(tx);
        state
            .blobs
            .delete(tenant, &object)
            .await
            .map_err(ApiError::internal)?;
        let mut tx = state.db.begin_tenant(tenant).await?;
        let d = documents::find_by_sha(&mut tx, &stored.sha256)
            .await?
            .ok_or_else(|| ApiError::internal("duplicate vanished"))?;
        return Ok((StatusCode::OK, accepted(&d, true)));
    };
    let ev = auth
        .event("documents.upload", Outcome::Allowed)
        .target(format!("document:{}", doc.id))
        .detail("bytes", stored.size)
        .detail("content_type", mime);
    start(state, auth, tx, &doc, ev).await?;
    Ok((StatusCode::ACCEPTED, accepted(&doc, false)))
}

/// Queues the parse job of `doc` and records `ev` in the caller's transaction, commits,
/// then pushes. Without a queued job the document would sit forever, so a refused push
/// fails the document (which a retry, or the same upload again, revives).
async fn start(
    state: &AppState,
    auth: &TenantAuth,
    mut tx: docket_platform::db::TenantTx,
    doc: &Document,
    ev: docket_platform::audit::Event,
) -> Result<(), ApiError> {
    let envelope = state
        .queue
        .prepare(
            &mut tx,
            Lane::Interactive,
            JobKind::Parse,
            doc.id,
            auth.ctx.request_id.clone(),
            &auth.actor_label(),
        )
        .await
        .map_err(ApiError::internal)?;
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    if let Err(e) = state.queue.push(&envelope).await {
        tracing::error!(error = %e, "could not enqueue the parse job");
        let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
        documents::fail(
            &mut tx,
            doc.id,
            "queue_unavailable",
            "the job queue was unavailable; retry the document or upload it again",
        )
        .await?;
        tx.commit().await?;
        return Err(ApiError::queue_unavailable("the document"));
    }
    Ok(())
}

/// The answer to content the tenant already has: a failed document is revived (202,
/// `retried: true`), anything else is the duplicate it is (200).
async fn again_or_duplicate(
    state: &AppState,
    auth: &TenantAuth,
    d: Document,
) -> Result<(StatusCode, Json<DocumentAccepted>), ApiError> {
    if d.status != "failed" {
        return Ok((StatusCode::OK, accepted(&d, true)));
    }
    match revive(state, auth, d.id, "documents.upload").await? {
        Some(doc) => Ok((StatusCode::ACCEPTED, retried(&doc))),
        // A concurrent retry revived it first: it is now simply a duplicate.
        None => {
            let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
            let doc = documents::get(&mut tx, d.id)
                .await?
                .ok_or_else(|| ApiError::not_found("document"))?;
            Ok((StatusCode::OK, accepted(&doc, true)))
        }
    }
}

fn retried(d: &Document) -> Json<DocumentAccepted> {
    let mut a = accepted(d, false);
    a.0.retried = true;
    a
}

/// Revives a failed document and queues it again; `None` if it was not failed.
async fn revive(
    state: &AppState,
    auth: &TenantAuth,
    id: DocumentId,
    action: &'static str,
) -> Result<Option<Document>, ApiError> {
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let Some(doc) = documents::revive(&mut tx, id).await? else {
        return Ok(None);
    };
    let ev = auth
        .event(action, Outcome::Allowed)
        .target(format!("document:{id}"))
        .detail("retry", true);
    start(state, auth, tx, &doc, ev).await?;
    Ok(Some(doc))
}

/// Retry a failed document
///
/// `POST /v1/documents/{id}/retry`: a failed document goes through the pipeline again
/// (202); a document that is not failed answers 409 `not_failed`. Audited
/// (`documents.retry`). Answers `duplicate: false, retried: true`.
#[utoipa::path(
    post,
    path = "/v1/documents/{id}/retry",
    tag = "documents",
    params(("id" = String, Path, description = "The document's id")),
    responses(
        (status = 202, description = "Queued again (`duplicate: false`, `retried: true`)", body = DocumentAccepted),
        (status = 409, description = "`not_failed`: only a failed document can be retried (the message names its status)", body = crate::openapi::ErrorBody),
        (status = 503, description = "`queue_unavailable` (with `Retry-After`): the document could not be queued; it stays failed", body = crate::openapi::ErrorBody),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DocumentAccepted>), ApiError> {
    auth.govern(&state, Gate::new(Capability::DocumentsWrite).metered())
        .await?;
    let id = DocumentId(parse_id(&id, "document")?);
    if let Some(doc) = revive(&state, &auth, id, "documents.retry").await? {
        return Ok((StatusCode::ACCEPTED, retried(&doc)));
    }
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let d = documents::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("document"))?;
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "not_failed",
        format!("only a failed document can be retried; this one is {}", d.status),
    ))
}
