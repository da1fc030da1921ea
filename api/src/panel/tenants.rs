//! The tenants page: search and filters, this month's usage against the quota, and the
//! operator's actions on one tenant (suspend or resume with a reason, plan change,
//! rate-limit override), each through the `/ops` API's own function.

use super::session::PanelAuth;
use super::{Frame, PanelError, PanelForm, PanelQuery, audit, non_empty, render, thousands, when};
use crate::routes::ops::{StatusChange, change_status};
use crate::routes::ops_limits::{self, OverrideBody};
use crate::routes::parse_id;
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use docket_platform::ids::TenantId;
use docket_platform::overview::{self, TenantFilter, TenantRow};
use docket_platform::ratelimit::EndpointClass;
use serde::Deserialize;

/// `/ops/panel/tenants*`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ops/panel/tenants", get(page))
        .route("/ops/panel/tenants/{id}/suspend", post(suspend))
        .route("/ops/panel/tenants/{id}/resume", post(resume))
        .route("/ops/panel/tenants/{id}/plan", post(plan))
        .route("/ops/panel/tenants/{id}/rate-override", post(set_override))
        .route(
            "/ops/panel/tenants/{id}/rate-override/clear",
            post(clear_override),
        )
}

/// What a finished action says on the page it returns to (codes, never free text from the
/// request, so nothing can be reflected into the page).
fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "suspended" => "Tenant suspended: its requests are now refused with tenant_suspended.",
        "resumed" => "Tenant resumed.",
        "plan" => "Plan changed.",
        "override" => "Rate-limit override set.",
        "override_cleared" => "Rate-limit override removed.",
        _ => return None,
    })
}

#[derive(Deserialize, Default)]
struct Filters {
    q: Option<String>,
    plan: Option<String>,
    status: Option<String>,
    tier: Option<String>,
    done: Option<String>,
}

/// A tenant row, formatted.
struct Row {
    id: String,
    slug: String,
    name: String,
    plan: String,
    tier: String,
    status: String,
    suspended: bool,
    changeable: bool,
    documents: String,
    usage: String,
    usage_percent: i64,
    last_activity: String,
    overrides: Vec<String>,
}

impl From<TenantRow> for Row {
    fn from(t: TenantRow) -> Self {
        let usage = match t.quota {
            Some(q) => format!("{} / {}", thousands(t.tokens_this_month), thousands(q)),
            None => format!("{} (unlimited)", thousands(t.tokens_this_month)),
        };
        let usage_percent = match t.quota {
            Some(q) if q > 0 => (t.tokens_this_month.saturating_mul(100) / q).min(100),
            _ => 0,
        };
        Self {
            id: t.id.to_string(),
            suspended: t.status == "suspended",
            changeable: matches!(t.status.as_str(), "active" | "suspended"),
            slug: t.slug,
            name: t.name,
            plan: t.plan_id,
            tier: t.isolation_tier,
            status: t.status,
            documents: thousands(t.documents),
            usage,
            usage_percent,
            last_activity: t.last_activity.as_ref().map(when).unwrap_or_else(|| "—".into()),
            overrides: t.overrides,
        }
    }
}

#[derive(Template)]
#[template(path = "panel/tenants.html")]
struct TenantsPage {
    frame: Frame,
    q: String,
    plan: String,
    status: String,
    tier: String,
    plans: Vec<String>,
    statuses: &'static [&'static str],
    tiers: &'static [&'static str],
    classes: Vec<&'static str>,
    notice: Option<&'static str>,
    rows: Vec<Row>,
    limit_reached: bool,
}

async fn page(
    State(state): State<AppState>,
    Extension(auth): Extension<PanelAuth>,
    PanelQuery(f): PanelQuery<Filters>,
) -> Result<Response, PanelError> {
    let filter = TenantFilter {
        search: f.q.clone().unwrap_or_default(),
        plan: non_empty(f.plan.clone()),
        status: non_empty(f.status.clone()),
        tier: non_empty(f.tier.clone()),
    };
    let rows = overview::tenants(&state.control, &filter).await?;
    // The same audit event as `GET /ops/tenants`.
    audit(&state, &auth, "ops.tenants.list", "tenants").await?;
    Ok(render(&TenantsPage {
        frame: Frame::new(&auth, "tenants"),
        q: filter.search,
        plan: filter.plan.unwrap_or_default(),
        status: filter.status.unwrap_or_default(),
        tier: filter.tier.unwrap_or_default(),
        plans: overview::plan_ids(&state.control).await?,
        statuses: &["active", "suspended", "deleting", "deleted"],
        tiers: &["shared", "dedicated", "isolated"],
        classes: EndpointClass::ALL.iter().map(|c| c.as_str()).collect(),
        notice: f.done.as_deref().and_then(notice),
        limit_reached: rows.len() as i64 >= overview::PAGE_ROWS,
        rows: rows.into_iter().map(Row::from).collect(),
    }))
}

/// Back to the tenants page, narrowed to the tenant just changed.
fn back(slug: &str, done: &str) -> Response {
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("q", slug)
        .append_pair("done", done)
        .finish();
    axum::response::IntoResponse::into_response(Redirect::to(&format!("/ops/panel/tenants?{q}")))
}

#[derive(Deserialize)]
struct ReasonForm {
    reason: Option<String>,
    slug: Option<String>,
}

fn tenant_id(id: &str) -> Result<TenantId, PanelError> {
    Ok(TenantId(parse_id(id, "tenant")?))
}

/// The panel asks for a reason every time (the API leaves it optional): it goes into both
/// audit chains and into the review of operator actions. What a reason may hold is checked
/// by the functions the API shares ([`change_status`], the override's own validation).
fn required_reason(r: Option<String>) -> Result<String, PanelError> {
    non_empty(r).ok_or_else(|| PanelError::invalid("invalid_reason", "a reason is required"))
}

async fn status_change(
    state: &AppState,
    auth: &PanelAuth,
    id: &str,
    change: StatusChange,
    form: ReasonForm,
) -> Result<Response, PanelError> {
    let id = tenant_id(id)?;
    let reason = required_reason(form.reason)?;
    change_status(state, &auth.op, id, change, Some(reason)).await?;
    let done = match change {
        StatusChange::Suspend => "suspended",
        StatusChange::Resume => "resumed",
    };
    Ok(back(&form.slug.unwrap_or_default(), done))
}

async fn suspend(
    State(state): State<AppState>,
    Extension(auth): Extension<PanelAuth>,
    Path(id): Path<String>,
    PanelForm(form): PanelForm<ReasonForm>,
) -> Result<Response, PanelError> {
    status_change(&state, &auth, &id, StatusChange::Suspend, form).await
}

async fn resume(
    State(state): State<AppState>,
    Extension(auth): Extension<PanelAuth>,
    Path(id): Path<String>,
    PanelForm(form): PanelForm<ReasonForm>,
) -> Result<Response, PanelError> {
    status_change(&state, &auth, &id, StatusChange::Resume, form).await
}

#[derive(Deserialize)]
struct PlanForm {
    plan: String,
    slug: Option<String>,
}

async fn plan(
    State(state): State<AppState>,
    Extension(auth): Extension<PanelAuth>,
    Path(id): Path<String>,
    PanelForm(form): PanelForm<PlanForm>,
) -> Result<Response, PanelError> {
    ops_limits::apply_plan(&state, &auth.op, tenant_id(&id)?, form.plan.trim()).await?;
    Ok(back(&form.slug.unwrap_or_default(), "plan"))
}

#[derive(Deserialize)]
struct OverrideForm {
    class: String,
    per_minute: String,
    burst: String,
    expires_in_minutes: String,
    reason: Option<String>,
    slug: Option<String>,
}

fn number(field: &str, v: &str) -> Result<u64, PanelError> {
    v.trim()
        .parse()
        .map_err(|_| PanelError::invalid("invalid_limit", format!("{field} must be a whole number")))
}

async fn set_override(
    State(state): State<AppState>,
    Extension(auth): Extension<PanelAuth>,
    Path(id): Path<String>,
    PanelForm(form): PanelForm<OverrideForm>,
) -> Result<Response, PanelError> {
    let too_big = |f: &str| PanelError::invalid("invalid_limit", format!("{f} is too large"));
    let body = OverrideBody {
        per_minute: u32::try_from(number("per minute", &form.per_minute)?)
            .map_err(|_| too_big("per minute"))?,
        burst: u32::try_from(number("burst", &form.burst)?).map_err(|_| too_big("burst"))?,
        expires_in_secs: number("expires in (minutes)", &form.expires_in_minutes)?
            .checked_mul(60)
            .ok_or_else(|| too_big("expires in"))?,
        reason: required_reason(form.reason)?,
    };
    ops_limits::apply_override(&state, &auth.op, tenant_id(&id)?, form.class, body).await?;
    Ok(back(&form.slug.unwrap_or_default(), "override"))
}

#[derive(Deserialize)]
struct ClearForm {
    class: String,
    slug: Option<String>,
}

async fn clear_override(
    State(state): State<AppState>,
    Extension(auth): Extension<PanelAuth>,
    Path(id): Path<String>,
    PanelForm(form): PanelForm<ClearForm>,
) -> Result<Response, PanelError> {
    ops_limits::clear(&state, &auth.op, tenant_id(&id)?, &form.class).await?;
    Ok(back(&form.slug.unwrap_or_default(), "override_cleared"))
}
