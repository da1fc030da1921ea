//! Facts about the request that audit events carry: request id and client address.

use crate::rate::RateSlot;
use crate::request_id::RequestId;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

/// Request id and client address of the current request.
#[derive(Debug, Clone, Default)]
pub struct RequestCtx {
    /// `X-Request-Id`.
    pub request_id: Option<String>,
    /// Peer address (no proxy headers are trusted).
    pub ip: Option<IpAddr>,
    /// Where the rate limiter's decision goes for the response headers.
    pub rate: RateSlot,
}

impl RequestCtx {
    /// Reads the context from request parts.
    pub fn from_parts(parts: &Parts) -> Self {
        Self {
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
            ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
            rate: parts.extensions.get::<RateSlot>().cloned().unwrap_or_default(),
        }
    }

    /// Stamps an audit event with the request id and client address.
    pub fn stamp(&self, ev: docket_platform::audit::Event) -> docket_platform::audit::Event {
        ev.request_id(self.request_id.clone()).ip(self.ip)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestCtx {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self::from_parts(parts))
    }
}
