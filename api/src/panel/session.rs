//! Who is signed in to the panel, and whether a state change really comes from the panel.
//!
//! The session is a random token in a `__Host-` cookie (HttpOnly, Secure, SameSite=Strict,
//! path `/`), looked up by its SHA-256 on every request. Every request that is not a read
//! must also (1) come from the panel's own origin: `Sec-Fetch-Site: same-origin` when the
//! browser sends it, and an `Origin` equal to the request's own host when it sends that,
//! and (2) carry the session's CSRF token in its form. A refusal is audited on the
//! platform chain. The API never reads this cookie: tenants' and operators' API calls use
//! bearer credentials only, so the cookie cannot be ridden into the JSON API.

use super::PanelError;
use crate::auth::{OperatorAuth, RequestCtx};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::crypto::constant_time_eq;
use docket_platform::identity::operator_sessions::{self, MAX_AGE, OperatorSession};

/// The session cookie's name. `__Host-`: only ever set by this host, over a secure
/// connection, for path `/` (browsers treat loopback as secure).
pub const COOKIE: &str = "__Host-docket_panel";

/// The largest form the panel accepts.
const MAX_FORM: usize = 16 * 1024;

/// The signed-in operator, for handlers behind [`guard`].
#[derive(Debug, Clone)]
pub struct PanelAuth {
    /// The same principal the `/ops` API uses, so the panel calls the same functions.
    pub op: OperatorAuth,
    /// The session (its CSRF token goes into every form).
    pub session: OperatorSession,
}

/// `Set-Cookie` for a new session.
pub fn session_cookie(token: &str) -> HeaderValue {
    let v = format!(
        "{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        MAX_AGE.as_secs()
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| cleared_cookie())
}

/// `Set-Cookie` that removes the session cookie.
pub fn cleared_cookie() -> HeaderValue {
    HeaderValue::from_static("__Host-docket_panel=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0")
}

/// The session token the browser sent, if any.
pub fn cookie_token(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Whether a state-changing request comes from the panel's own pages: `Sec-Fetch-Site`
/// (when sent) says same-origin, and `Origin` (when sent) names this very host.
pub fn same_origin(parts: &Parts) -> bool {
    if let Some(site) = parts.headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return false;
    }
    let Some(origin) = parts.headers.get(header::ORIGIN) else {
        return true;
    };
    let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let authority = origin
        .to_str()
        .ok()
        .and_then(|o| o.strip_prefix("https://").or_else(|| o.strip_prefix("http://")));
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

/// The `csrf` field of a URL-encoded form.
fn form_token(body: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
}

/// Records a refused panel request on the platform chain.
async fn audit_refusal(state: &AppState, ctx: &RequestCtx, actor: Actor, code: &str) {
    let ev = ctx.stamp(Event::new("ops.panel.request", Outcome::Refused, actor).reason(code.to_owned()));
    if let Err(e) = state.auditor.platform(state.control.pool(), ev).await {
        tracing::error!(error = %e, "recording a refused panel request");
    }
}

/// A page for someone not signed in: reads go to the sign-in page, anything else is 401.
fn signed_out(method: &Method) -> Response {
    if method == Method::GET || method == Method::HEAD {
        let mut r = Redirect::to("/ops/panel/login").into_response();
        r.headers_mut().insert(header::SET_COOKIE, cleared_cookie());
        return r;
    }
    PanelError::new(
        StatusCode::UNAUTHORIZED,
        "session_required",
        "your panel session has ended; sign in again",
    )
    .into_response()
}

/// The panel's gate: a live session for every page, and same-origin plus the CSRF token for
/// every state change. Puts [`PanelAuth`] into the request.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let ctx = RequestCtx::from_parts(&parts);
    let session = match cookie_token(&parts) {
        None => None,
        Some(t) => match operator_sessions::find(&state.control, &t).await {
            Ok(s) => s,
            Err(e) => return PanelError::internal(e).into_response(),
        },
    };
    let Some(session) = session else {
        return signed_out(&parts.method);
    };
    let actor = Actor::Operator(session.operator);
    let mut body = body;
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        if !same_origin(&parts) {
            audit_refusal(&state, &ctx, actor, "cross_site_request").await;
            return PanelError::new(
                StatusCode::FORBIDDEN,
                "cross_site_request",
                "this change did not come from the panel's own pages and was refused",
            )
            .into_response();
        }
        let bytes = match axum::body::to_bytes(body, MAX_FORM).await {
            Ok(b) => b,
            Err(_) => {
                return PanelError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "the form is larger than the panel accepts",
                )
                .into_response();
            }
        };
        let sent = form_token(&bytes).unwrap_or_default();
        if !constant_time_eq(sent.as_bytes(), session.csrf.as_bytes()) {
            audit_refusal(&state, &ctx, actor, "csrf_token_invalid").await;
            return PanelError::new(
                StatusCode::FORBIDDEN,
                "csrf_token_invalid",
                "the form's security token is missing or stale; reload the page and try again",
            )
            .into_response();
        }
        body = Body::from(bytes);
    }
    parts.extensions.insert(PanelAuth {
        op: OperatorAuth {
            operator: session.operator,
            ctx,
        },
        session,
    });
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request as HttpRequest;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut b = HttpRequest::builder().method("POST").uri("/ops/panel/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request").into_parts().0
    }

    #[test]
    fn only_the_panels_own_origin_may_change_state() {
        let host = ("host", "ops.docket.example:8443");
        assert!(same_origin(&parts(&[
            host,
            ("origin", "https://ops.docket.example:8443"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(
            same_origin(&parts(&[host])),
            "a client that sends neither header relies on the token"
        );
        assert!(!same_origin(&parts(&[host, ("origin", "https://evil.example")])));
        assert!(
            !same_origin(&parts(&[host, ("origin", "https://ops.docket.example:9999")])),
            "another port is another origin"
        );
        assert!(!same_origin(&parts(&[host, ("origin", "null")])));
        assert!(!same_origin(&parts(&[host, ("sec-fetch-site", "same-site")])));
        assert!(!same_origin(&parts(&[host, ("sec-fetch-site", "cross-site")])));
        assert!(
            !same_origin(&parts(&[("origin", "https://ops.docket.example:8443")])),
            "no Host to compare with"
        );
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_nothing_else_is_taken_for_it() {
        let p = parts(&[("cookie", "a=1; __Host-docket_panel=tok_en; b=2")]);
        assert_eq!(cookie_token(&p).as_deref(), Some("tok_en"));
        assert_eq!(cookie_token(&parts(&[("cookie", "docket_panel=x")])), None);
        assert_eq!(cookie_token(&parts(&[("cookie", "__Host-docket_panel=")])), None);
        let cookie = session_cookie("abc");
        let c = cookie.to_str().expect("ascii");
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
    }

    #[test]
    fn the_csrf_field_is_read_from_the_form() {
        assert_eq!(form_token(b"reason=x&csrf=a%2Bb").as_deref(), Some("a+b"));
        assert_eq!(form_token(b"reason=x"), None);
    }
}
