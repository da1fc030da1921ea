//! `POST /v1/billing/stripe/webhook`: Stripe's events about the invoices Docket pushed.
//! No bearer token: the `Stripe-Signature` header is the credential (see
//! `platform::billing::webhook`). Refusals answer 400 with a code and are audited on the
//! platform chain (once per address and code per minute, like every anonymous refusal).

use crate::auth::RequestCtx;
use crate::auth::refusal::Refusal;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::billing::webhook::{self, Handled};
use serde_json::{Value, json};

/// `/v1/billing/stripe/webhook`.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/billing/stripe/webhook", post(receive))
}

async fn refuse(state: &AppState, ctx: &RequestCtx, r: &webhook::Refusal) -> ApiError {
    Refusal::new(StatusCode::BAD_REQUEST, r.code(), r.to_string())
        .action("billing.webhook_refused")
        .record(state, ctx)
        .await
}

async fn receive(
    State(state): State<AppState>,
    ctx: RequestCtx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({ "received": true })))
}
