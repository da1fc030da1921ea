//! Pushing a finalized invoice to Stripe: the tenant's customer (made once, kept in
//! `stripe_customers`), the invoice as an empty draft (its id kept on ours), one invoice item
//! per line added to that draft by id, finalize, pay. Every POST carries an
//! `Idempotency-Key` derived from Docket's ids, and lines already on the Stripe invoice are
//! recognised by their metadata, so a push resumed after a crash, a timeout or an outage
//! makes no second object. (What a key cannot cover: a crash between Stripe making the
//! customer or the invoice and our recording it, resumed more than 24 hours later, leaves an
//! unused customer or an empty draft behind; nothing is billed twice.) Payment itself is
//! reported by Stripe's webhooks (`invoice.paid`, `invoice.payment_failed`).

use super::BillingError;
use super::invoice::{self, Invoice, StripeStatus};
use super::stripe::{Stripe, StripeError};
use crate::audit::{Actor, Auditor, Event, Outcome};
use crate::db::{Db, TenantTx};
use crate::ids::{InvoiceId, TenantId};

/// Pushing failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// Stripe failed or refused.
    #[error(transparent)]
    Stripe(#[from] StripeError),
    /// Docket's side.
    #[error(transparent)]
    Billing(#[from] BillingError),
}

impl From<crate::db::DbError> for PushError {
    fn from(e: crate::db::DbError) -> Self {
        Self::Billing(e.into())
    }
}

impl From<sqlx::Error> for PushError {
    fn from(e: sqlx::Error) -> Self {
        Self::Billing(e.into())
    }
}

impl From<crate::audit::AuditError> for PushError {
    fn from(e: crate::audit::AuditError) -> Self {
        Self::Billing(e.into())
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The invoice is in Stripe, finalized, and payment was asked for.
    Done {
        /// Stripe's invoice id.
        stripe_invoice_id: String,
    },
    /// Nothing to do (already pushed, or kept in Docket only).
    NotNeeded,
}

async fn load(tx: &mut TenantTx, id: InvoiceId) -> Result<Option<Invoice>, PushError> {
    Ok(invoice::get(tx, id).await?)
}

/// Pushes invoice `id` of `tenant` to Stripe (see the module comment). Safe to repeat and
/// to run concurrently with itself: every step is keyed by Docket's ids.
pub async fn push(
    db: &Db,
    stripe: &Stripe,
    auditor: &Auditor,
    tenant: TenantId,
    id: InvoiceId,
) -> Result<Pushed, PushError> {
    let mut tx = db.begin_tenant(tenant).await?;
    let Some(inv) = load(&mut tx, id).await? else {
        return Ok(Pushed::NotNeeded);
    };
    if matches!(
        inv.stripe_status,
        StripeStatus::Pushed | StripeStatus::NotConfigured
    ) {
        return Ok(Pushed::NotNeeded);
    }
    let (name, slug): (String, String) = sqlx::query_as("SELECT name, slug FROM tenants WHERE id = $1")
        .bind(tenant)
        .fetch_one(tx.conn())
        .await?;
    let customer: Option<String> = sqlx::query_scalar("SELECT customer_id FROM stripe_customers")
        .fetch_optional(tx.conn())
        .await?;
    tx.commit().await?;

    let customer = match customer {
        Some(c) => c,
        None => {
            let mut form = vec![
                ("name", name),
                ("metadata[docket_tenant]", tenant.to_string()),
                ("metadata[docket_slug]", slug),
            ];
            if stripe.test_mode() {
                // Stripe's test card, so test-mode invoices can be paid.
                form.push(("payment_method", "pm_card_visa".into()));
                form.push(("invoice_settings[default_payment_method]", "pm_card_visa".into()));
            }
            // The key names the request's content too: a tenant renamed between two attempts
            // must not reuse a key with different parameters (Stripe refuses that).
            let digest = {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                for (k, v) in &form {
                    h.update(k.as_bytes());
                    h.update([0]);
                    h.update(v.as_bytes());
                    h.update([0]);
                }
                hex::encode(&h.finalize()[..6])
            };
            let made = stripe
                .post(
                    "/v1/customers",
                    &form,
                    &format!("docket-customer-{tenant}-{digest}"),
                )
                .await?;
            let mut tx = db.begin_tenant(tenant).await?;
            sqlx::query("INSERT INTO stripe_customers (tenant_id, customer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(tenant)
                .bind(&made.id)
                .execute(tx.conn())
                .await?;
            let kept: String = sqlx::query_scalar("SELECT customer_id FROM stripe_customers")
                .fetch_one(tx.conn())
                .await?;
            tx.commit().await?;
            kept
        }
    };

    // The invoice first, as an empty draft taking no pending items, its id recorded before
    // any item exists: items are then added to it by id, so a customer's other invoices (two
    // months pushed at once, items of a failed push) can never be swept into this one.
    let stripe_invoice = match inv.stripe_invoice_id.clone() {
        Some(s) => s,
        None => {
            let form = [
                ("customer", customer.clone()),
                ("currency", inv.currency.clone()),
                ("pending_invoice_items_behavior", "exclude".into()),
                ("auto_advance", "false".into()),
                ("collection_method", "charge_automatically".into()),
                ("description", format!("{} ({})", inv.number, inv.period)),
                ("metadata[docket_invoice]", id.to_string()),
                ("metadata[docket_number]", inv.number.clone()),
            ];
            let made = stripe
                .post("/v1/invoices", &form, &format!("docket-invoice-{id}"))
                .await?;
            let mut tx = db.begin_tenant(tenant).await?;
            sqlx::query(
                "UPDATE invoices SET stripe_customer_id = $2, stripe_invoice_id = $3 WHERE id = $1 AND stripe_invoice_id IS NULL",
            )
            .bind(id)
            .bind(&customer)
            .bind(&made.id)
            .execute(tx.conn())
            .await?;
            let kept: Option<String> =
                sqlx::query_scalar("SELECT stripe_invoice_id FROM invoices WHERE id = $1")
                    .bind(id)
                    .fetch_one(tx.conn())
                    .await?;
            tx.commit().await?;
            kept.unwrap_or(made.id)
        }
    };

    // Stripe's status, kept up to date from each answer (finalize and pay return the invoice).
    let mut status = stripe
        .get(&format!("/v1/invoices/{stripe_invoice}"))
        .await?
        .status;
    if status.as_deref() == Some("draft") {
        // Lines already on the Stripe invoice (an earlier attempt) are found by their
        // metadata, so a retry long after the idempotency keys expired adds none twice.
        let present: std::collections::HashSet<String> = stripe
            .list(&format!("/v1/invoices/{stripe_invoice}/lines?limit=100"))
            .await?
            .data
            .into_iter()
            .filter_map(|l| l.metadata.get("docket_line").cloned())
            .collect();
        for l in inv
            .lines
            .iter()
            .filter(|l| !present.contains(&l.ordinal.to_string()))
        {
            let form = [
                ("customer", customer.clone()),
                ("invoice", stripe_invoice.clone()),
                ("amount", l.amount_cents.to_string()),
                ("currency", inv.currency.clone()),
                (
                    "description",
                    format!("{} ({} {})", l.description, l.quantity, l.unit),
                ),
                ("metadata[docket_invoice]", id.to_string()),
                ("metadata[docket_line]", l.ordinal.to_string()),
            ];
            stripe
                .post(
                    "/v1/invoiceitems",
                    &form,
                    &format!("docket-item-{id}-{}", l.ordinal),
                )
                .await?;
        }
        status = stripe
            .post(
                &format!("/v1/invoices/{stripe_invoice}/finalize"),
                &[],
                &format!("docket-finalize-{id}"),
            )
            .await?
            .status;
    }
    if status.as_deref() == Some("open") {
        match stripe
            .post(
                &format!("/v1/invoices/{stripe_invoice}/pay"),
                &[],
                &format!("docket-pay-{id}"),
            )
            .await
        {
            Ok(paid) => status = paid.status,
            // A declined payment (402) is the webhook's news, not a failed push.
            Err(StripeError::Refused { status: 402, .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Stripe's answer says whether it is paid already (a zero total is paid when finalized,
    // and a paid invoice may send no event): the webhook would say the same, later.
    let paid_now = status.as_deref() == Some("paid");
    let mut tx = db.begin_tenant(tenant).await?;
    if paid_now {
        let changed = sqlx::query(
            "UPDATE invoices SET status = 'paid', paid_at = now() WHERE id = $1 AND status IN ('finalized', 'payment_failed')",
        )
        .bind(id)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if changed == 1 {
            let ev = Event::new("billing.invoice_paid", Outcome::Allowed, Actor::System)
                .target(format!("invoice:{id}"))
                .detail("stripe_invoice_id", stripe_invoice.clone())
                .detail("source", "stripe_response");
            auditor.tenant(&mut tx, ev).await?;
        }
    }
    let moved = sqlx::query(
        "UPDATE invoices SET stripe_status = 'pushed', stripe_error = NULL, stripe_attempted_at = now(),
                             stripe_attempts = stripe_attempts + 1
         WHERE id = $1 AND stripe_status <> 'pushed'",
    )
    .bind(id)
    .execute(tx.conn())
    .await?
    .rows_affected();
    // Two pushes of one invoice (two runs' jobs) make the same objects; one records it.
    if moved == 1 {
        let ev = Event::new("billing.invoice_pushed", Outcome::Allowed, Actor::System)
            .target(format!("invoice:{id}"))
            .detail("stripe_invoice_id", stripe_invoice.clone())
            .detail("stripe_customer_id", customer);
        auditor.tenant(&mut tx, ev).await?;
    }
    tx.commit().await?;
    Ok(Pushed::Done {
        stripe_invoice_id: stripe_invoice,
    })
}

/// Records a failed push: `retrying` while attempts remain, `failed` when `give_up`. The
/// first move to either state is audited.
pub async fn record_failure(
    db: &Db,
    auditor: &Auditor,
    tenant: TenantId,
    id: InvoiceId,
    error: &PushError,
    give_up: bool,
) -> Result<StripeStatus, BillingError> {
    let status = match give_up {
        true => StripeStatus::Failed,
        false => StripeStatus::Retrying,
    };
    let mut tx = db.begin_tenant(tenant).await?;
    let before: Option<String> = sqlx::query_scalar(
        "UPDATE invoices i SET stripe_status = $2, stripe_error = $3, stripe_attempted_at = now(),
                               stripe_attempts = i.stripe_attempts + 1
         FROM invoices old WHERE i.id = $1 AND old.id = i.id AND i.stripe_status <> 'pushed'
         RETURNING old.stripe_status",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(error.to_string())
    .fetch_optional(tx.conn())
    .await?;
    if before.as_deref().is_some_and(|b| b != status.as_str()) {
        let action = match give_up {
            true => "billing.stripe_push_failed",
            false => "billing.stripe_push_retrying",
        };
        let ev = Event::new(action, Outcome::Failed, Actor::System)
            .target(format!("invoice:{id}"))
            .reason(error.to_string());
        auditor.tenant(&mut tx, ev).await?;
    }
    tx.commit().await?;
    Ok(status)
}
