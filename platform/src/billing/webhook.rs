//! Stripe's webhooks: the `Stripe-Signature` check (HMAC-SHA256 of `{t}.{body}` with the
//! endpoint's secret; any of several `v1` signatures may match; the timestamp must be
//! within the tolerance), deduplication by event id, and what `invoice.paid` and
//! `invoice.payment_failed` change. A refusal changes nothing.

use super::BillingError;
use crate::audit::{Actor, Auditor, Event, Outcome};
use crate::db::ControlDb;
use crate::ids::{InvoiceId, TenantId};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No or malformed `Stripe-Signature`, or no signature matches.
    #[error("the Stripe-Signature header does not match this endpoint's secret")]
    BadSignature,
    /// The signed timestamp is outside the tolerance (a replay of an old delivery).
    #[error("the event's timestamp is outside the accepted window")]
    Stale,
    /// The body is not a Stripe event.
    #[error("the body is not a Stripe event")]
    Malformed,
    /// This event id was handled already.
    #[error("event {0} was already received")]
    Replayed(String),
    /// The event names an invoice Docket did not push.
    #[error("no invoice of Docket's has Stripe id {0}")]
    UnknownInvoice(String),
}

impl Refusal {
    /// Machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::BadSignature => "invalid_signature",
            Refusal::Stale => "stale_event",
            Refusal::Malformed => "invalid_event",
            Refusal::Replayed(_) => "replayed_event",
            Refusal::UnknownInvoice(_) => "unknown_invoice",
        }
    }
}

/// The `Stripe-Signature` value Stripe would send for `body` at `t` (also what tests sign
/// their events with).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    format!(
        "t={t},v1={}",
        hex::encode(keyed(secret, t, body).finalize().into_bytes())
    )
}

/// The MAC over Stripe's signed payload, `{t}.{body}`.
fn keyed(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// Verifies `header` for `body` at `now` (Unix seconds) within `tolerance` seconds.
pub fn verify(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), Refusal> {
    let header = header.ok_or(Refusal::BadSignature)?;
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => {
                if let Ok(s) = hex::decode(v) {
                    sigs.push(s);
                }
            }
            _ => {}
        }
    }
    let t = t.ok_or(Refusal::BadSignature)?;
    let m = keyed(secret, t, body);
    // Constant-time comparison against each candidate (Stripe sends several while an
    // endpoint's secret is being rolled).
    let ok = sigs.iter().any(|s| m.clone().verify_slice(s).is_ok());
    if !ok {
        return Err(Refusal::BadSignature);
    }
    if (now - t).abs() > tolerance {
        return Err(Refusal::Stale);
    }
    Ok(())
}

#[derive(Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Deserialize)]
struct EventData {
    object: EventObject,
}

#[derive(Deserialize)]
struct EventObject {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    object: Option<String>,
}

/// What an accepted event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// An invoice is now paid.
    Paid(TenantId, InvoiceId),
    /// An invoice's payment failed.
    PaymentFailed(TenantId, InvoiceId),
    /// An event Docket does not act on (recorded, so a replay is still refused).
    Ignored(String),
}

/// Handles a verified event body: records its id (a second delivery is refused), and
/// applies `invoice.paid` / `invoice.payment_failed` to the invoice it names, with the
/// tenant's audit event, all in one transaction.
pub async fn handle(
    control: &ControlDb,
    auditor: &Auditor,
    body: &[u8],
) -> Result<Result<Handled, Refusal>, BillingError> {
    let Ok(ev) = serde_json::from_slice::<StripeEvent>(body) else {
        return Ok(Err(Refusal::Malformed));
    };
    let change = match ev.kind.as_str() {
        "invoice.paid" | "invoice.payment_succeeded" => Some(("paid", "billing.invoice_paid")),
        "invoice.payment_failed" => Some(("payment_failed", "billing.invoice_payment_failed")),
        _ => None,
    };
    let mut tx = control.pool().begin().await?;
    let fresh = sqlx::query("INSERT INTO stripe_events (id, type) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(&ev.id)
        .bind(&ev.kind)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    if !fresh {
        return Ok(Err(Refusal::Replayed(ev.id)));
    }
    let Some((status, action)) = change else {
        tx.commit().await?;
        return Ok(Ok(Handled::Ignored(ev.kind)));
    };
    let stripe_id = match (ev.data.object.object.as_deref(), ev.data.object.id) {
        (Some("invoice"), Some(id)) => id,
        _ => return Ok(Err(Refusal::Malformed)),
    };
    let found: Option<(InvoiceId, TenantId)> =
        sqlx::query_as("SELECT id, tenant_id FROM invoices WHERE stripe_invoice_id = $1")
            .bind(&stripe_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((invoice, tenant)) = found else {
        return Ok(Err(Refusal::UnknownInvoice(stripe_id)));
    };
    let mut tx = ControlDb::scope_to_tenant(tx, tenant).await?;
    // Paid is final: a late payment_failed for an invoice paid since changes nothing.
    let changed = sqlx::query(
        "UPDATE invoices SET status = $2, paid_at = CASE WHEN $2 = 'paid' THEN now() ELSE paid_at END
         WHERE id = $1 AND status IN ('finalized', 'payment_failed') AND status <> $2",
    )
    .bind(invoice)
    .bind(status)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if changed == 1 {
        let audit = Event::new(action, Outcome::Allowed, Actor::System)
            .target(format!("invoice:{invoice}"))
            .detail("stripe_event", ev.id.clone())
            .detail("stripe_invoice_id", stripe_id);
        auditor.tenant(&mut tx, audit).await?;
    }
    tx.commit().await?;
    Ok(Ok(match status {
        "paid" => Handled::Paid(tenant, invoice),
        _ => Handled::PaymentFailed(tenant, invoice),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";

    #[test]
    fn signatures_verify_with_any_v1_and_within_the_tolerance() {
        let body = br#"{"id":"evt_1"}"#;
        let good = sign(SECRET, 1000, body);
        assert_eq!(verify(SECRET, Some(&good), body, 1000, 300), Ok(()));
        let several = format!(
            "t=1000,v1={},{}",
            "00".repeat(32),
            good.split_once(',').expect("pair").1
        );
        assert_eq!(verify(SECRET, Some(&several), body, 1100, 300), Ok(()));
        assert_eq!(verify(SECRET, Some(&good), body, 1301, 300), Err(Refusal::Stale));
        assert_eq!(
            verify("whsec_other", Some(&good), body, 1000, 300),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify(SECRET, Some(&good), br#"{"id":"evt_2"}"#, 1000, 300),
            Err(Refusal::BadSignature)
        );
        assert_eq!(verify(SECRET, None, body, 1000, 300), Err(Refusal::BadSignature));
        assert_eq!(
            verify(SECRET, Some("v1=abc"), body, 1000, 300),
            Err(Refusal::BadSignature)
        );
        // A v0 (legacy) signature alone is not accepted.
        let v0 = good.replace("v1=", "v0=");
        assert_eq!(
            verify(SECRET, Some(&v0), body, 1000, 300),
            Err(Refusal::BadSignature)
        );
    }
}
