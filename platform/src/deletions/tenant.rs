//! Asking for a whole-tenant deletion, before anything is removed: an owner asks and gets a
//! one-time confirmation code (valid [`CONFIRM_WITHIN_SECS`]); confirming it (or an operator's
//! request, which needs no code) schedules the deletion for the end of the grace period
//! and suspends the tenant (`deleting`); until then the owner or an operator may cancel,
//! which restores the tenant's status. The calendar ([`queue_due`]) queues the sweep
//! ([`super::tenant_sweep`]) when the grace period ends and expires codes never confirmed.
//!
//! Confirming also hands the requester a certificate token: the tenant's own credentials
//! die with it, so this is how the requester fetches the certificate once it is issued
//! (`GET /v1/deletion-certificates/{id}`). Only SHA-256s of the code and the token are kept.

use super::job::{self, DELETE_VERSION, DeleteJob};
use super::{DeletionScope, DeletionStatus};
use crate::db::{ControlDb, DbError, TenantTx};
use crate::exports::package::sha256_hex;
use crate::jobs::{JobQueue, QueueError, finished};
use chrono::{DateTime, Duration, Utc};

/// How long an owner has to confirm a tenant deletion with its code (seconds).
pub const CONFIRM_WITHIN_SECS: i64 = 15 * 60;

/// Prefix of the certificate token (tells it apart from tenant tokens and API keys).
pub const CERTIFICATE_TOKEN_PREFIX: &str = "dct_";

/// A tenant deletion cannot move as asked.
#[derive(Debug, thiserror::Error)]
pub enum TenantDeletionError {
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A tenant deletion is already under way (its id).
    #[error("a deletion of this organisation is already {1} (deletion {0})")]
    Pending(uuid::Uuid, &'static str),
    /// No such tenant deletion.
    #[error("no such tenant deletion")]
    NotFound,
    /// It is past the step asked for (its status).
    #[error("the deletion is {0}")]
    WrongState(&'static str),
    /// The confirmation code is wrong.
    #[error("the confirmation code does not match")]
    WrongCode,
    /// The confirmation code expired; ask again.
    #[error("the confirmation code expired; ask for the deletion again")]
    Expired,
    /// The tenant is not active or suspended (already deleting or deleted).
    #[error("the organisation is {0}")]
    TenantState(String),
}

impl From<sqlx::Error> for TenantDeletionError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

/// An owner's request, waiting for its confirmation.
#[derive(Debug, Clone)]
pub struct Requested {
    /// The deletion.
    pub deletion: uuid::Uuid,
    /// The one-time code (shown once; only its SHA-256 is kept).
    pub confirmation_code: String,
    /// Confirm before this.
    pub confirm_before: DateTime<Utc>,
}

/// A confirmed deletion in its grace period.
#[derive(Debug, Clone)]
pub struct Scheduled {
    /// The deletion.
    pub deletion: uuid::Uuid,
    /// When the sweep is queued.
    pub grace_ends_at: DateTime<Utc>,
    /// The requester's token for the certificate (shown once).
    pub certificate_token: String,
}

fn random_secret(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(crate::crypto::random_bytes::<24>()))
}

/// The unfinished tenant deletion of `tx`'s tenant, with its status.
async fn unfinished(tx: &mut TenantTx) -> Result<Option<(uuid::Uuid, DeletionStatus)>, DbError> {
    let row: Option<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT id, status FROM deletions WHERE scope = 'tenant'
           AND status IN ('awaiting_confirmation', 'scheduled', 'queued', 'running') LIMIT 1",
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(|(id, s)| (id, DeletionStatus::parse(&s))))
}

/// The tenant's status, locked (requests and cancels of one tenant go one at a time).
async fn tenant_status(tx: &mut TenantTx) -> Result<String, DbError> {
    let t = tx.tenant_id();
    Ok(
        sqlx::query_scalar("SELECT status FROM tenants WHERE id = $1 FOR UPDATE")
            .bind(t)
            .fetch_one(tx.conn())
            .await?,
    )
}

/// An owner asks to delete the whole tenant: recorded as `awaiting_confirmation` with the
/// code's hash. Another unfinished tenant deletion is [`TenantDeletionError::Pending`].
pub async fn request(tx: &mut TenantTx, requested_by: &str) -> Result<Requested, TenantDeletionError> {
    let status = tenant_status(tx).await?;
    if let Some((id, s)) = unfinished(tx).await? {
        return Err(TenantDeletionError::Pending(id, s.as_str()));
    }
    if !matches!(status.as_str(), "active" | "suspended") {
        return Err(TenantDeletionError::TenantState(status));
    }
    let (deletion, subject) = (uuid::Uuid::new_v4(), tx.tenant_id().as_uuid());
    super::create(tx, deletion, DeletionScope::Tenant, subject, requested_by).await?;
    let code = random_secret("confirm-");
    let confirm_before = Utc::now() + Duration::seconds(CONFIRM_WITHIN_SECS);
    sqlx::query(
        "UPDATE deletions SET status = 'awaiting_confirmation', confirmation_sha256 = $2, confirm_before = $3
         WHERE id = $1",
    )
    .bind(deletion)
    .bind(sha256_hex(code.as_bytes()))
    .bind(confirm_before)
    .execute(tx.conn())
    .await?;
    Ok(Requested {
        deletion,
        confirmation_code: code,
        confirm_before,
    })
}

/// Puts deletion `id` (awaiting confirmation, or just created) into its grace period and
/// the tenant into `deleting`, remembering the status a cancel restores.
async fn schedule(
    tx: &mut TenantTx,
    id: uuid::Uuid,
    before: String,
    grace: std::time::Duration,
    reason: Option<&str>,
) -> Result<Scheduled, TenantDeletionError> {
    if !matches!(before.as_str(), "active" | "suspended") {
        return Err(TenantDeletionError::TenantState(before));
    }
    let token = random_secret(CERTIFICATE_TOKEN_PREFIX);
    let grace_ends_at = Utc::now() + Duration::from_std(grace).unwrap_or(Duration::days(7));
    sqlx::query(
        "UPDATE deletions SET status = 'scheduled', confirmation_sha256 = NULL, grace_ends_at = $2,
                tenant_status_before = $3, certificate_token_sha256 = $4, reason = $5, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(grace_ends_at)
    .bind(&before)
    .bind(sha256_hex(token.as_bytes()))
    .bind(reason)
    .execute(tx.conn())
    .await?;
    sqlx::query("SELECT docket_tenant_deletion_state('deleting')")
        .execute(tx.conn())
        .await?;
    Ok(Scheduled {
        deletion: id,
        grace_ends_at,
        certificate_token: token,
    })
}

/// The owner confirms with the code: the deletion is scheduled for the end of `grace`
/// and the tenant is suspended (`deleting`) until then.
pub async fn confirm(
    tx: &mut TenantTx,
    id: uuid::Uuid,
    code: &str,
    grace: std::time::Duration,
) -> Result<Scheduled, TenantDeletionError> {
    #[derive(sqlx::FromRow)]
    struct Awaiting {
        scope: String,
        status: String,
        confirmation_sha256: Option<String>,
        confirm_before: Option<DateTime<Utc>>,
    }
    let row: Option<Awaiting> = sqlx::query_as(
        "SELECT scope, status, confirmation_sha256, confirm_before FROM deletions WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    let Some(Awaiting {
        scope,
        status,
        confirmation_sha256: sha,
        confirm_before: before,
    }) = row
    else {
        return Err(TenantDeletionError::NotFound);
    };
    if scope != DeletionScope::Tenant.as_str() {
        return Err(TenantDeletionError::NotFound);
    }
    let status = DeletionStatus::parse(&status);
    if status != DeletionStatus::AwaitingConfirmation {
        return Err(TenantDeletionError::WrongState(status.as_str()));
    }
    if before.is_none_or(|b| b < Utc::now()) {
        return Err(TenantDeletionError::Expired);
    }
    if sha.as_deref() != Some(sha256_hex(code.as_bytes()).as_str()) {
        return Err(TenantDeletionError::WrongCode);
    }
    let before = tenant_status(tx).await?;
    schedule(tx, id, before, grace, None).await
}

/// An operator deletes the tenant (`/ops`): scheduled at once (the operator's request,
/// with its reason, is the confirmation), the same grace period and cancel.
pub async fn schedule_by_operator(
    tx: &mut TenantTx,
    requested_by: &str,
    reason: &str,
    grace: std::time::Duration,
) -> Result<Scheduled, TenantDeletionError> {
    let before = tenant_status(tx).await?;
    if let Some((id, s)) = unfinished(tx).await? {
        return Err(TenantDeletionError::Pending(id, s.as_str()));
    }
    let (deletion, subject) = (uuid::Uuid::new_v4(), tx.tenant_id().as_uuid());
    super::create(tx, deletion, DeletionScope::Tenant, subject, requested_by).await?;
    schedule(tx, deletion, before, grace, Some(reason)).await
}

/// Cancels deletion `id` while it awaits confirmation or is in its grace period: nothing
/// was removed; the tenant gets back the status it had. Returns that status.
pub async fn cancel(tx: &mut TenantTx, id: uuid::Uuid) -> Result<String, TenantDeletionError> {
    let current = tenant_status(tx).await?;
    let row: Option<(String, String, Option<String>)> =
        sqlx::query_as("SELECT scope, status, tenant_status_before FROM deletions WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
    let Some((scope, status, before)) = row else {
        return Err(TenantDeletionError::NotFound);
    };
    if scope != DeletionScope::Tenant.as_str() {
        return Err(TenantDeletionError::NotFound);
    }
    let status = DeletionStatus::parse(&status);
    if !matches!(
        status,
        DeletionStatus::AwaitingConfirmation | DeletionStatus::Scheduled
    ) {
        return Err(TenantDeletionError::WrongState(status.as_str()));
    }
    sqlx::query(
        "UPDATE deletions SET status = 'cancelled', target_id = NULL, confirmation_sha256 = NULL,
                certificate_token_sha256 = NULL, finished_at = now(), updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .execute(tx.conn())
    .await?;
    match (status, before) {
        (DeletionStatus::Scheduled, Some(before)) => {
            sqlx::query("SELECT docket_tenant_deletion_state($1)")
                .bind(&before)
                .execute(tx.conn())
                .await?;
            Ok(before)
        }
        // Awaiting confirmation: the tenant was never suspended for it.
        _ => Ok(current),
    }
}

/// The certificate of tenant deletion `id` for whoever holds its certificate token (the
/// tenant's own credentials are gone by then): `Ok(None)` while it is not done yet,
/// [`TenantDeletionError::NotFound`] for an unknown id or a wrong token (not told apart).
pub async fn certificate_for_token(
    control: &ControlDb,
    id: uuid::Uuid,
    token: &str,
) -> Result<Option<String>, TenantDeletionError> {
    let row: Option<(Option<String>, String, Option<String>)> = sqlx::query_as(
        "SELECT certificate_token_sha256, status, certificate FROM deletions WHERE id = $1 AND scope = 'tenant'",
    )
    .bind(id)
    .fetch_optional(control.pool())
    .await?;
    match row {
        Some((Some(sha), status, cert)) if sha == sha256_hex(token.as_bytes()) => {
            Ok(cert.filter(|_| status == DeletionStatus::Done.as_str()))
        }
        _ => Err(TenantDeletionError::NotFound),
    }
}

/// The calendar's step: tenant deletions whose grace period has ended are queued (status
/// `queued`, the sweep pushed), and requests never confirmed in time are cancelled
/// (`confirmation_expired`). Returns how many were queued. A push that fails is queued
/// again by [`job::requeue_stale`].
pub async fn queue_due(
    control: &ControlDb,
    queue: &JobQueue,
    now: DateTime<Utc>,
) -> Result<usize, QueueError> {
    sqlx::query(
        "UPDATE deletions SET status = 'cancelled', target_id = NULL, confirmation_sha256 = NULL,
                error_code = 'confirmation_expired', error_message = 'the confirmation code was never used',
                finished_at = now(), updated_at = now()
         WHERE status = 'awaiting_confirmation' AND confirm_before < $1",
    )
    .bind(now)
    .execute(control.pool())
    .await
    .map_err(DbError::from)?;
    let due: Vec<(uuid::Uuid, crate::ids::TenantId)> = sqlx::query_as(
        "UPDATE deletions SET status = 'queued', updated_at = now()
         WHERE status = 'scheduled' AND grace_ends_at <= $1 RETURNING id, tenant_id",
    )
    .bind(now)
    .fetch_all(control.pool())
    .await
    .map_err(DbError::from)?;
    for (deletion_id, tenant_id) in &due {
        let job = DeleteJob {
            v: DELETE_VERSION,
            tenant_id: *tenant_id,
            deletion_id: *deletion_id,
        };
        job::push(queue, &job, 0).await?;
    }
    Ok(due.len())
}

/// The calendar's step after a tenant deletion has ended: its own `delete` tasks name the
/// tenant (ids only) and the queue keeps a finished task's payload, so once every one of
/// them has finished their payloads are removed and the deletion marked. Returns how many
/// deletions were finished with.
pub async fn forget_own_tasks(control: &ControlDb, queue: &JobQueue) -> Result<usize, QueueError> {
    let ended: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM deletions WHERE scope = 'tenant' AND status IN ('done', 'residue_found', 'failed')
           AND own_task_forgotten_at IS NULL ORDER BY finished_at LIMIT 100",
    )
    .fetch_all(control.pool())
    .await
    .map_err(DbError::from)?;
    let mut forgotten = 0;
    for id in ended {
        let needle = id.to_string();
        let n = needle.as_bytes();
        let f = finished::forget_finished(queue, &|v| finished::contains(v, n), std::time::Duration::ZERO)
            .await?;
        // A task still in flight (the one that ended it, just before its acknowledgement)
        // waits for the next step.
        if f.kept == 0 {
            sqlx::query("UPDATE deletions SET own_task_forgotten_at = now() WHERE id = $1")
                .bind(id)
                .execute(control.pool())
                .await
                .map_err(DbError::from)?;
            forgotten += 1;
        }
    }
    Ok(forgotten)
}
