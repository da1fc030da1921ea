//! The answers of the deletion routes (`deletions`): queued deletions, dry runs, user
//! erasures and the lists.

use docket_platform::deletions::{Deletion, DeletionScope, DeletionStatus};
use docket_platform::ids::{DocumentId, TenantId, UserId};
use serde::Serialize;
use std::collections::BTreeMap;

/// Every tenant's deletions, for operators.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OperatorDeletionList {
    /// The latest 500, newest first.
    pub(crate) deletions: Vec<OperatorDeletion>,
}

/// A deletion of some tenant, as operators list it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OperatorDeletion {
    /// The tenant it belongs to.
    pub(crate) tenant_id: TenantId,
    /// The deletion.
    #[serde(flatten)]
    pub(crate) deletion: Deletion,
}

/// The tenant's deletions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeletionList {
    /// The latest 200, newest first.
    pub(crate) deletions: Vec<Deletion>,
}

/// A deletion that was queued: where to follow it and where its certificate will be.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeletionQueued {
    /// The deletion's id.
    pub(crate) deletion_id: uuid::Uuid,
    /// Always `queued`.
    pub(crate) status: DeletionStatus,
    /// Where to follow it (`GET /v1/deletions/{id}`).
    pub(crate) status_url: String,
    /// Where its signed certificate is once it is done.
    pub(crate) certificate_url: String,
}

/// A document deletion's dry run: what would be removed, per store (nothing is).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DocumentDeletionPlan {
    /// Always `true`.
    pub(crate) dry_run: bool,
    /// Always `document`.
    pub(crate) scope: DeletionScope,
    /// The document.
    pub(crate) document_id: DocumentId,
    /// Rows, objects, points or entries each store would lose.
    pub(crate) stores: BTreeMap<String, i64>,
}

/// A user's personal data, erased: the deletion and its certificate.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserErasure {
    /// The deletion's id.
    pub(crate) deletion_id: uuid::Uuid,
    /// Always `done`: the erasure happens at once.
    pub(crate) status: DeletionStatus,
    /// SHA-256 of the signed certificate.
    pub(crate) certificate_sha256: String,
    /// The deletion (`GET /v1/deletions/{id}`).
    pub(crate) status_url: String,
    /// Its signed certificate.
    pub(crate) certificate_url: String,
}

/// A user erasure's dry run: what would be removed, per store (nothing is).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserErasurePlan {
    /// Always `true`.
    pub(crate) dry_run: bool,
    /// Always `user`.
    pub(crate) scope: DeletionScope,
    /// The user.
    pub(crate) user_id: UserId,
    /// What each store would lose.
    pub(crate) stores: BTreeMap<String, i64>,
}
