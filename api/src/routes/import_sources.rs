//! Where a bulk import's documents come from: a zip archive received as the body (bounded
//! by the plan, its central directory checked, stored encrypted), or a bucket prefix named
//! in JSON with read-only credentials (checked, sealed).

use crate::auth::TenantAuth;
use crate::error::ApiError;
use crate::routes::within_plan_limits;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use docket_platform::blobs::BlobError;
use docket_platform::entitlements::Entitlements;
use docket_platform::ids::ImportId;
use docket_platform::imports::SourceKind;
use docket_platform::imports::archive::{self, ArchiveLimits};
use docket_platform::imports::job::archive_key;
use docket_platform::imports::source::{S3Credentials, S3Source};
use docket_platform::tenant_keys;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::io::{Read, Seek, SeekFrom, Write};

/// An import from a bucket: where the documents are, and read-only credentials for it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BucketImport {
    /// The source: `{bucket, prefix, region, endpoint}`. `bucket` (required): 3-63
    /// characters of a-z, 0-9, `-` and `.`; `prefix`: a relative key prefix without `..`
    /// (default: the whole bucket); `region`: 1-32 characters of a-z, 0-9 and `-` (default
    /// `us-east-1`); `endpoint`: the `https://` URL of an S3-compatible service on the
    /// public internet (default: AWS). No other fields.
    #[schema(value_type = Object)]
    s3: S3Source,
    /// Read-only credentials: `{access_key_id, secret_access_key}`, both required and not
    /// empty. Stored sealed, never shown again.
    #[schema(value_type = Object)]
    credentials: S3Credentials,
}

/// What a source contributes to the import's record: its detail, sealed credentials,
/// entries found so far and kind.
pub(super) type Prepared = (Value, Option<Vec<u8>>, i32, SourceKind);

/// Checks a bucket import's JSON body (fields, endpoint) and seals its credentials.
pub(super) async fn bucket_import(state: &AppState, id: ImportId, body: Body) -> Result<Prepared, ApiError> {
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the JSON body is larger than 64 KiB",
        )
    })?;
    let b: BucketImport = crate::json::parse(&bytes).map_err(|e| match e.code {
        "invalid_body" | "invalid_json" => ApiError::bad_request(
            "invalid_body",
            format!("expected {{\"s3\": {{bucket, prefix, region, endpoint}}, \"credentials\": {{access_key_id, secret_access_key}}}}: {}", e.message),
        ),
        _ => e,
    })?;
    let allow_http = state.config.ingest.import_allow_http;
    b.s3.validate(allow_http)
        .and_then(|_| b.credentials.validate())
        .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    // Resolved and checked now (a refusal is immediate) and again when the worker connects.
    b.s3.check_endpoint(allow_http)
        .await
        .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    let sealed = b.credentials.seal(&state.config.master_key, id);
    let detail = serde_json::to_value(&b.s3).map_err(ApiError::internal)?;
    Ok((detail, Some(sealed), 0, SourceKind::S3))
}

fn archive_refused(e: archive::ArchiveError) -> ApiError {
    let status = match e {
        archive::ArchiveError::TooManyEntries { .. } | archive::ArchiveError::TooLarge { .. } => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.code(), e.to_string())
}

/// Receives the archive into a temporary file (bounded by the plan), checks its central
/// directory, then stores it encrypted for the `import` job.
pub(super) async fn zip_import(
    state: &AppState,
    auth: &TenantAuth,
    ent: &Entitlements,
    id: ImportId,
    name: &str,
    body: Body,
) -> Result<Prepared, ApiError> {
    let limit = ent.max_import_bytes;
    let mut file = tempfile::tempfile().map_err(ApiError::internal)?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("upload_interrupted", format!("the upload stream failed: {e}"))
        })?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the archive is larger than your plan's import limit of {limit} bytes"),
            ));
        }
        file.write_all(&chunk).map_err(ApiError::internal)?;
    }
    if size == 0 {
        return Err(ApiError::bad_request(
            "empty_file",
            "the archive is empty (0 bytes)",
        ));
    }
    let limits = ArchiveLimits::for_plan(ent);
    let (file, summary) = tokio::task::spawn_blocking(move || {
        file.seek(SeekFrom::Start(0))?;
        let summary = archive::inspect(&mut file, size, &limits).map(|(_, s)| s);
        file.seek(SeekFrom::Start(0))?;
        Ok::<_, std::io::Error>((file, summary))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    let summary = summary.map_err(archive_refused)?;
    if summary.files == 0 {
        return Err(ApiError::bad_request(
            "empty_archive",
            "the archive holds no files",
        ));
    }
    let declared = i64::try_from(summary.declared_bytes).unwrap_or(i64::MAX);
    within_plan_limits(state, auth, ent, summary.files as i64, declared).await?;

    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let key = tenant_keys::data_key(&mut tx, &state.config.master_key)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    let stored = state
        .blobs
        .put_stream(&key, &archive_key(id), file_stream(file), limit)
        .await;
    match stored {
        Ok(_) => {}
        Err(BlobError::TooLarge { limit }) => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the archive is larger than {limit} bytes"),
            ));
        }
        Err(e) => return Err(ApiError::internal(e)),
    }
    let detail = json!({"archive": name, "bytes": size, "declared_bytes": summary.declared_bytes});
    Ok((detail, None, summary.files as i32, SourceKind::Zip))
}

/// The temporary file as a stream of 1 MiB chunks (read on the blocking pool).
fn file_stream(file: std::fs::File) -> futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>> {
    futures::stream::unfold(Some(file), |state| async move {
        let mut file = state?;
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; 1024 * 1024];
            let n = file.read(&mut buf);
            (file, buf, n)
        })
        .await;
        match read {
            Ok((file, mut buf, Ok(n))) if n > 0 => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(file)))
            }
            Ok((_, _, Ok(_))) => None,
            Ok((_, _, Err(e))) => Some((Err(e), None)),
            Err(_) => Some((Err(std::io::Error::other("reading the archive failed")), None)),
        }
    })
    .boxed()
}
