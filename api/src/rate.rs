//! `RateLimit-*` headers: the limiter runs where the tenant and capability are known (in
//! `TenantAuth::require`), and its decision reaches the response through a slot this
//! middleware puts into the request, so refusals and successes both carry the headers.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use docket_platform::ratelimit::Decision;
use std::sync::{Arc, Mutex};

/// Where the request's rate decision is left for the response.
#[derive(Debug, Clone, Default)]
pub struct RateSlot(Arc<Mutex<Option<Decision>>>);

impl RateSlot {
    /// Records the decision.
    pub fn set(&self, d: Decision) {
        if let Ok(mut s) = self.0.lock() {
            *s = Some(d);
        }
    }

    fn get(&self) -> Option<Decision> {
        self.0.lock().ok().and_then(|s| *s)
    }
}

/// Adds the headers when a limit applied to the request.
pub async fn headers(mut req: Request, next: Next) -> Response {
    let slot = RateSlot::default();
    req.extensions_mut().insert(slot.clone());
    let mut resp = next.run(req).await;
    if let Some(d) = slot.get() {
        let h = resp.headers_mut();
        h.insert("ratelimit-limit", HeaderValue::from(d.limit));
        h.insert("ratelimit-remaining", HeaderValue::from(d.remaining));
        h.insert("ratelimit-reset", HeaderValue::from(d.reset_secs));
    }
    resp
}
