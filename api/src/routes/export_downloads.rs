//! Download packages: `POST /v1/exports/{id}/link` (capability `exports.request`) issues a
//! short-lived signed link to a done download package, audited; `GET
//! /v1/exports/{id}/package?…` is that link: no bearer token (the signature is the
//! credential, so it can be handed to `curl` or a browser), it streams the package as one
//! tar archive, audited as a download by whoever issued the link.

use crate::auth::{Gate, TenantAuth};
use crate::error::ApiError;
use crate::routes::parse_id;
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::authz::Capability;
use docket_platform::db::TenantTx;
use docket_platform::exports::link::Link;
use docket_platform::exports::{self, ExportKind, ExportStatus, archive};
use docket_platform::ids::TenantId;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa_axum::{router::OpenApiRouter, routes};

/// `/v1/exports/{id}/link`, `/v1/exports/{id}/package`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue))
        .routes(routes!(package))
}

/// A signed link to a download package.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DownloadLink {
    /// The export's id.
    export_id: uuid::Uuid,
    /// The relative `/v1/exports/{id}/package?…` link; it needs no bearer token.
    url: String,
    /// When the link stops working (never after the package is deleted).
    expires_at: DateTime<Utc>,
    /// The package's size in bytes.
    bytes: i64,
    /// SHA-256 of the package's `manifest.json`.
    manifest_sha256: Option<String>,
}

/// The export if its package can be downloaded now, or why not.
async fn downloadable(tx: &mut TenantTx, id: uuid::Uuid) -> Result<exports::Export, ApiError> {
    let e = exports::get(tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("export"))?;
    if e.kind != ExportKind::Download {
        return Err(ApiError::bad_request(
            "not_a_download",
            "this export was written to your own bucket; there is no package to download from Docket",
        ));
    }
    if e.status != ExportStatus::Done {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "export_not_ready",
            format!(
                "the export is {}; its package can be downloaded once it is done",
                e.status.as_str()
            ),
        ));
    }
    let expired = e.package_expires_at.is_none_or(|at| at <= Utc::now());
    if e.package_deleted_at.is_some() || expired {
        return Err(ApiError::new(
            StatusCode::GONE,
            "package_expired",
            format!(
                "download packages are kept {} days; this one has been deleted: request a new export",
                exports::DOWNLOAD_RETENTION_DAYS
            ),
        ));
    }
    Ok(e)
}

/// Issue a download link for an export's package
///
/// A short-lived signed link to a done download package (an export asked with
/// `{"download": true}`), never outliving the package; audited (`exports.link_issued`).
/// Capability `exports.request`, plan feature `exports`. The link is relative and needs no
/// bearer token.
#[utoipa::path(
    post,
    path = "/v1/exports/{id}/link",
    tag = "compliance",
    params(("id" = String, Path, description = "The export's id")),
    responses(
        (status = 200, description = "The signed link and what it fetches", body = DownloadLink),
        (status = 400, description = "`not_a_download`: the export was written to the customer's bucket; there is no package in Docket's storage", body = crate::openapi::ErrorBody),
        (status = 403, description = "`feature_not_in_plan`: the plan does not include `exports`", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: no such export of this tenant", body = crate::openapi::ErrorBody),
        (status = 409, description = "`export_not_ready`: the export is not done (queued, running, failed or cancelled)", body = crate::openapi::ErrorBody),
        (status = 410, description = "`package_expired`: the package has been deleted (kept 7 days); request a new export", body = crate::openapi::ErrorBody),
    )
)]
async fn issue(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<DownloadLink>, ApiError> {
    auth.govern(&state, Gate::new(Capability::ExportsRequest).feature("exports"))
        .await?;
    let id = parse_id(&id, "export")?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let e = downloadable(&mut tx, id).await?;
    let mut link = Link::new(auth.tenant_id(), id, &auth.actor_label(), Utc::now());
    // A link never outlives its package.
    if let Some(at) = e.package_expires_at {
        link.expires = link.expires.min(at.timestamp());
    }
    let ev = auth
        .event("exports.link_issued", Outcome::Allowed)
        .target(format!("export:{id}"))
        .detail("expires_at", link.expires_at().to_rfc3339());
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    Ok(Json(DownloadLink {
        export_id: id,
        url: link.url(&state.config.master_key),
        expires_at: link.expires_at(),
        bytes: e.bytes_done,
        manifest_sha256: e.manifest_sha256,
    }))
}

/// A link's query string.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LinkQuery {
    /// The tenant whose export it is (a UUID).
    #[param(value_type = String)]
    tenant: TenantId,
    /// Who issued the link (`user:{id}` or `api_key:{id}`); the download is audited as theirs.
    by: String,
    /// When the link expires (Unix seconds).
    expires: i64,
    /// HMAC-SHA256 of the link, hex.
    signature: String,
}

/// Download an export's package
///
/// The link `POST /v1/exports/{id}/link` issued: no bearer token (the signature is the
/// credential, so it can be handed to `curl` or a browser). Streams the package as one tar
/// archive (`Content-Length` set, `Cache-Control: no-store`, `Content-Disposition:
/// attachment`), audited (`exports.downloaded`) as a download by whoever issued the link.
/// `HEAD` is refused (405 `method_not_allowed`): fetch it with `GET`.
#[utoipa::path(
    get,
    path = "/v1/exports/{id}/package",
    tag = "compliance",
    params(("id" = String, Path, description = "The export's id"), LinkQuery),
    responses(
        (status = 200, description = "The package as a tar archive", content_type = "application/x-tar", body = String),
        (status = 400, description = "`not_a_download`: the export was written to the customer's bucket", body = crate::openapi::ErrorBody),
        (status = 403, description = "`link_invalid`: the query string is missing, malformed or altered, or the link was not issued by this deployment", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: no such export", body = crate::openapi::ErrorBody),
        (status = 409, description = "`export_not_ready`: the export is not done", body = crate::openapi::ErrorBody),
        (status = 410, description = "`link_expired` (ask for a new link), `package_expired` (the package has been deleted; request a new export)", body = crate::openapi::ErrorBody),
    )
)]
async fn package(
    State(state): State<AppState>,
    method: Method,
    Path(id): Path<String>,
    query: Result<Query<LinkQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    // A HEAD would read every file's size and be audited as a download.
    if method == Method::HEAD {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "fetch the package with GET",
        ));
    }
    let invalid = |e: docket_platform::exports::link::LinkError| {
        let status = match e {
            docket_platform::exports::link::LinkError::Invalid => StatusCode::FORBIDDEN,
            docket_platform::exports::link::LinkError::Expired => StatusCode::GONE,
        };
        ApiError::new(status, e.code(), e.to_string())
    };
    let id = parse_id(&id, "export")?;
    let Ok(Query(q)) = query else {
        return Err(invalid(docket_platform::exports::link::LinkError::Invalid));
    };
    let link = Link {
        tenant: q.tenant,
        export: id,
        by: q.by,
        expires: q.expires,
    };
    link.check(&state.config.master_key, &q.signature, Utc::now())
        .map_err(invalid)?;
    // From here the tenant is the one the signature vouches for.
    let mut tx = state.db.begin_tenant(link.tenant).await?;
    let e = downloadable(&mut tx, id).await?;
    let key = docket_platform::tenant_keys::data_key(&mut tx, &state.config.master_key)
        .await
        .map_err(ApiError::internal)?;
    let mtime = e.snapshot_at.map_or(0, |t| t.timestamp().max(0) as u64);
    let archive = archive::open(&mut tx, &state.blobs, Arc::new(key), id, mtime)
        .await
        .map_err(ApiError::internal)?;
    let actor = Actor::parse_label(&link.by).unwrap_or(Actor::Anonymous);
    let ev = Event::new("exports.downloaded", Outcome::Allowed, actor)
        .target(format!("export:{id}"))
        .detail("bytes", archive.len);
    state
        .auditor
        .tenant(&mut tx, ev)
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    let mut resp = Body::from_stream(archive.body).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(archive.len));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", archive.name)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
