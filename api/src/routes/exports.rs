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
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use docket_platform::audit::Event;
use docket_platform::audit::Outcome;
use docket_platform::authz::Capability;
use docket_platform::db::TenantTx;
use docket_platform::exports::destination::Destination;
use docket_platform::exports::job::{self, ExportJob};
use docket_platform::exports::{self, ExportRequest, Target};
use serde_json::{Value, json};

/// `/v1/exports…`, `/ops/exports`, `/.well-known/docket-keys.json`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/exports", get(list).post(create))
        .route("/v1/exports/{id}", get(one).delete(cancel))
        .route("/ops/exports", get(ops_list))
        .route("/.well-known/docket-keys.json", get(keys))
}

async fn create(
    State(state): State<AppState>,
    auth: TenantAuth,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
        Json(json!({"export_id": id, "status": "queued", "status_url": format!("/v1/exports/{id}")})),
    ))
}

async fn list(State(state): State<AppState>, auth: TenantAuth) -> Result<Json<Value>, ApiError> {
    auth.require(&state, Capability::ExportsRequest).await?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let all = exports::list(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(json!({ "exports": all })))
}

async fn one(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&state, Capability::ExportsRequest).await?;
    let id = parse_id(&id, "export")?;
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let e = exports::get(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("export"))?;
    tx.commit().await?;
    Ok(Json(json!(e)))
}

async fn cancel(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({"export_id": id, "status": "cancelled"})))
}

async fn ops_list(State(state): State<AppState>, op: OperatorAuth) -> Result<Json<Value>, ApiError> {
    let all = exports::list_all(&state.control).await?;
    state
        .auditor
        .platform(
            state.control.pool(),
            op.event("ops.exports.list", Outcome::Allowed),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({ "exports": all })))
}

/// Every key that has signed (access tokens and export manifests), active or retired: a
/// manifest signed years ago still verifies against its key id.
async fn keys(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let doc = docket_platform::identity::keyring::published(state.db.platform_pool())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(doc))
}
