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
/// (when sent) says same-origin, and `Origin` (when sent) is the panel's configured public
/// origin (`DOCKET_PANEL_ORIGIN`, exactly), or without one names the request's own host
/// (`Host`, or the URI's authority under HTTP/2).
pub fn same_origin(parts: &Parts, configured: Option<&str>) -> bool {
    if let Some(site) = parts.headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return false;
    }
    let Some(origin) = parts.headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if let Some(expected) = configured {
        return origin.eq_ignore_ascii_case(expected);
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

/// Whether the request is htmx's own background fetch (the imports table's refresh).
fn background(parts: &Parts) -> bool {
    parts
        .headers
        .get("hx-request")
        .is_some_and(|v| v.as_bytes() == b"true")
}

/// The `csrf` field of a URL-encoded form.
fn form_token(body: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
}

/// Whether a form field holds text Docket refuses everywhere (the edge's rule for paths and
/// query strings, and `ApiJson`'s for JSON bodies).
fn form_has_forbidden_char(body: &[u8]) -> bool {
    url::form_urlencoded::parse(body)
        .any(|(k, v)| crate::edge::has_forbidden_char(&k) || crate::edge::has_forbidden_char(&v))
}

/// Records a refused panel request on the platform chain.
async fn audit_refusal(state: &AppState, ctx: &RequestCtx, actor: Actor, code: &str) {
    let ev = ctx.stamp(Event::new("ops.panel.request", Outcome::Refused, actor).reason(code.to_owned()));
    if let Err(e) = state.auditor.platform(state.control.pool(), ev).await {
        tracing::error!(error = %e, "recording a refused panel request");
    }
}

/// A page for someone not signed in: reads go to the sign-in page, anything else is 401
/// (htmx's refreshes too, told to load the sign-in page instead of swapping it into a
/// table). A cookie that was sent and matched no live session is removed; none is removed
/// when none was sent (a cross-site link arrives without it under SameSite=Strict).
fn signed_out(parts: &Parts, sent_cookie: bool) -> Response {
    let mut r = if background(parts) {
        let mut r = PanelError::new(
            StatusCode::UNAUTHORIZED,
            "session_required",
            "your panel session has ended; sign in again",
        )
        .into_response();
        r.headers_mut()
            .insert("hx-redirect", HeaderValue::from_static("/ops/panel/login"));
        r
    } else if parts.method == Method::GET || parts.method == Method::HEAD {
        Redirect::to("/ops/panel/login").into_response()
    } else {
        PanelError::new(
            StatusCode::UNAUTHORIZED,
            "session_required",
            "your panel session has ended; sign in again",
        )
        .into_response()
    };
    if sent_cookie {
        r.headers_mut().insert(header::SET_COOKIE, cleared_cookie());
    }
    r
}

/// The panel's gate: a live session for every page, and same-origin plus the CSRF token for
/// every state change. Puts [`PanelAuth`] into the request.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let ctx = RequestCtx::from_parts(&parts);
    let token = cookie_token(&parts);
    let session = match &token {
        None => None,
        Some(t) => match operator_sessions::find(&state.control, t, !background(&parts)).await {
            Ok(s) => s,
            Err(e) => return PanelError::internal(e).into_response(),
        },
    };
    let Some(session) = session else {
        return signed_out(&parts, token.is_some());
    };
    let actor = Actor::Operator(session.operator);
    let mut body = body;
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        if !same_origin(&parts, state.config.panel_origin.as_deref()) {
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
        if form_has_forbidden_char(&bytes) {
            return PanelError(crate::edge::invalid_text("form")).into_response();
        }
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
        let same = |h: &[(&str, &str)]| same_origin(&parts(h), None);
        assert!(same(&[
            host,
            ("origin", "https://ops.docket.example:8443"),
            ("sec-fetch-site", "same-origin")
        ]));
        assert!(
            same(&[host]),
            "a client that sends neither header relies on the token"
        );
        assert!(!same(&[host, ("origin", "https://evil.example")]));
        assert!(
            !same(&[host, ("origin", "https://ops.docket.example:9999")]),
            "another port is another origin"
        );
        assert!(!same(&[host, ("origin", "null")]));
        assert!(!same(&[host, ("sec-fetch-site", "same-site")]));
        assert!(!same(&[host, ("sec-fetch-site", "cross-site")]));
        assert!(
            !same(&[("origin", "https://ops.docket.example:8443")]),
            "no Host to compare with"
        );
    }

    #[test]
    fn a_configured_origin_is_compared_whole_whatever_the_proxy_sent_as_host() {
        let public = Some("https://ops.docket.example");
        let behind_proxy = ("host", "10.0.0.7:8080");
        assert!(same_origin(
            &parts(&[behind_proxy, ("origin", "https://ops.docket.example")]),
            public
        ));
        assert!(
            !same_origin(
                &parts(&[behind_proxy, ("origin", "http://ops.docket.example")]),
                public
            ),
            "the scheme counts"
        );
        assert!(!same_origin(
            &parts(&[behind_proxy, ("origin", "http://10.0.0.7:8080")]),
            public
        ));
    }

    #[test]
    fn control_characters_in_a_form_are_found_encoded() {
        assert!(form_has_forbidden_char(b"plan=a%00b"));
        assert!(form_has_forbidden_char(b"reason=x%1B%5B31m"));
        assert!(!form_has_forbidden_char(
            b"reason=M%C3%BCller+%26+S%C3%B6hne%0Aline+two"
        ));
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
