//! Data-portability exports (capability `exports.request`, plan feature `exports`):
//! `POST /v1/exports` (the customer's bucket and write credentials; the destination is
//! probed before anything is queued), `GET /v1/exports`, `GET /v1/exports/{id}` (status,
//! files and bytes done of total, percentage, ETA, error), `DELETE /v1/exports/{id}`
//! (cancel). `{"download": true}` keeps the package in Docket's storage instead
//! (`export_downloads`). Operators: `GET /ops/exports` (no credentials). The keys manifests are signed
//! with: `GET /.well-known/docket-keys.json`.

use crate::auth::{Gate, OperatorAuth, TenantAuth};
use crate::error::ApiError;
use crate::routes::parse_id;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use docket_platform::audit::Event;
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use docket_platform::db::TenantTx;
use docket_platform::exports::destination::Destination;
use docket_platform::exports::job::{self, ExportJob};
use docket_platform::exports::{self, Export, ExportRequest, Target};
use docket_platform::identity::keyring::PublishedKeys;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

/// `/v1/exports…`, `/ops/exports`, `/.well-known/docket-keys.json`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(one, cancel))
        .routes(routes!(ops_list))
        .routes(routes!(keys))
}

// The contract's schema of `POST /v1/exports`: the handler parses the body as
// `ExportRequest` (a `docket_platform` type without `ToSchema`); these mirror it.

/// Where an export goes: `s3` with `credentials`, or `{"download": true}`.
#[derive(Debug, utoipa::ToSchema)]
pub struct ExportBody {
    /// The customer's bucket to write the package to (with `credentials`).
    pub s3: Option<ExportBucket>,
    /// Write credentials for the bucket (with `s3`); sealed at rest, erased when the export ends.
    pub credentials: Option<ExportCredentials>,
    /// `true`: keep the package in Docket's storage for 7 days, fetched through a short-lived
    /// signed link (`POST /v1/exports/{id}/link`); not with `s3`/`credentials`.
    pub download: Option<bool>,
}

/// The bucket an export is written to (the package goes under `{prefix}/docket-export-{id}/`).
#[derive(Debug, utoipa::ToSchema)]
pub struct ExportBucket {
    /// Bucket name: 3-63 characters of a-z, 0-9, `-` and `.`.
    pub bucket: String,
    /// Key prefix (default empty: the bucket's root); relative, without `..`.
    #[schema(required = false)]
    pub prefix: String,
    /// Region (default `us-east-1`): 1-32 characters of a-z, 0-9 and `-`, starting with a letter.
    #[schema(required = false)]
    pub region: String,
    /// Endpoint of an S3-compatible service (default AWS); must resolve to public addresses.
    pub endpoint: Option<String>,
}

/// Credentials that can write to the bucket.
#[derive(Debug, utoipa::ToSchema)]
pub struct ExportCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

/// An export queued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ExportQueued {
    /// The export's id.
    export_id: uuid::Uuid,
    /// Always `queued`.
    status: &'static str,
    /// Where to follow its progress: `/v1/exports/{id}`.
    status_url: String,
}

/// An export cancelled.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ExportCancelled {
    /// The export's id.
    export_id: uuid::Uuid,
    /// Always `cancelled`.
    status: &'static str,
}

/// Exports, newest first (never their credentials).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ExportList {
    /// The exports.
    exports: Vec<Export>,
}

/// Request an export of the tenant's data
///
/// Either the customer's bucket and write credentials (`{"s3": {bucket, prefix, region,
/// endpoint}, "credentials": {access_key_id, secret_access_key}}`), probed with a test write
/// before anything is queued, or `{"download": true}` for a package kept in Docket's storage.
/// The body is read as JSON whatever its `Content-Type`. Capability `exports.request`, plan
/// feature `exports`; audited (`exports.requested`). Answers 202; follow progress at
/// `GET /v1/exports/{id}`.
#[utoipa::path(
    post,
    path = "/v1/exports",
    tag = "compliance",
    request_body(content = ExportBody, description = "The destination: `s3` with `credentials`, or `{\"download\": true}`. Read as JSON whatever the `Content-Type`."),
    responses(
        (status = 202, description = "Queued", body = ExportQueued),
        (status = 400, description = "`invalid_body` (not JSON, or not the expected shape), `invalid_text` (a string holds a control character), `invalid_destination` (neither `s3` with `credentials` nor `download: true`, or a bucket, prefix, region or credentials field is invalid), `invalid_endpoint`, `forbidden_endpoint` (the endpoint is not on the public internet), `destination_unreachable`, `access_denied` (the bucket refused a test write with the credentials), `no_such_bucket` (audited refusals of the destination probe)", body = crate::openapi::ErrorBody),
        (status = 403, description = "`feature_not_in_plan`: the plan does not include `exports`", body = crate::openapi::ErrorBody),
        (status = 503, description = "`queue_unavailable` (with `Retry-After: 5`): the export could not be queued; it is marked failed and can be requested again", body = crate::openapi::ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    auth: TenantAuth,
    body: Bytes,
) -> Result<(StatusCode, Json<ExportQueued>), ApiError> {
    auth.govern(&state, Gate::new(Capability::ExportsRequest).feature("exports"))
        .await?;
    let req: ExportRequest = crate::json::parse(&body).map_err(|e| match e.code {
        "invalid_body" | "invalid_json" => ApiError::bad_request(
            "invalid_body",
            format!("expected {{\"s3\": {{bucket, prefix, region, endpoint}}, \"credentials\": {{access_key_id, secret_access_key}}}}: {}", e.message),
        ),
        _ => e,
    })?;
    let id = uuid::Uuid::new_v4();
    let (s3, creds) = match (req.s3, req.credentials, req.download) {
        (Some(s3), Some(creds), None | Some(false)) => (s3, creds),
        (None, None, Some(true)) => {
            let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
            exports::create(&mut tx, id, Target::Download, &auth.actor_label()).await?;
            let ev = auth
                .event("exports.requested", Outcome::Allowed)
                .target(format!("export:{id}"))
                .detail("destination", "download");
            return enqueue(&state, &auth, tx, ev, id).await;
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_destination",
                "give your bucket as \"s3\" and its write credentials as \"credentials\", or ask for {\"download\": true}",
            ));
        }
    };
    let allow_http = state.config.ingest.import_allow_http;
    // The destination must take a write before any tenant data is queued for it (opening
    // it validates the fields and the endpoint's addresses first).
    let probe = match Destination::open(&s3, &creds, id, allow_http).await {
        Ok(d) => d.probe().await,
        Err(e) => Err(e),
    };
    if let Err(e) = probe {
        let refusal = auth
            .refuse(
                &state,
                "exports.request",
                StatusCode::BAD_REQUEST,
                e.code,
                e.message.clone(),
            )
            .await;
        return Err(refusal);
    }
    let sealed = creds.seal_for(&state.config.master_key, &exports::credentials_context(id));
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    exports::create(&mut tx, id, Target::Bucket(&s3, &sealed), &auth.actor_label()).await?;
    let ev = auth
        .event("exports.requested", Outcome::Allowed)
        .target(format!("export:{id}"))
        .detail("bucket", s3.bucket.clone())
        .detail("prefix", s3.prefix.clone());
    enqueue(&state, &auth, tx, ev, id).await
}

/// Records the request's audit event, commits, and queues the job; a push that fails fails
/// the export at once (nothing would ever run it).
async fn enqueue(
    state: &AppState,
    auth: &TenantAuth,
    mut tx: TenantTx,
    ev: Event,
    id: uuid::Uuid,
) -> Result<(StatusCode, Json<ExportQueued>), ApiError> {
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    let job = ExportJob {
        v: job::EXPORT_VERSION,
        tenant_id: auth.tenant_id(),
        export_id: id,
        purge: false,
    };
    if job::push(&state.queue, &job).await.is_err() {
        // Nothing would ever run it: it fails now, its credentials erased, and can be asked again.
        let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
        sqlx::query(
            "UPDATE exports SET status = 'failed', credentials = NULL, finished_at = now(),
                    error_code = 'queue_unavailable', error_message = 'the export could not be queued; request it again'
             WHERE id = $1",
        )
        .bind(id)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        return Err(ApiError::queue_unavailable("exports"));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(ExportQueued {
            export_id: id,
            status: "queued",
            status_url: format!("/v1/exports/{id}"),
        }),
    ))
}

/// List the tenant's exports
///
/// The tenant's latest 200 exports, newest first (never their credentials). Capability
/// `exports.request`.
#[utoipa::path(
    get,
    path = "/v1/exports",
    tag = "compliance",
    responses((status = 200, description = "The tenant's exports, newest first", body = ExportList))
)]
async fn list(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<ExportList>, ApiError> {
    auth.require(&state, Capability::ExportsRequest).await?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let all = exports::list(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(ExportList { exports: all }))
}

/// Show an export's progress
///
/// The export: its destination, status, files and bytes done of total, percentage, ETA and
/// error (`{code, message}` when failed). Capability `exports.request`.
#[utoipa::path(
    get,
    path = "/v1/exports/{id}",
    tag = "compliance",
    params(("id" = String, Path, description = "The export's id")),
    responses(
        (status = 200, description = "The export and its progress", body = Export),
        (status = 404, description = "`not_found`: no such export of this tenant", body = crate::openapi::ErrorBody),
    )
)]
async fn one(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Export>, ApiError> {
    auth.require(&state, Capability::ExportsRequest).await?;
    let id = parse_id(&id, "export")?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let e = exports::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("export"))?;
    tx.commit().await?;
    Ok(Json(e))
}

/// Cancel an export
///
/// Stops a queued or running export and erases its credentials; audited
/// (`exports.cancelled`). Capability `exports.request`.
#[utoipa::path(
    delete,
    path = "/v1/exports/{id}",
    tag = "compliance",
    params(("id" = String, Path, description = "The export's id")),
    responses(
        (status = 200, description = "Cancelled", body = ExportCancelled),
        (status = 404, description = "`not_found`: no such export of this tenant", body = crate::openapi::ErrorBody),
        (status = 409, description = "`export_ended`: the export is done, failed or cancelled already; nothing to cancel", body = crate::openapi::ErrorBody),
    )
)]
async fn cancel(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<ExportCancelled>, ApiError> {
    auth.require(&state, Capability::ExportsRequest).await?;
    let id = parse_id(&id, "export")?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let Some(e) = exports::get(&mut tx, id).await? else {
        return Err(ApiError::not_found("export"));
    };
    if !exports::cancel(&mut tx, id).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "export_ended",
            format!(
                "the export has ended ({}); there is nothing to cancel",
                e.status.as_str()
            ),
        ));
    }
    let ev = auth
        .event("exports.cancelled", Outcome::Allowed)
        .target(format!("export:{id}"));
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(ExportCancelled {
        export_id: id,
        status: "cancelled",
    }))
}

/// List every tenant's exports
///
/// The latest 500 exports of every tenant, newest first (no credentials). Audited
/// (`ops.exports.list`).
#[utoipa::path(
    get,
    path = "/ops/exports",
    tag = "ops",
    responses((status = 200, description = "Every tenant's exports, newest first", body = ExportList))
)]
async fn ops_list(State(state): State<AppState>, op: OperatorAuth) -> Result<Json<ExportList>, ApiError> {
    let all = exports::list_all(&state.control).await?;
    state
        .auditor
        .platform(
            state.control.pool(),
            op.event("ops.exports.list", Outcome::Allowed),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(ExportList { exports: all }))
}

/// Publish Docket's signing keys
///
/// Every key that has signed (access tokens and export manifests), active or retired: a
/// manifest signed years ago still verifies against its key id. A JWKS-style document. No
/// credentials.
#[utoipa::path(
    get,
    path = "/.well-known/docket-keys.json",
    tag = "auth",
    responses((status = 200, description = "Every signing key, active and retired, with its rotation dates", body = PublishedKeys))
)]
async fn keys(State(state): State<AppState>) -> Result<Json<PublishedKeys>, ApiError> {
    let keys = docket_platform::identity::keyring::published(state.db.platform_pool())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(keys))
}
