//! Signing in to the panel and out again. The password check is the `/ops` login's own
//! ([`crate::routes::ops::authenticate`]: throttle, lockout, `ops.login` audit); the panel
//! then starts a server-side session instead of issuing a token.

use super::session::{self, PanelAuth, cleared_cookie, session_cookie};
use super::{PanelError, render};
use crate::auth::RequestCtx;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Extension, Form, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, extract::FromRequestParts};
use docket_platform::audit::Outcome;
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
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(session::same_origin(parts)))
    }
}

async fn sign_in(
    State(state): State<AppState>,
    ctx: RequestCtx,
    Origin(same_origin): Origin,
    Form(form): Form<LoginForm>,
) -> Response {
    // A sign-in posted from another site would sign the browser in as someone else's
    // operator (login CSRF).
    if !same_origin {
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
    match operator_sessions::start(&state.control, id).await {
        Ok((token, _)) => {
            let mut resp = Redirect::to("/ops/panel/tenants").into_response();
            resp.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&token));
            resp
        }
        Err(e) => PanelError::internal(e).into_response(),
    }
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
