//! `POST /v1/billing/stripe/webhook`: Stripe's events about the invoices Docket pushed.
//! No bearer token: the `Stripe-Signature` header is the credential (see
//! `platform::billing::webhook`). Refusals answer 400 with a code and are audited on the
//! platform chain (once per address and code per minute, like every anonymous refusal).

use crate::auth::RequestCtx;
use crate::auth::refusal::Refusal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::billing::webhook::{self, Handled};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

/// `/v1/billing/stripe/webhook`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(receive))
}

/// Stripe's event was accepted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StripeWebhookReceived {
    /// Always `true`.
    received: bool,
}

async fn refuse(state: &AppState, ctx: &RequestCtx, r: &webhook::Refusal) -> ApiError {
    Refusal::new(StatusCode::BAD_REQUEST, r.code(), r.to_string())
        .action("billing.webhook_refused")
        .record(state, ctx)
        .await
}

/// Receive a Stripe event
///
/// Stripe's deliveries about the invoices Docket pushed. No bearer token: the
/// `Stripe-Signature` header (HMAC-SHA256 of `{t}.{body}` with the endpoint's secret, within
/// the configured tolerance) is the credential. `invoice.paid` / `invoice.payment_succeeded`
/// mark the invoice paid, `invoice.payment_failed` marks its payment failed; other event types
/// are recorded and ignored. Each event id is accepted once. Accepted events are audited
/// (`billing.webhook_accepted`), refusals too (`billing.webhook_refused`). Answers
/// `{"received": true}`.
#[utoipa::path(
    post,
    path = "/v1/billing/stripe/webhook",
    tag = "billing",
    params(("Stripe-Signature" = String, Header, description = "Stripe's signature: `t={unix seconds},v1={hex HMAC-SHA256}` (several `v1` while the secret is being rolled)")),
    request_body(
        content = serde_json::Value,
        content_type = "application/json",
        description = "The Stripe event exactly as Stripe sent it (the signature covers the raw bytes): `{id, type, data: {object: {id, object}}}`"
    ),
    responses(
        (status = 200, description = "Accepted", body = StripeWebhookReceived),
        (status = 400, description = "`invalid_signature` (no, malformed or non-matching `Stripe-Signature`), `stale_event` (the signed timestamp is outside the tolerance), `invalid_event` (the body is not a Stripe event, or an invoice event names no invoice), `replayed_event` (this event id was already received), `unknown_invoice` (no invoice of Docket's has that Stripe id)", body = crate::openapi::ErrorBody),
        (status = 404, description = "`not_found`: Stripe webhooks are not configured on this deployment", body = crate::openapi::ErrorBody),
    )
)]
async fn receive(
    State(state): State<AppState>,
    ctx: RequestCtx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<StripeWebhookReceived>, ApiError> {
    let secret = state
        .config
        .billing
        .stripe
        .as_ref()
        .and_then(|s| s.webhook_secret.as_ref().map(|w| (w, s.webhook_tolerance)));
    let Some((secret, tolerance)) = secret else {
        return Err(ApiError::not_found("Stripe webhook endpoint"));
    };
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    if let Err(r) = webhook::verify(secret.expose(), signature, &body, now, tolerance.as_secs() as i64) {
        return Err(refuse(&state, &ctx, &r).await);
    }
    let handled = webhook::handle(&state.control, &state.auditor, &body)
        .await
        .map_err(ApiError::internal)?;
    let handled = match handled {
        Ok(h) => h,
        Err(r) => return Err(refuse(&state, &ctx, &r).await),
    };
    let (kind, target) = match &handled {
        Handled::Paid(_, i) => ("invoice.paid", Some(*i)),
        Handled::PaymentFailed(_, i) => ("invoice.payment_failed", Some(*i)),
        Handled::Ignored(k) => (k.as_str(), None),
    };
    let mut ev = ctx
        .stamp(Event::new(
            "billing.webhook_accepted",
            Outcome::Allowed,
            Actor::Anonymous,
        ))
        .detail("type", kind.to_owned());
    if let Some(i) = target {
        ev = ev.target(format!("invoice:{i}"));
    }
    if let Err(e) = state.auditor.platform(state.control.pool(), ev).await {
        tracing::error!(error = %e, "could not audit an accepted webhook");
    }
    Ok(Json(StripeWebhookReceived { received: true }))
}
