//! Billing: turning the ledger and the plans into one immutable invoice per tenant and
//! month. [`compute`] is the arithmetic (pure); [`invoice`] writes an invoice exactly once
//! inside the tenant's scope (the `invoice` job's work); [`run`] starts a month's run for
//! every tenant (the scheduler's and `docketctl billing run`'s work); [`job`] is the
//! `invoice` job's envelope and queue; [`pdf`] renders an invoice for people; [`stripe`],
//! [`push`] and [`webhook`] are Stripe: the client, pushing an invoice, and its webhooks;
//! [`margins`] is the operators' revenue, cost and margin; [`upgrade`] the tenant's hint;
//! [`corrections`] holds adjustments for the next invoice and months that cannot be computed.

pub mod compute;
pub mod corrections;
pub mod invoice;
pub mod job;
pub mod margins;
pub mod pdf;
pub mod push;
pub mod run;
pub mod stripe;
pub mod upgrade;
pub mod webhook;

pub use compute::{Computed, Line, LineKind, Month};
pub use invoice::{Billed, Invoice, StoredLine};

use crate::audit::AuditError;
use crate::db::DbError;

/// Billing failed.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// The request is invalid; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// The month is not over yet (invoices are for complete months).
    #[error("{0} is not over yet; a month is billed from the 1st of the next")]
    NotOver(Month),
    /// The month cannot be computed (see [`compute::ComputeError`]).
    #[error(transparent)]
    Compute(#[from] compute::ComputeError),
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Audit.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The queue.
    #[error(transparent)]
    Queue(#[from] crate::jobs::QueueError),
}

impl From<sqlx::Error> for BillingError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}
