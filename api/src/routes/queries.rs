//! Questions: `POST /v1/queries` (governed, then an `answer` job; `?wait=N` waits for the
//! worker's announcement), `GET /v1/queries/{id}`, `GET /v1/queries` (history: members see
//! their own, admins and owners everyone's).

use crate::answers::{Waited, wait_for};
use crate::auth::{Gate, TenantAuth};
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::routes::{Page, parse_id};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use docket_platform::authz::{Capability, Role};
use docket_platform::consents::Purpose;
use docket_platform::documents;
use docket_platform::ids::{DocumentId, QueryId};
use docket_platform::queries::job::{self, AnswerJob};
use docket_platform::queries::{self, AnswerMode, NewQuery};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Longest `?wait=` honoured, in seconds.
pub const MAX_WAIT_SECS: u64 = 30;
/// Default `top_k` (before the plan's maximum).
const DEFAULT_TOP_K: u32 = 5;
/// Most documents one question may be restricted to.
const MAX_DOCUMENT_FILTER: usize = 20;

/// `/v1/queries`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, ask))
        .routes(routes!(show))
}

/// A question to answer from the tenant's documents.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Ask {
    /// The question: 1 to 2000 characters of plain text (no control characters but tab and
    /// newline).
    #[schema(
        max_length = 2000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    question: String,
    /// Passages to retrieve, at least 1 (default 5, or the plan's maximum if lower); a larger
    /// value is lowered to the plan's maximum, with a notice.
    #[schema(minimum = 1)]
    top_k: Option<u32>,
    /// Restrict the question to these documents (at most 20 ids; default: all).
    #[serde(default)]
    #[schema(max_items = 20)]
    document_ids: Vec<String>,
    /// `extractive` or `generative`; without it, the tenant's default (its policy).
    mode: Option<AnswerMode>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct AskParams {
    /// Seconds to wait for the answer before answering 202 (default 0; at most 30, larger
    /// values wait 30).
    wait: Option<u64>,
}

/// Whose queries this principal may read: everyone's for admins and owners, else its own.
fn only_actor(auth: &TenantAuth) -> Option<String> {
    (auth.role > Role::Admin).then(|| auth.actor_label())
}

/// A question, recorded and queued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct QueryQueued {
    /// The query's id.
    query_id: QueryId,
    /// Always `queued`.
    status: String,
    /// Where to poll for the answer (`GET /v1/queries/{id}`).
    status_url: String,
    /// The `top_k` used for retrieval (lowered to the plan's maximum if need be).
    top_k_applied: u32,
    /// The mode the question is answered in.
    requested_mode: AnswerMode,
    /// Sentences about how it will be answered (each starts with its code), e.g. a lowered
    /// `top_k`.
    notices: Vec<String>,
}

/// A page of queries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct QueryPage {
    /// The queries, newest first, each as `GET /v1/queries/{id}` shows it.
    queries: Vec<queries::Query>,
    /// The `cursor` of the next page; null on the last page.
    next_cursor: Option<String>,
}

/// The mode a question is answered in. Asked for explicitly, `generative` must pass the
/// plan and consent gates (403 otherwise). The tenant's default is only a preference: when
/// the plan, the consent or the deployment does not allow it, the question is answered
/// extractively and a notice says why.
fn resolve_mode(
    state: &AppState,
    auth: &TenantAuth,
    asked: Option<AnswerMode>,
    notices: &mut Vec<String>,
) -> AnswerMode {
    if let Some(m) = asked {
        return m;
    }
    let ent = &auth.entitlements;
    if ent.default_answer_mode != AnswerMode::Generative {
        return AnswerMode::Extractive;
    }
    let why = if !ent.has("generative_answers") {
        "your plan does not include generative answers"
    } else if !ent.consents_to(Purpose::ExternalLlmProcessing) {
        "your organisation has no current consent to external_llm_processing"
    } else if state.config.llm.is_none() {
        "this deployment has no language model"
    } else {
        return AnswerMode::Generative;
    };
    notices.push(format!(
        "default_mode_unavailable: the default answer mode is generative, but {why}; this answer is extractive"
    ));
    AnswerMode::Extractive
}

/// Ask a question
///
/// Runs the governance chain for the question (capability, input safety, quota; for a
/// generative answer also the plan feature `generative_answers` and the consent to
/// `external_llm_processing`), records it and queues an `answer` job. With `?wait=N` it
/// waits up to N seconds for the answer and returns the finished query (200); otherwise,
/// or if the answer is not ready in time, 202 with `status: "queued"` and the `status_url`
/// to poll. A finished query is as `GET /v1/queries/{id}` shows it.
#[utoipa::path(
    post,
    path = "/v1/queries",
    tag = "queries",
    params(AskParams),
    request_body = Ask,
    responses(
        (status = 200, description = "Answered within `wait`: the finished query (`status` `answered`, `no_answer` or `failed`)", body = queries::Query),
        (status = 202, description = "Queued; poll `status_url`", body = QueryQueued),
        (status = 400, description = "`invalid_query`, `invalid_text` (a control character in the body), `empty_question`, `question_too_long`, `control_characters`, `flagged_input` (a prompt-injection pattern, refused by the tenant's policy), `invalid_top_k`, `too_many_documents`", body = crate::openapi::ErrorBody),
        (status = 403, description = "`feature_not_in_plan` (`generative_answers`), `consent_required` (`external_llm_processing`): for a generative answer", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: an id in `document_ids` is not one of the tenant's documents", body = crate::openapi::ErrorBody),
        (status = 503, description = "`generator_unavailable` (generative answers asked for, and this deployment has no language model), `queue_unavailable` (with `Retry-After`: the question could not be queued; it is recorded as failed)", body = crate::openapi::ErrorBody),
    )
)]
async fn ask(
    State(state): State<AppState>,
    auth: TenantAuth,
    params: Result<Query<AskParams>, axum::extract::rejection::QueryRejection>,
    ApiJson(body): ApiJson<Ask>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let mut notices = Vec::new();
    let mode = resolve_mode(&state, &auth, body.mode, &mut notices);
    let mut gate = Gate::new(Capability::QueriesAsk)
        .question(&body.question)
        .metered();
    if mode == AnswerMode::Generative {
        gate = gate
            .feature("generative_answers")
            .consent(Purpose::ExternalLlmProcessing);
    }
    let governed = auth.govern(&state, gate).await?;
    if mode == AnswerMode::Generative && state.config.llm.is_none() {
        // Governed first, so plan and consent refusals are exact; no language model is
        // configured in this deployment (nothing is sent anywhere).
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "generator_unavailable",
            "generative answers are not available on this deployment; ask without `mode` for an extractive answer",
        ));
    }
    let ent = &auth.entitlements;
    let requested = body.top_k.unwrap_or(DEFAULT_TOP_K.min(ent.max_top_k));
    if requested == 0 {
        return Err(ApiError::bad_request("invalid_top_k", "top_k must be at least 1"));
    }
    let top_k = requested.min(ent.max_top_k);
    if top_k < requested {
        notices.push(format!(
            "top_k was lowered from {requested} to {top_k}, the maximum of your plan ({})",
            ent.plan_id
        ));
    }
    if body.document_ids.len() > MAX_DOCUMENT_FILTER {
        return Err(ApiError::bad_request(
            "too_many_documents",
            format!("a question can be restricted to at most {MAX_DOCUMENT_FILTER} documents"),
        ));
    }
    let mut docs: Vec<DocumentId> = Vec::with_capacity(body.document_ids.len());
    for d in &body.document_ids {
        docs.push(DocumentId(parse_id(d, "document")?));
    }
    docs.sort_unstable();
    docs.dedup();

    let id = QueryId::new_random();
    let actor = auth.actor_label();
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    // Another tenant's document is simply not found here (RLS): 404, never its content.
    if !docs.is_empty() && documents::count_existing(&mut tx, &docs).await? != docs.len() as i64 {
        return Err(ApiError::not_found("document"));
    }
    let new = NewQuery {
        id,
        asked_by: auth.user_id(),
        actor: &actor,
        question: &body.question,
        document_ids: &docs,
        top_k,
        clamped: top_k < requested,
        mode,
        notices: &notices,
        flags: &governed.flags,
        request_id: auth.ctx.request_id.as_deref(),
    };
    queries::insert(&mut tx, &new).await?;
    tx.commit().await?;

    // Subscribe before the job exists, so its announcement cannot be missed.
    let wait = params.wait.unwrap_or(0).min(MAX_WAIT_SECS);
    let mut ticket = (wait > 0).then(|| state.answers.register(id));
    let envelope = AnswerJob {
        v: job::ANSWER_VERSION,
        tenant_id: auth.tenant_id(),
        query_id: id,
        request_id: auth.ctx.request_id.clone(),
        actor,
    };
    if let Err(e) = job::push(&state.queue, &envelope).await {
        tracing::error!(error = %e, query = %id, "could not queue an answer job");
        let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
        job::fail(
            &mut tx,
            id,
            "queue_unavailable",
            "the question could not be queued",
        )
        .await?;
        tx.commit().await?;
        return Err(ApiError::queue_unavailable("questions"));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    while let Some(t) = ticket.as_mut() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let waited = wait_for(t, left).await;
        if waited == Waited::TimedOut {
            break;
        }
        if waited == Waited::Unsure {
            // The listener reconnected and may have missed the announcement: wait on a new
            // registration (the old one is taken off first: dropping a ticket removes its
            // id), made before the re-read so an announcement after it is not missed.
            drop(ticket.take());
            ticket = Some(state.answers.register(id));
        }
        let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
        let q = queries::get(&mut tx, id, None).await?;
        tx.commit().await?;
        // Its notices include the request's: they are stored with it.
        if let Some(q) = q.filter(queries::Query::is_final) {
            return Ok((StatusCode::OK, Json(q)).into_response());
        }
        if waited == Waited::Finished {
            break;
        }
    }
    let queued = QueryQueued {
        query_id: id,
        status: "queued".into(),
        status_url: format!("/v1/queries/{id}"),
        top_k_applied: top_k,
        requested_mode: mode,
        notices,
    };
    Ok((StatusCode::ACCEPTED, Json(queued)).into_response())
}

/// Show a query
///
/// The question and, once answered, the answer with its citations. Members see only their
/// own queries (another's is not found); admins and owners see everyone's. `status` is
/// `queued`, `running`, `answered`, `no_answer` or `failed`; `mode` (what produced the
/// answer) is `extractive`, `generative` or `extractive_fallback`, null until answered.
#[utoipa::path(
    get,
    path = "/v1/queries/{id}",
    tag = "queries",
    params(("id" = String, Path, description = "The query's id")),
    responses((status = 200, description = "The query", body = queries::Query))
)]
async fn show(
    State(state): State<AppState>,
    auth: TenantAuth,
    Path(id): Path<String>,
) -> Result<Json<queries::Query>, ApiError> {
    auth.require(&state, Capability::QueriesRead).await?;
    let id = QueryId(parse_id(&id, "query")?);
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let q = queries::get(&mut tx, id, only_actor(&auth).as_deref())
        .await?
        .ok_or_else(|| ApiError::not_found("query"))?;
    tx.commit().await?;
    Ok(Json(q))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// The `next_cursor` of the previous page.
    #[param(
        pattern = r"^-?[0-9]{1,16}_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    cursor: Option<String>,
    /// Queries per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// List queries
///
/// The question history, newest first, by cursor: members see their own, admins and owners
/// everyone's. Each query is as `GET /v1/queries/{id}` shows it; `next_cursor` is null on
/// the last page.
#[utoipa::path(
    get,
    path = "/v1/queries",
    tag = "queries",
    params(ListParams),
    responses(
        (status = 200, description = "A page of queries", body = QueryPage),
        (status = 400, description = "`invalid_query`, `invalid_limit`, `invalid_cursor`", body = crate::openapi::ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    auth: TenantAuth,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<QueryPage>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    auth.require(&state, Capability::QueriesRead).await?;
    let page = Page::parse(p.limit, p.cursor.as_deref())?;
    let after = page.after.map(|(at, id)| (at, QueryId(id)));
    let mut tx = state.db.begin_tenant(auth.tenant_id()).await?;
    let rows = queries::list(&mut tx, only_actor(&auth).as_deref(), after, page.limit).await?;
    tx.commit().await?;
    let next = page.next(
        rows.len(),
        rows.last().map(|q| (q.created_at, q.query_id.as_uuid())),
    );
    Ok(Json(QueryPage {
        queries: rows,
        next_cursor: next,
    }))
}
