//! Records operators read: billing (runs, invoices per month, margin per plan), an audit
//! chain with its verification, and exports and deletions.

use super::session::PanelAuth;
use super::{Frame, PanelError, PanelQuery, non_empty, render, tenant_by_slug, thousands, when};
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Extension, State};
use axum::response::Response;
use axum::routing::get;
use docket_platform::audit::verify;
use docket_platform::billing::compute::Month;
use docket_platform::billing::margins;
use docket_platform::overview;
use serde::Deserialize;

/// `/ops/panel/billing`, `/ops/panel/audit`, `/ops/panel/requests`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ops/panel/billing", get(billing))
        .route("/ops/panel/audit", get(audit))
        .route("/ops/panel/requests", get(requests))
}

/// `12.34 usd`.
fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02} {currency}", thousands((c / 100) as i64), c % 100)
}

struct RunLine {
    period: String,
    origin: String,
    dry_run: bool,
    status: String,
    tenants: i32,
    queued: i32,
    started: String,
    error: String,
}

struct PeriodLine {
    period: String,
    invoices: i64,
    paid: i64,
    payment_failed: i64,
    not_pushed: i64,
    total: String,
}

struct PlanLine {
    plan: String,
    tenants: usize,
    revenue: String,
    cost: String,
    margin: String,
}

#[derive(Template)]
#[template(path = "panel/billing.html")]
struct BillingPage {
    frame: Frame,
    runs: Vec<RunLine>,
    periods: Vec<PeriodLine>,
    margin_month: String,
    plans: Vec<PlanLine>,
}

async fn billing(
    State(state): State<AppState>,
    Extension(auth): Extension<PanelAuth>,
) -> Result<Response, PanelError> {
    let runs = overview::billing_runs(&state.control)
        .await?
        .into_iter()
        .map(|r| RunLine {
            period: r.period.format("%Y-%m").to_string(),
            origin: r.origin,
            dry_run: r.dry_run,
            status: r.status,
            tenants: r.tenants,
            queued: r.queued,
            started: when(&r.started_at),
            error: r.error.unwrap_or_default(),
        })
        .collect();
    let periods = overview::invoice_periods(&state.control)
        .await?
        .into_iter()
        .map(|p| PeriodLine {
            period: p.period.format("%Y-%m").to_string(),
            invoices: p.invoices,
            paid: p.paid,
            payment_failed: p.payment_failed,
            not_pushed: p.not_pushed,
            total: if p.currencies.contains(',') {
                format!("mixed ({})", p.currencies)
            } else {
                money(p.total_cents, &p.currencies)
            },
        })
        .collect();
    // The month billed last: the one before this.
    let month = Month::of(chrono::Utc::now()).previous();
    let report = margins::report(&state.control, &state.config.billing.cost_model, month)
        .await
        .map_err(PanelError::internal)?;
    let plans = report
        .plans
        .iter()
        .map(|p| PlanLine {
            plan: p.plan_id.clone(),
            tenants: p.tenants,
            revenue: money(p.revenue_cents, &p.currency),
            cost: money(p.cost_cents, &p.currency),
            margin: money(p.margin_cents, &p.currency),
        })
        .collect();
    // The `/ops` billing reads' own events.
    super::audit(&state, &auth, "ops.billing.runs", "billing").await?;
    super::audit(&state, &auth, "ops.invoices.list", "billing").await?;
    crate::routes::invoices::audit_read(&state, &auth.op, "ops.billing.margins", month).await?;
    Ok(render(&BillingPage {
        frame: Frame::new(&auth, "billing"),
        runs,
        periods,
        margin_month: month.to_string(),
        plans,
    }))
}

#[derive(Deserialize)]
struct AuditFilter {
    /// A tenant's slug; empty: the platform chain.
    tenant: Option<String>,
    /// Actions starting with this.
    action: Option<String>,
}

struct EventLine {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    target: String,
    outcome: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "panel/audit.html")]
struct AuditPage {
    frame: Frame,
    tenant: String,
    action: String,
    chain: String,
    verified: bool,
    events_checked: u64,
    first_break: String,
    rows: Vec<EventLine>,
}

async fn audit(
    State(state): State<AppState>,
    Extension(auth): Extension<PanelAuth>,
    PanelQuery(f): PanelQuery<AuditFilter>,
) -> Result<Response, PanelError> {
    let slug = non_empty(f.tenant).unwrap_or_default();
    let action = non_empty(f.action).unwrap_or_default();
    let tenant = match slug.is_empty() {
        true => None,
        false => Some(tenant_by_slug(&state, &slug).await?),
    };
    let pool = state.control.pool();
    let report = match &tenant {
        Some(t) => verify::tenant(pool, t.id).await,
        None => verify::platform(pool).await,
    }
    .map_err(PanelError::internal)?;
    let rows = overview::audit_events(&state.control, tenant.as_ref().map(|t| t.id), &action)
        .await?
        .into_iter()
        .map(|e| EventLine {
            seq: e.seq,
            at: e.occurred_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            actor: match e.actor_id {
                Some(id) => format!("{} {id}", e.actor_kind),
                None => e.actor_kind,
            },
            action: e.action,
            target: e.target.unwrap_or_default(),
            outcome: e.outcome,
            // Operators' reasons are in the details; refusals' rules in the reason column.
            reason: e
                .reason
                .or_else(|| {
                    e.details
                        .get("reason")
                        .and_then(|r| r.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_default(),
        })
        .collect();
    // Reading a tenant's chain is recorded on that chain (as `/ops` reads of a tenant's usage
    // are), reading the platform's on the platform's.
    let ev = auth
        .op
        .event("ops.audit.read", docket_platform::audit::Outcome::Allowed)
        .detail("action_prefix", action.clone());
    match &tenant {
        Some(t) => {
            let tx = state.control.pool().begin().await.map_err(PanelError::internal)?;
            let mut tx = docket_platform::db::ControlDb::scope_to_tenant(tx, t.id).await?;
            let ev = ev.target(format!("tenant:{}", t.id));
            state
                .auditor
                .operator_change(&mut tx, ev)
                .await
                .map_err(PanelError::internal)?;
            tx.commit().await.map_err(PanelError::internal)?;
        }
        None => {
            state
                .auditor
                .platform(state.control.pool(), ev.target("platform"))
                .await
                .map_err(PanelError::internal)?;
        }
    }
    Ok(render(&AuditPage {
        frame: Frame::new(&auth, "audit"),
        chain: tenant
            .as_ref()
            .map(|t| format!("tenant {}", t.slug))
            .unwrap_or_else(|| "platform".into()),
        tenant: slug,
        action,
        verified: report.ok,
        events_checked: report.events,
        first_break: report
            .first_break
            .map(|b| format!("row {}: {}", b.seq, b.problem))
            .unwrap_or_default(),
        rows,
    }))
}

struct RequestLine {
    kind: String,
    id: String,
    slug: String,
    status: String,
    error: String,
    created: String,
    finished: String,
}

#[derive(Template)]
#[template(path = "panel/requests.html")]
struct RequestsPage {
    frame: Frame,
    rows: Vec<RequestLine>,
}

async fn requests(
    State(state): State<AppState>,
    Extension(auth): Extension<PanelAuth>,
) -> Result<Response, PanelError> {
    let rows = overview::requests(&state.control)
        .await?
        .into_iter()
        .map(|r| RequestLine {
            kind: r.kind,
            id: r.id.to_string(),
            slug: r.slug,
            status: r.status,
            error: r.error_code.unwrap_or_default(),
            created: when(&r.created_at),
            finished: r.finished_at.as_ref().map(when).unwrap_or_default(),
        })
        .collect();
    // The `/ops` list reads' own events.
    super::audit(&state, &auth, "ops.exports.list", "requests").await?;
    super::audit(&state, &auth, "ops.deletions.list", "requests").await?;
    Ok(render(&RequestsPage {
        frame: Frame::new(&auth, "requests"),
        rows,
    }))
}
