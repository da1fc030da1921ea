//! The incident switches page: what is in force (global and per tenant, by endpoint class),
//! set one with a reason and an optional expiry, lift one. Through the `/ops/switches`
//! functions, with their validation and audit events.

use super::session::PanelAuth;
use super::{Frame, PanelError, PanelForm, PanelQuery, audit, non_empty, render, tenant_by_slug, when};
use crate::routes::parse_id;
use crate::routes::switches::{SwitchRequest, lift_switch, set_switch};
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use docket_platform::ids::TenantId;
use docket_platform::ratelimit::EndpointClass;
use docket_platform::{switches, tenants};
use serde::Deserialize;

/// `/ops/panel/switches*`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ops/panel/switches", get(page).post(set))
        .route("/ops/panel/switches/{id}/lift", post(lift))
}

struct Row {
    id: String,
    class: String,
    scope: String,
    reason: String,
    created_by: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "panel/switches.html")]
struct SwitchesPage {
    frame: Frame,
    classes: Vec<&'static str>,
    notice: Option<&'static str>,
    rows: Vec<Row>,
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

async fn page(
    State(state): State<AppState>,
    Extension(auth): Extension<PanelAuth>,
    PanelQuery(d): PanelQuery<Done>,
) -> Result<Response, PanelError> {
    let list = switches::active(&state.db).await?;
    let mut rows = Vec::with_capacity(list.len());
    for s in list {
        let scope = match s.target_tenant {
            None => "every tenant".to_owned(),
            Some(id) => match tenants::get(&state.db, TenantId(id))
                .await
                .map_err(PanelError::internal)?
            {
                Some(t) => format!("tenant {}", t.slug),
                None => format!("tenant {id}"),
            },
        };
        rows.push(Row {
            id: s.id.to_string(),
            class: s.class,
            scope,
            reason: s.reason,
            created_by: s.created_by,
            expires: s
                .expires_at
                .as_ref()
                .map(when)
                .unwrap_or_else(|| "until lifted".into()),
        });
    }
    // The same audit event as `GET /ops/switches`.
    audit(&state, &auth, "ops.switches.list", "switches").await?;
    let notice = match d.done.as_deref() {
        Some("set") => Some("Switch set: it applies on every API process within a second."),
        Some("lifted") => Some("Switch lifted."),
        _ => None,
    };
    Ok(render(&SwitchesPage {
        frame: Frame::new(&auth, "switches"),
        classes: EndpointClass::ALL.iter().map(|c| c.as_str()).collect(),
        notice,
        rows,
    }))
}

#[derive(Deserialize)]
struct SetForm {
    class: String,
    /// A tenant's slug; empty: every tenant.
    tenant: Option<String>,
    reason: String,
    /// Empty: until lifted.
    expires_in_minutes: Option<String>,
}

async fn set(
    State(state): State<AppState>,
    Extension(auth): Extension<PanelAuth>,
    PanelForm(form): PanelForm<SetForm>,
) -> Result<Response, PanelError> {
    let tenant_id = match non_empty(form.tenant) {
        None => None,
        Some(slug) => Some(tenant_by_slug(&state, &slug).await?.id.0),
    };
    let expires_in_secs = match non_empty(form.expires_in_minutes) {
        None => None,
        Some(m) => Some(
            m.parse::<u64>()
                .ok()
                .and_then(|m| m.checked_mul(60))
                .ok_or_else(|| {
                    PanelError::invalid("invalid_expiry", "the expiry must be a whole number of minutes")
                })?,
        ),
    };
    let request = SwitchRequest {
        class: form.class,
        tenant_id,
        reason: form.reason,
        expires_in_secs,
    };
    set_switch(&state, &auth.op, request).await?;
    Ok(Redirect::to("/ops/panel/switches?done=set").into_response())
}

async fn lift(
    State(state): State<AppState>,
    Extension(auth): Extension<PanelAuth>,
    Path(id): Path<String>,
) -> Result<Response, PanelError> {
    lift_switch(&state, &auth.op, parse_id(&id, "switch")?).await?;
    Ok(Redirect::to("/ops/panel/switches?done=lifted").into_response())
}
