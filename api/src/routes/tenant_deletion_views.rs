//! What the tenant-deletion routes ([`super::tenant_deletion`]) answer: each struct is the
//! response body and its schema in the contract.

use chrono::{DateTime, Utc};
use docket_platform::deletions::tenant::{Requested, Scheduled};
use serde::Serialize;
use std::collections::BTreeMap;

/// A dry run of deleting the whole organisation: nothing was recorded or removed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TenantDeletionDryRun {
    /// Always `true`.
    dry_run: bool,
    /// Always `tenant`.
    scope: &'static str,
    /// What would be removed, per store (rows, objects, points or entries).
    stores: BTreeMap<String, i64>,
}

impl TenantDeletionDryRun {
    /// The dry run's answer for these counts.
    pub(crate) fn new(stores: BTreeMap<String, i64>) -> Self {
        Self {
            dry_run: true,
            scope: "tenant",
            stores,
        }
    }
}

/// The organisation's deletion, recorded and awaiting confirmation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TenantDeletionRequested {
    /// The deletion's id.
    deletion_id: uuid::Uuid,
    /// Always `awaiting_confirmation`.
    status: &'static str,
    /// The one-time code to confirm with (shown once).
    confirmation_code: String,
    /// Confirm before this, or ask again.
    confirm_before: DateTime<Utc>,
    /// Where to confirm: `/v1/deletions/{id}/confirm`.
    confirm_url: String,
    /// The grace period, in seconds, that starts once confirmed.
    grace_period_secs: u64,
}

impl TenantDeletionRequested {
    /// The answer for a recorded request, with the deployment's grace period.
    pub(crate) fn new(asked: Requested, grace_period_secs: u64) -> Self {
        let id = asked.deletion;
        Self {
            deletion_id: id,
            status: "awaiting_confirmation",
            confirmation_code: asked.confirmation_code,
            confirm_before: asked.confirm_before,
            confirm_url: format!("/v1/deletions/{id}/confirm"),
            grace_period_secs,
        }
    }
}

/// The organisation's deletion, confirmed and in its grace period.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TenantDeletionScheduled {
    /// The deletion's id.
    deletion_id: uuid::Uuid,
    /// Always `scheduled`.
    status: &'static str,
    /// When the grace period ends and the sweep is queued.
    grace_ends_at: DateTime<Utc>,
    /// `dct_…`, shown once: it fetches the certificate at `certificate_url` once the
    /// organisation's credentials are gone.
    certificate_token: String,
    /// The deletion: `/v1/deletions/{id}`.
    status_url: String,
    /// Where to cancel during the grace period: `/v1/deletions/{id}/cancel`.
    cancel_url: String,
    /// The certificate, once done: `/v1/deletion-certificates/{id}`.
    certificate_url: String,
}

impl From<Scheduled> for TenantDeletionScheduled {
    fn from(s: Scheduled) -> Self {
        let id = s.deletion;
        Self {
            deletion_id: id,
            status: "scheduled",
            grace_ends_at: s.grace_ends_at,
            certificate_token: s.certificate_token,
            status_url: format!("/v1/deletions/{id}"),
            cancel_url: format!("/v1/deletions/{id}/cancel"),
            certificate_url: format!("/v1/deletion-certificates/{id}"),
        }
    }
}

/// The organisation's deletion, cancelled.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TenantDeletionCancelled {
    /// The deletion's id.
    deletion_id: uuid::Uuid,
    /// Always `cancelled`.
    status: &'static str,
    /// The organisation's status now, as it was before the deletion: `active` or
    /// `suspended`.
    tenant_status: String,
}

impl TenantDeletionCancelled {
    /// The answer for deletion `id`, the organisation back to `tenant_status`.
    pub(crate) fn new(id: uuid::Uuid, tenant_status: String) -> Self {
        Self {
            deletion_id: id,
            status: "cancelled",
            tenant_status,
        }
    }
}
