//! The caller's tenant's audit trail (`audit.read`), newest first; the whole chain as a file
//! to verify offline (`GET /v1/audit-events/export`, `audit::export`); the signed
//! checkpoints of its chain (`GET /v1/audit-checkpoints`); operators see every chain's
//! latest checkpoint (`GET /ops/audit-checkpoints`).

use crate::auth::{OperatorAuth, TenantAuth};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use docket_platform::audit::{Outcome, StoredEvent, checkpoint, export as audit_export};
use docket_platform::authz::Capability;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

/// `/v1/audit-events`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(export))
        .routes(routes!(checkpoints))
        .routes(routes!(ops_checkpoints))
}

/// A page of the tenant's audit events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct AuditEventPage {
    /// The events, newest first.
    events: Vec<StoredEvent>,
    /// The `cursor` of the next page (the last event's `seq`); null on the last page.
    next_cursor: Option<i64>,
}

/// A chain's latest signed checkpoints.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct CheckpointList {
    /// The chain: the tenant's id.
    chain: String,
    /// Its latest checkpoints, newest first, exactly as stored (signed).
    #[schema(value_type = Vec<checkpoint::SignedCheckpoint>)]
    checkpoints: Vec<serde_json::Value>,
}

/// Every chain's latest checkpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ChainHeadList {
    /// One per chain, ordered by chain.
    checkpoints: Vec<ChainHead>,
}

/// A chain's latest checkpoint.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ChainHead {
    /// `platform` or a tenant's id.
    chain: String,
    /// The checkpointed head's sequence number.
    seq: i64,
    /// The checkpointed head's hash.
    hash: String,
    /// When the checkpoint was taken.
    taken_at: DateTime<Utc>,
    /// Where it is stored (object key under the platform prefix).
    object: String,
}

/// Export the tenant's audit chain
///
/// The chain from its first row to its head as `audit::export` lays it out, streamed page by
/// page (NDJSON, `Content-Disposition: attachment; filename="audit-{tenant}.jsonl"`): a first
/// line with the header `{format, chain, head_seq, head_hash, exported_at}`, then one event
/// per line `{seq, id, occurred_at, actor_kind, actor_id, action, target, outcome, reason,
/// request_id, details, prev_hash, hash}` from `seq` 1 to `head_seq`, to verify offline. The
/// export is audited (`audit.export`) before the head is read, so the file includes the
/// record of its own export. Capability `audit.read`. If reading stops midway the body is
/// cut short (the status line has gone out); the file then ends before its header's head.
#[utoipa::path(
    get,
    path = "/v1/audit-events/export",
    tag = "compliance",
    responses(
        (status = 200, description = "The chain as NDJSON: the header line, then every event in order", content_type = "application/x-ndjson", body = String),
    )
)]
async fn export(State(state): State<AppState>, auth: TenantAuth) -> Result<Response, ApiError> {
    auth.require(&state, Capability::AuditRead).await?;
    let tenant = auth.tenant_id();
    let mut tx = state.db.begin_tenant(tenant).await?;
    let head = state
        .auditor
        .tenant(&mut tx, auth.event("audit.export", Outcome::Allowed))
        .await
        .map_err(ApiError::internal)?;
    tx.commit().await?;
    let header = audit_export::Header {
        format: audit_export::FORMAT.into(),
        chain: tenant.to_string(),
        head_seq: head.seq,
        head_hash: head.hash,
        exported_at: Utc::now(),
    };
    let first = serde_json::to_vec(&header).map_err(ApiError::internal)?;
    let db = state.db.clone();
    let upto = header.head_seq;
    let rows = futures::stream::unfold(Some(0i64), move |after| {
        let db = db.clone();
        async move {
            let after = after.filter(|a| *a < upto)?;
            match audit_export::page(&db, tenant, after, upto).await {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let next = page.last().map(|e| e.seq);
                    let mut out = Vec::with_capacity(page.len() * 512);
                    for e in &page {
                        if serde_json::to_writer(&mut out, e).is_err() {
                            return Some((
                                Err(std::io::Error::other("an audit row could not be written")),
                                None,
                            ));
                        }
                        out.push(b'\n');
                    }
                    Some((Ok(Bytes::from(out)), next))
                }
                Err(e) => {
                    // The body is cut: the file then ends before its header's head, which
                    // the verifier names; the status line has already gone out.
                    tracing::error!(error = %e, %tenant, "audit export stopped");
                    Some((Err(std::io::Error::other("the audit export stopped")), None))
                }
            }
        }
    });
    let mut line = first;
    line.push(b'\n');
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(line)) }).chain(rows);
    let mut resp = Body::from_stream(body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"audit-{tenant}.jsonl\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// List the tenant's audit checkpoints
///
/// The tenant's chain's latest 100 checkpoints, newest first, exactly as stored (signed:
/// check them offline against `/.well-known/docket-keys.json`). Capability `audit.read`.
#[utoipa::path(
    get,
    path = "/v1/audit-checkpoints",
    tag = "compliance",
    responses((status = 200, description = "The chain's latest signed checkpoints, newest first", body = CheckpointList))
)]
async fn checkpoints(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<CheckpointList>, ApiError> {
    auth.require(&state, Capability::AuditRead).await?;
    let chain = auth.tenant_id().to_string();
    let list = checkpoint::recent(&state.blobs, &chain, 100)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(CheckpointList {
        chain,
        checkpoints: list,
    }))
}

/// List every chain's latest checkpoint
///
/// Every chain's latest checkpoint (chain, position, head hash, when, where it is stored),
/// ordered by chain (`platform` or a tenant's id). Audited (`ops.audit_checkpoints.list`).
#[utoipa::path(
    get,
    path = "/ops/audit-checkpoints",
    tag = "ops",
    responses((status = 200, description = "The latest checkpoint of every chain", body = ChainHeadList))
)]
async fn ops_checkpoints(
    State(state): State<AppState>,
    op: OperatorAuth,
) -> Result<Json<ChainHeadList>, ApiError> {
    let rows: Vec<(String, i64, String, DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT chain, seq, hash, taken_at, object_key FROM audit_checkpoint_heads ORDER BY chain",
    )
    .fetch_all(state.control.pool())
    .await?;
    state
        .auditor
        .platform(
            state.control.pool(),
            op.event("ops.audit_checkpoints.list", Outcome::Allowed),
        )
        .await
        .map_err(ApiError::internal)?;
    let checkpoints = rows
        .into_iter()
        .map(|(chain, seq, hash, taken_at, object)| ChainHead {
            chain,
            seq,
            hash,
            taken_at,
            object,
        })
        .collect();
    Ok(Json(ChainHeadList { checkpoints }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Filter {
    /// Only events of this action (exact match, e.g. `documents.uploaded`).
    action: Option<String>,
    /// `user:{id}` or `api_key:{id}`.
    #[param(pattern = r"^(user|api_key):[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]*$")]
    actor: Option<String>,
    /// Only events at or after this instant (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Only events before this instant (RFC 3339).
    to: Option<DateTime<Utc>>,
    /// Return events with a smaller sequence number (the previous page's `next_cursor`).
    cursor: Option<i64>,
    /// Events per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// List the tenant's audit events
///
/// The caller's tenant's audit trail, newest first, filtered by action, actor and time.
/// Capability `audit.read`. `next_cursor` (a `seq`, or null on the last page) is the
/// `cursor` of the next page. Actors are stored pseudonymously: `actor` is pseudonymised the same way before matching.
#[utoipa::path(
    get,
    path = "/v1/audit-events",
    tag = "compliance",
    params(Filter),
    responses(
        (status = 200, description = "A page of events, newest first, and the next page's cursor", body = AuditEventPage),
        (status = 400, description = "`invalid_query` (an unknown parameter, or one that does not parse: a timestamp that is not RFC 3339, a non-integer `cursor` or `limit`), `invalid_limit` (not 1 to 200), `invalid_actor` (not `user:{id}` or `api_key:{id}`)", body = crate::openapi::ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    auth: TenantAuth,
    query: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditEventPage>, ApiError> {
    let Query(f) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    auth.require(&state, Capability::AuditRead).await?;
    let limit = f.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", "limit must be 1 to 200"));
    }
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let actor = match f.actor.as_deref() {
        None => None,
        Some(a) if a.starts_with("user:") || a.starts_with("api_key:") => Some(
            state
                .auditor
                .tenant_pseudonym(&mut tx, a)
                .await
                .map_err(ApiError::internal)?,
        ),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_actor",
                "actor must be `user:{id}` or `api_key:{id}`",
            ));
        }
    };
    let events: Vec<StoredEvent> = sqlx::query_as(
        "SELECT seq, id, occurred_at, actor_kind, actor_id, action, target, outcome, reason, request_id, details, prev_hash, hash
         FROM audit_events
         WHERE ($1::text IS NULL OR action = $1) AND ($2::text IS NULL OR actor_id = $2)
           AND ($3::timestamptz IS NULL OR occurred_at >= $3) AND ($4::timestamptz IS NULL OR occurred_at < $4)
           AND ($5::bigint IS NULL OR seq < $5)
         ORDER BY seq DESC LIMIT $6",
    )
    .bind(f.action)
    .bind(actor)
    .bind(f.from)
    .bind(f.to)
    .bind(f.cursor)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?;
    let next = if events.len() as i64 == limit {
        events.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(Json(AuditEventPage {
        events,
        next_cursor: next,
    }))
}
