//! The governance chain every tenant request passes, in the order the product defines:
//! rate limit → capability → plan feature gate → consent → incident switches → input safety
//! → quota.
//! The rate limit comes first so that every refusal after it is paid for (and a 429 is
//! audited once per limited window, not per request).
//! (Authentication and the tenant/user state come before, in the extractor; the handler,
//! usage and audit after.) Each refusal names its rule in the error code and in an audit
//! event. The plan's entitlements are read once, here, and handed to the handler.

use super::TenantAuth;
use super::refusal::{Chain, Refusal};
use crate::error::ApiError;
use crate::state::AppState;
use axum::http::StatusCode;
use docket_platform::audit::Outcome;
use docket_platform::authz::{self, Capability};
use docket_platform::consents::Purpose;
use docket_platform::entitlements::{self, Entitlements};
use docket_platform::ratelimit::{self, EndpointClass};
use docket_platform::{safety, switches};

/// What a request asks the chain to check beyond its capability.
#[derive(Debug, Clone, Copy)]
pub struct Gate<'a> {
    cap: Capability,
    feature: Option<&'static str>,
    consent: Option<Purpose>,
    question: Option<&'a str>,
    metered: bool,
}

impl<'a> Gate<'a> {
    /// Capability, switches and rate limit of its class.
    pub fn new(cap: Capability) -> Self {
        Self {
            cap,
            feature: None,
            consent: None,
            question: None,
            metered: false,
        }
    }

    /// Also requires a plan feature.
    pub fn feature(mut self, feature: &'static str) -> Self {
        self.feature = Some(feature);
        self
    }

    /// Also requires the tenant's current consent to a processing purpose.
    pub fn consent(mut self, purpose: Purpose) -> Self {
        self.consent = Some(purpose);
        self
    }

    /// Also checks a question's safety.
    pub fn question(mut self, q: &'a str) -> Self {
        self.question = Some(q);
        self
    }

    /// Also checks the monthly token quota (requests that create model work).
    pub fn metered(mut self) -> Self {
        self.metered = true;
        self
    }
}

/// What passed the chain: the safety flags raised by the input. (The entitlements the
/// handler applies are on [`TenantAuth::entitlements`], read with the principal.)
#[derive(Debug, Clone)]
pub struct Governed {
    /// Prompt-injection patterns the question matched (audited already).
    pub flags: Vec<&'static str>,
}

impl TenantAuth {
    /// Capability, switches and rate limit of `cap`'s class.
    pub async fn require(&self, state: &AppState, cap: Capability) -> Result<Governed, ApiError> {
        self.govern(state, Gate::new(cap)).await
    }

    /// Runs the whole chain for `gate`.
    pub async fn govern(&self, state: &AppState, gate: Gate<'_>) -> Result<Governed, ApiError> {
        let cap = gate.cap;
        let class = EndpointClass::of(cap);
        let ent = &self.entitlements;
        // First, so that every refusal below is paid for: a client looping on a forbidden
        // endpoint is rate limited before it can fill the tenant's audit chain.
        self.rate_limit(state, class, ent).await?;
        if !authz::allows(self.role, cap) {
            let msg = format!("your role ({}) does not allow {cap}", self.role);
            return Err(self
                .refuse(state, "authz.check", StatusCode::FORBIDDEN, "forbidden", msg)
                .await);
        }
        if let Some(f) = gate.feature {
            self.feature_gate(state, ent, f).await?;
        }
        if let Some(p) = gate.consent {
            self.consent_gate(state, ent, p).await?;
        }
        self.check_switches(state, class).await?;
        let flags = match gate.question {
            Some(q) => self.input_safety(state, ent, q).await?,
            None => Vec::new(),
        };
        if gate.metered {
            self.quota(state, ent).await?;
        }
        Ok(Governed { flags })
    }

    async fn feature_gate(
        &self,
        state: &AppState,
        ent: &Entitlements,
        feature: &str,
    ) -> Result<(), ApiError> {
        if ent.has(feature) {
            return Ok(());
        }
        let msg = format!(
            "your plan ({}) does not include {feature}; an owner can upgrade the plan",
            ent.plan_id
        );
        Err(self
            .refuse(
                state,
                "plan.feature",
                StatusCode::FORBIDDEN,
                "feature_not_in_plan",
                msg,
            )
            .await)
    }

    /// Refuses (403 `consent_required`, naming the purpose) without a current grant. The
    /// grants were read with the entitlements, in this request: a revocation applies on the
    /// next request.
    async fn consent_gate(
        &self,
        state: &AppState,
        ent: &Entitlements,
        purpose: Purpose,
    ) -> Result<(), ApiError> {
        if ent.consents_to(purpose) {
            return Ok(());
        }
        let msg = format!(
            "this needs your organisation's consent to {purpose}; an owner can grant it with POST /v1/consents"
        );
        // Recorded with the purpose as its target (a refusal through `refuse` names no target).
        let ev = self
            .event("consent.check", Outcome::Refused)
            .reason("consent_required")
            .target(format!("purpose:{purpose}"));
        if let Err(e) = state
            .auditor
            .tenant_standalone(&state.db, self.tenant_id(), ev)
            .await
        {
            tracing::error!(error = %e, "could not audit a consent refusal");
        }
        Err(ApiError::new(StatusCode::FORBIDDEN, "consent_required", msg))
    }

    /// Refuses (503 `disabled_by_operator`, audited with the switch id) when an operator
    /// has turned `class` off for everyone or for this tenant; refuses all requests while
    /// the switches cannot be read (fail closed).
    async fn check_switches(&self, state: &AppState, class: EndpointClass) -> Result<(), ApiError> {
        let Some(list) = state.switches.current(&state.db).await else {
            let err = self
                .refuse(
                    state,
                    "switch.check",
                    StatusCode::SERVICE_UNAVAILABLE,
                    "switches_unavailable",
                    "requests are paused because the operators' incident switches cannot be read; retry shortly",
                )
                .await;
            return Err(err.with_retry_after(5));
        };
        let Some(sw) = switches::blocking(&list, class, self.tenant_id()) else {
            return Ok(());
        };
        let ev = self
            .event("switch.check", Outcome::Refused)
            .reason("disabled_by_operator")
            .detail("switch", sw.id.to_string())
            .detail("class", class.as_str());
        if let Err(e) = state
            .auditor
            .tenant_standalone(&state.db, self.tenant_id(), ev)
            .await
        {
            tracing::error!(error = %e, "could not audit a switch refusal");
        }
        let scope = if sw.target_tenant.is_some() {
            "for your organisation"
        } else {
            "for everyone"
        };
        let msg = format!(
            "{} requests are switched off {scope} by the operators: {}",
            class.as_str(),
            sw.reason
        );
        Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "disabled_by_operator", msg).with_retry_after(30))
    }

    /// Refuses malformed questions (400 with the rule's code); flags prompt-injection
    /// patterns in the audit trail, refusing them (400 `flagged_input`) when the tenant's
    /// policy says so.
    async fn input_safety(
        &self,
        state: &AppState,
        ent: &Entitlements,
        q: &str,
    ) -> Result<Vec<&'static str>, ApiError> {
        let flags = match safety::check_question(q) {
            Ok(f) => f,
            Err(e) => {
                return Err(self
                    .refuse(
                        state,
                        "safety.check",
                        StatusCode::BAD_REQUEST,
                        e.code(),
                        e.to_string(),
                    )
                    .await);
            }
        };
        if flags.is_empty() {
            return Ok(flags);
        }
        let refused = ent.refuse_flagged_input;
        let outcome = if refused {
            Outcome::Refused
        } else {
            Outcome::Allowed
        };
        let ev = self
            .event("safety.flag", outcome)
            .reason("prompt_injection_pattern")
            .detail("patterns", flags.clone());
        if let Err(e) = state
            .auditor
            .tenant_standalone(&state.db, self.tenant_id(), ev)
            .await
        {
            tracing::error!(error = %e, "could not audit a safety flag");
        }
        if refused {
            let msg = format!(
                "the question looks like an attempt to override the assistant's instructions ({}); your organisation's policy refuses such questions",
                flags.join(", ")
            );
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "flagged_input", msg));
        }
        Ok(flags)
    }

    /// Takes one request from the tenant's bucket for `class` (429 `rate_limited` when
    /// empty). If the limiter is unreachable, classes that create work fail closed (503)
    /// and reads and administration proceed (logged and counted).
    async fn rate_limit(
        &self,
        state: &AppState,
        class: EndpointClass,
        ent: &Entitlements,
    ) -> Result<(), ApiError> {
        let limit = ent.rate(class);
        match ratelimit::check(&state.redis, self.tenant_id(), class, limit).await {
            Ok(d) => {
                self.ctx.rate.set(d);
                if d.allowed {
                    return Ok(());
                }
                let msg = format!(
                    "too many {} requests: {} per minute with bursts of {}; retry in {} s",
                    class.as_str(),
                    limit.per_minute,
                    limit.burst,
                    d.retry_after_secs
                );
                // One audit event per limited window and class, not one per refused
                // request: a flood is recorded, and cannot fill the chain.
                let window = format!("rl-audited:{}:{}", self.tenant_id(), class.as_str());
                let err = Refusal::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", msg)
                    .chain(Chain::Tenant(self.tenant_id()))
                    .actor(self.actor())
                    .action("ratelimit.check")
                    .record_once(state, &self.ctx, &window, d.retry_after_secs)
                    .await;
                Err(err.with_retry_after(d.retry_after_secs))
            }
            Err(e) if class.fails_closed() => {
                tracing::error!(error = %e, class = class.as_str(), "rate limiter unreachable; refusing");
                let err = self
                    .refuse(
                        state,
                        "ratelimit.check",
                        StatusCode::SERVICE_UNAVAILABLE,
                        "rate_limiter_unavailable",
                        "this kind of request is paused while the rate limiter is unreachable; retry shortly",
                    )
                    .await;
                Err(err.with_retry_after(5))
            }
            Err(e) => {
                tracing::warn!(error = %e, class = class.as_str(), "rate limiter unreachable; allowing a read");
                metrics::counter!("docket_rate_limiter_unavailable_total", "class" => class.as_str())
                    .increment(1);
                Ok(())
            }
        }
    }

    /// Refuses (429 `quota_exceeded`, with when it resets) once the month's tokens are used
    /// up on a plan without overage. Charging happens after the work, from the ledger.
    async fn quota(&self, state: &AppState, ent: &Entitlements) -> Result<(), ApiError> {
        if !ent.quota_exhausted() {
            return Ok(());
        }
        let now = chrono::Utc::now();
        let resets = entitlements::quota_resets_at(now);
        let msg = format!(
            "your plan ({}) includes {} tokens a month and {} are used; the quota resets at {}",
            ent.plan_id,
            ent.token_quota.unwrap_or_default(),
            ent.tokens_used,
            resets.to_rfc3339()
        );
        let err = self
            .refuse(
                state,
                "quota.check",
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                msg,
            )
            .await;
        Err(err.with_retry_after((resets - now).num_seconds().max(1) as u64))
    }
}
