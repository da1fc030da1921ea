//! The operator panel (`/ops/panel`): server-rendered pages over the same functions and the
//! same audit events as the `/ops` API, readable without JavaScript (htmx, vendored, only
//! refreshes the live parts). A page is one template under `templates/panel/` and one
//! handler here; [`router`] lists them.

mod activity;
mod records;
pub mod session;
mod sign_in;
mod switches;
mod tenants;

use crate::error::ApiError;
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use docket_platform::audit::Outcome;
use session::PanelAuth;

/// What every page's frame shows: who is signed in, the sign-out form's token, where we are.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The operator's email.
    pub email: String,
    /// The session's CSRF token (every form carries it).
    pub csrf: String,
    /// The navigation entry to highlight.
    pub active: &'static str,
    /// The pages, in navigation order: (key, path, label).
    pub nav: &'static [(&'static str, &'static str, &'static str)],
}

/// The navigation: adding a page is one entry here, one template and one handler.
const NAV: &[(&str, &str, &str)] = &[
    ("tenants", "/ops/panel/tenants", "Tenants"),
    ("switches", "/ops/panel/switches", "Incident switches"),
    ("imports", "/ops/panel/imports", "Imports"),
    ("jobs", "/ops/panel/jobs", "Jobs"),
    ("billing", "/ops/panel/billing", "Billing"),
    ("audit", "/ops/panel/audit", "Audit"),
    ("requests", "/ops/panel/requests", "Exports & deletions"),
];

impl Frame {
    /// The frame of page `active` for this session.
    pub fn new(auth: &PanelAuth, active: &'static str) -> Self {
        Self {
            email: auth.session.email.clone(),
            csrf: auth.session.csrf.clone(),
            active,
            nav: NAV,
        }
    }
}

/// `/ops/panel/*`.
pub fn router(state: AppState) -> Router<AppState> {
    let guarded = Router::new()
        .merge(tenants::router())
        .merge(switches::router())
        .merge(activity::router())
        .merge(records::router())
        .merge(sign_in::guarded_router())
        .route_layer(axum::middleware::from_fn_with_state(state, session::guard));
    Router::new()
        .route("/ops/panel", get(|| async { Redirect::to("/ops/panel/tenants") }))
        .route("/ops/panel/assets/htmx.min.js", get(htmx))
        .route("/ops/panel/assets/panel.css", get(css))
        .merge(sign_in::router())
        .merge(guarded)
}

/// htmx 2.0.11 (0BSD, `assets/htmx-LICENSE`), vendored: the panel loads nothing from
/// elsewhere.
async fn htmx() -> Response {
    asset(
        include_bytes!("../../assets/htmx-2.0.11.min.js"),
        "text/javascript; charset=utf-8",
    )
}

async fn css() -> Response {
    asset(
        include_bytes!("../../assets/panel.css"),
        "text/css; charset=utf-8",
    )
}

fn asset(body: &'static [u8], content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// Headers every panel page carries: nothing from other origins, no framing, no referrer
/// beyond the panel (`same-origin`, not `no-referrer`: under `no-referrer` browsers send
/// `Origin: null` on form posts, which the origin check must refuse).
fn page_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    resp
}

/// Renders a template as a page (500 if it cannot be rendered).
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => page_headers(Html(html).into_response()),
        Err(e) => PanelError::internal(e).into_response(),
    }
}

/// A form the panel reads: a missing or malformed field is the panel's 400 `invalid_form`
/// page (415 for a body that is not a form), not axum's plain-text rejection.
#[derive(Debug)]
pub struct PanelForm<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for PanelForm<T> {
    type Rejection = PanelError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, PanelError> {
        match axum::extract::Form::<T>::from_request(req, state).await {
            Ok(axum::extract::Form(v)) => Ok(Self(v)),
            Err(e) if e.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE => Err(PanelError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the form as application/x-www-form-urlencoded",
            )),
            Err(e) => Err(PanelError::invalid(
                "invalid_form",
                format!("the form is incomplete or malformed: {}", e.body_text()),
            )),
        }
    }
}

/// A page's query string, refused like [`PanelForm`] (400 `invalid_query`).
#[derive(Debug)]
pub struct PanelQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for PanelQuery<T> {
    type Rejection = PanelError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, PanelError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(e) => Err(PanelError::invalid(
                "invalid_query",
                format!("the page's query string is malformed: {}", e.body_text()),
            )),
        }
    }
}

/// A refusal or failure shown as a page: the same status, code and sentence as the API's.
#[derive(Debug)]
pub struct PanelError(
    /// The status, code and sentence.
    pub ApiError,
);

impl PanelError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self(ApiError::new(status, code, message))
    }

    /// 500: logs the cause, shows nothing of it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self(ApiError::internal(cause))
    }

    /// 400 for a form field.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self(ApiError::bad_request(code, message))
    }
}

impl From<ApiError> for PanelError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<docket_platform::db::DbError> for PanelError {
    fn from(e: docket_platform::db::DbError) -> Self {
        Self::internal(e)
    }
}

#[derive(Template)]
#[template(path = "panel/error.html")]
struct ErrorPage<'a> {
    status: u16,
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for PanelError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            status: self.0.status.as_u16(),
            code: self.0.code,
            message: &self.0.message,
        };
        let mut resp = render(&page);
        *resp.status_mut() = self.0.status;
        if let Some(secs) = self.0.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Records that an operator looked at a page (`ops.panel.view`), on the platform chain.
pub async fn audit_view(state: &AppState, auth: &PanelAuth, page: &'static str) -> Result<(), PanelError> {
    audit(state, auth, "ops.panel.view", page).await
}

/// Records a read under the same action the `/ops` API uses for it.
pub async fn audit(
    state: &AppState,
    auth: &PanelAuth,
    action: &str,
    page: &'static str,
) -> Result<(), PanelError> {
    state
        .auditor
        .platform(
            state.control.pool(),
            auth.op.event(action, Outcome::Allowed).detail("page", page),
        )
        .await
        .map(drop)
        .map_err(PanelError::internal)
}

/// The tenant an operator named by slug in a form or filter (400 `unknown_tenant` if none).
pub async fn tenant_by_slug(
    state: &AppState,
    slug: &str,
) -> Result<docket_platform::tenants::Tenant, PanelError> {
    docket_platform::tenants::find_by_slug(&state.db, slug)
        .await
        .map_err(PanelError::internal)?
        .ok_or_else(|| PanelError::invalid("unknown_tenant", format!("no tenant has the slug {slug:?}")))
}

/// `2026-12-07 16:04 UTC`.
pub fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// An empty form field is no value.
pub fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(-1234567), "-1,234,567");
    }
}
