//! The HTTP edge: rules every request and response obeys before and after any handler, so
//! no endpoint can forget them.
//!
//! - Text that PostgreSQL cannot store or that no legitimate client sends (NUL and other
//!   control characters) in the path or the query string is refused with 400
//!   `invalid_text`; JSON bodies get the same check in [`crate::json::ApiJson`].
//! - A request with more than one `Authorization` header is refused with 400: proxies and
//!   frameworks disagree on which one wins, and an attacker picks the disagreement.
//! - Every response carries `X-Content-Type-Options: nosniff` and, unless the handler chose
//!   otherwise, `Cache-Control: no-store` (tokens, API keys and tenant data must not sit
//!   in shared caches).
//! - Unknown routes and wrong methods answer in the standard error format.

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Whether `s` holds a character Docket refuses in text from clients: NUL and the other C0
/// control characters except tab, line feed and carriage return, and DEL.
pub fn has_forbidden_char(s: &str) -> bool {
    s.chars()
        .any(|c| (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) && (c as u32) < 0x80)
}

/// The 400 for refused text, naming where it was.
pub fn invalid_text(place: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_text",
        format!("the {place} contains a NUL byte or another control character, which Docket does not accept"),
    )
}

/// Percent-decodes `raw` (invalid UTF-8 after decoding counts as refused text too).
fn decoded_is_clean(raw: &str) -> bool {
    // `+` is a space in query strings; it decodes to nothing forbidden either way.
    match percent_encoding::percent_decode_str(raw).decode_utf8() {
        Ok(s) => !has_forbidden_char(&s),
        Err(_) => false,
    }
}

/// The edge rules on the way in and out.
pub async fn middleware(req: Request, next: Next) -> Response {
    if req.headers().get_all(header::AUTHORIZATION).iter().count() > 1 {
        return ApiError::bad_request("duplicate_authorization", "send exactly one Authorization header")
            .into_response()
            .with_edge_headers();
    }
    let uri = req.uri();
    if !decoded_is_clean(uri.path()) {
        return invalid_text("path").into_response().with_edge_headers();
    }
    if let Some(q) = uri.query()
        && !decoded_is_clean(q)
    {
        return invalid_text("query string").into_response().with_edge_headers();
    }
    next.run(req).await.with_edge_headers()
}

trait EdgeHeaders {
    fn with_edge_headers(self) -> Self;
}

impl EdgeHeaders for Response {
    fn with_edge_headers(mut self) -> Self {
        let h = self.headers_mut();
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
        self
    }
}

/// The answer for a path no route matches (trailing slashes included).
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; the API reference lists them (paths have no trailing slash)",
    )
}

/// The answer for a known path with a method it does not take.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that HTTP method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_and_ordinary_text_is_not() {
        for bad in ["a\0b", "\u{1}", "x\u{7f}", "\u{1b}[31m"] {
            assert!(has_forbidden_char(bad), "{bad:?}");
        }
        for good in ["Müller & Söhne", "tab\there", "line\nbreak", "Ω ≠ ∞", "日本"] {
            assert!(!has_forbidden_char(good), "{good:?}");
        }
    }

    #[test]
    fn encoded_nul_and_broken_utf8_are_refused() {
        assert!(!decoded_is_clean("filename=a%00b.zip"));
        assert!(!decoded_is_clean("action=%ff"));
        assert!(decoded_is_clean("filename=contract%20v2.pdf"));
        assert!(decoded_is_clean("/v1/documents/0b6f"));
    }
}
