//! Deleting download packages: a package is kept [`super::DOWNLOAD_RETENTION_DAYS`] after
//! it is done, and the files of an export that failed or was cancelled are deleted at
//! once. The leading scheduler's calendar queues a purge job for every package due
//! ([`queue_due`]); the job ([`purge`]) deletes the objects under the export's folder in
//! the tenant's prefix and records when, audited. Holding the export's lease, it never
//! races a delivery still writing the package.

use super::job::{self, ExportJob};
use super::run::{ExportContext, Transient, leased, transient};
use crate::audit::{Actor, Event, Outcome};
use crate::db::ControlDb;
use crate::ids::TenantId;
use crate::jobs::{JobQueue, QueueError};
use chrono::{DateTime, Utc};

/// Packages due at `now`: expired an hour ago (links never outlive the package, and a
/// download that started before the expiry has that hour to finish), or of an export that
/// failed or was cancelled.
const DUE: &str = "kind = 'download' AND package_deleted_at IS NULL
    AND (status IN ('failed', 'cancelled') OR (status = 'done' AND package_expires_at <= $1 - interval '1 hour'))";

/// Queues a purge for every download package due at `now`; returns how many. A package
/// queued twice within ten minutes is one task (the task id names the export and the
/// ten-minute window), so a purge that found its export busy, or died, is queued again by
/// a later step; the job checks again, so it is deleted once.
pub async fn queue_due(
    control: &ControlDb,
    queue: &JobQueue,
    now: DateTime<Utc>,
) -> Result<usize, QueueError> {
    let due: Vec<(uuid::Uuid, TenantId)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, tenant_id FROM exports WHERE {DUE} LIMIT 1000"
    )))
    .bind(now)
    .fetch_all(control.pool())
    .await
    .map_err(|e| QueueError::Db(e.into()))?;
    for (export_id, tenant_id) in &due {
        let j = ExportJob {
            v: job::EXPORT_VERSION,
            tenant_id: *tenant_id,
            export_id: *export_id,
            purge: true,
        };
        let window = i32::try_from(now.timestamp() / 600).unwrap_or_default();
        let id = crate::jobs::task_id("export-purge", *export_id, window);
        queue.push_task(job::config(queue), j, id).await?;
    }
    Ok(due.len())
}

/// What a purge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purged {
    /// The package's objects were deleted (this many).
    Deleted(u64),
    /// Nothing was due (deleted already, not expired yet, or not a download).
    NotDue,
    /// A delivery holds the export (still writing): a later calendar step queues it again.
    Busy,
}

/// Deletes export `id`'s download package if it is due at `now`.
pub async fn purge(
    cx: ExportContext<'_>,
    tenant: TenantId,
    id: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<Purged, Transient> {
    leased(cx.db, id, Purged::Busy, async {
        let mut tx = cx.db.begin_tenant(tenant).await?;
        let status: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT status FROM exports WHERE id = $2 AND {DUE} FOR UPDATE"
        )))
        .bind(now)
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
        let Some(status) = status else {
            return Ok(Purged::NotDue);
        };
        let n = cx
            .blobs
            .delete_prefix(tenant, &super::package_folder(id))
            .await
            .map_err(transient)?;
        sqlx::query("UPDATE exports SET package_deleted_at = now() WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await?;
        let reason = match status.as_str() {
            "done" => "expired",
            other => other,
        };
        let ev = Event::new("exports.package_deleted", Outcome::Allowed, Actor::System)
            .target(format!("export:{id}"))
            .reason(reason.to_owned())
            .detail("objects", n);
        cx.auditor.tenant(&mut tx, ev).await.map_err(transient)?;
        tx.commit().await?;
        Ok(Purged::Deleted(n))
    })
    .await
}
