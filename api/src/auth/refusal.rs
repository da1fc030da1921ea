//! Refusing a request: audit the refusal with its rule, then answer with the error.

use super::context::RequestCtx;
use crate::error::ApiError;
use crate::state::AppState;
use axum::http::StatusCode;
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::ids::TenantId;

/// How long repeated anonymous refusals from one address are recorded as one event.
pub const ANONYMOUS_WINDOW_SECS: u64 = 60;

/// Where a refusal is recorded.
#[derive(Debug, Clone, Copy)]
pub enum Chain {
    /// The platform chain: the credential named no tenant we could trust.
    Platform,
    /// The tenant's chain: the credential was verified as this tenant's.
    Tenant(TenantId),
}

/// A refusal on its way to the audit trail and the client.
#[derive(Debug)]
pub struct Refusal {
    chain: Chain,
    actor: Actor,
    action: &'static str,
    error: ApiError,
}

impl Refusal {
    /// A refusal of an authentication attempt, recorded on the platform chain by default.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            chain: Chain::Platform,
            actor: Actor::Anonymous,
            action: "auth.authenticate",
            error: ApiError::new(status, code, message),
        }
    }

    /// Records on this chain.
    pub fn chain(mut self, chain: Chain) -> Self {
        self.chain = chain;
        self
    }

    /// Who was refused.
    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }

    /// What was attempted.
    pub fn action(mut self, action: &'static str) -> Self {
        self.action = action;
        self
    }

    /// Adds `Retry-After`.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.error = self.error.with_retry_after(secs);
        self
    }

    /// Like [`Refusal::record`], but writes the audit event only the first time `key` is
    /// refused within `window_secs` (a limit hammered, a failed login retried): a flood is
    /// recorded once and cannot fill the chain. If Redis cannot say, it is recorded.
    pub async fn record_once(
        self,
        state: &AppState,
        ctx: &RequestCtx,
        key: &str,
        window_secs: u64,
    ) -> ApiError {
        match docket_platform::ratelimit::first_in_window(&state.redis, key, window_secs).await {
            Ok(false) => self.error,
            _ => self.write(state, ctx).await,
        }
    }

    /// Writes the audit event (a failure to audit is logged; the request is refused
    /// regardless) and returns the error to answer with.
    ///
    /// An anonymous refusal on the platform chain (a garbage token, say) costs its sender
    /// nothing, so it is recorded once per client address, action and code per
    /// [`ANONYMOUS_WINDOW_SECS`]: a flood can neither fill the platform chain nor queue
    /// every request on the chain's lock.
    pub async fn record(self, state: &AppState, ctx: &RequestCtx) -> ApiError {
        if let (Chain::Platform, Actor::Anonymous) = (self.chain, &self.actor) {
            let who = ctx.ip.map(|ip| ip.to_string()).unwrap_or_default();
            let key = docket_platform::ratelimit::account_key(
                "anonymous-refusal",
                &format!("{}:{}:{who}", self.action, self.error.code),
            );
            return self.record_once(state, ctx, &key, ANONYMOUS_WINDOW_SECS).await;
        }
        self.write(state, ctx).await
    }

    async fn write(self, state: &AppState, ctx: &RequestCtx) -> ApiError {
        let ev = ctx.stamp(Event::new(self.action, Outcome::Refused, self.actor).reason(self.error.code));
        let res = match self.chain {
            Chain::Platform => state
                .auditor
                .platform(state.db.platform_pool(), ev)
                .await
                .map(|_| ()),
            Chain::Tenant(t) => state
                .auditor
                .tenant_standalone(&state.db, t, ev)
                .await
                .map(|_| ()),
        };
        if let Err(e) = res {
            tracing::error!(error = %e, code = self.error.code, "could not audit a refusal");
        }
        self.error
    }
}
