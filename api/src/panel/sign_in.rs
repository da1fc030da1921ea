//! Signing in to the panel and out again. The password check is the `/ops` login's own
//! ([`crate::routes::ops::authenticate`]: throttle, lockout, `ops.login` audit); the panel
//! then starts a server-side session instead of issuing a token.

use super::session::{self, PanelAuth, cleared_cookie, session_cookie};
use super::{PanelError, PanelForm, render};
use crate::auth::RequestCtx;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Extension, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, extract::FromRequestParts};
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::identity::operator_sessions;
use serde::Deserialize;

/// The sign-in page and form (no session needed).
pub fn router() -> Router<AppState> {
    Router::new().route("/ops/panel/login", get(page).post(sign_in))
}

/// Sign-out (behind the session guard: it needs the CSRF token).
pub fn guarded_router() -> Router<AppState> {
    Router::new().route("/ops/panel/logout", post(sign_out))
}

#[derive(Template)]
#[template(path = "panel/login.html")]
struct LoginPage {
    email: String,
    error: Option<String>,
}

async fn page() -> Response {
    render(&LoginPage {
        email: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

/// The origin check needs the request's headers; the form is read after it.
struct Origin(bool);

impl FromRequestParts<AppState> for Origin {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(session::same_origin(
            parts,
            state.config.panel_origin.as_deref(),
        )))
    }
}

/// The session cookie the browser came with, if any (ended when it signs in again).
struct Presented(Option<String>);

impl FromRequestParts<AppState> for Presented {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(session::cookie_token(parts)))
    }
}

async fn sign_in(
    State(state): State<AppState>,
    ctx: RequestCtx,
    Origin(same_origin): Origin,
    Presented(presented): Presented,
    PanelForm(form): PanelForm<LoginForm>,
) -> Response {
    // A sign-in posted from another site would sign the browser in as someone else's
    // operator (login CSRF).
    if !same_origin {
        let ev = ctx.stamp(
            Event::new("ops.login", Outcome::Refused, Actor::Anonymous)
                .reason("cross_site_request".to_owned()),
        );
        if let Err(e) = state.auditor.platform(state.control.pool(), ev).await {
            return PanelError::internal(e).into_response();
        }
        return PanelError::new(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            "sign in from the panel's own page",
        )
        .into_response();
    }
    let id = match crate::routes::ops::authenticate(&state, &ctx, &form.email, form.password).await {
        Ok(id) => id,
        Err(e) => {
            let status = e.status;
            let mut resp = render(&LoginPage {
                email: form.email,
                error: Some(e.message),
            });
            *resp.status_mut() = status;
            return resp;
        }
    };
    match start(&state, &ctx, id, presented).await {
        Ok(token) => {
            let mut resp = Redirect::to("/ops/panel/tenants").into_response();
            resp.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&token));
            resp
        }
        Err(e) => e.into_response(),
    }
}

/// Ends the session the browser came with (one browser, one session), starts a new one and
/// audits it (`ops.panel.session_start`, naming the session, so the sign-in, the session's
/// actions and its end can be told apart from an API token's).
async fn start(
    state: &AppState,
    ctx: &RequestCtx,
    id: docket_platform::ids::OperatorId,
    presented: Option<String>,
) -> Result<String, PanelError> {
    if let Some(old) = presented
        && let Some(s) = operator_sessions::find(&state.control, &old, false).await?
    {
        operator_sessions::end(&state.control, s.id).await?;
    }
    let (token, session) = operator_sessions::start(&state.control, id).await?;
    let ev = ctx
        .stamp(Event::new(
            "ops.panel.session_start",
            Outcome::Allowed,
            Actor::Operator(id),
        ))
        .target(format!("session:{}", session.id));
    state
        .auditor
        .platform(state.control.pool(), ev)
        .await
        .map_err(PanelError::internal)?;
    Ok(token)
}

async fn sign_out(
    State(state): State<AppState>,
    Extension(auth): Extension<PanelAuth>,
) -> Result<Response, PanelError> {
    operator_sessions::end(&state.control, auth.session.id).await?;
    state
        .auditor
        .platform(
            state.control.pool(),
            auth.op
                .event("ops.logout", Outcome::Allowed)
                .target(format!("session:{}", auth.session.id)),
        )
        .await
        .map_err(PanelError::internal)?;
    let mut resp = Redirect::to("/ops/panel/login").into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cleared_cookie());
    Ok(resp)
}
