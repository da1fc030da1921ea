//! Data-portability exports: everything a tenant owns, written into its own S3-compatible
//! bucket as a package (format `docket-export/1`, `docs/EXPORTS.md`) with a manifest signed
//! by the platform's Ed25519 key. [`destination`] is the customer's bucket (checked with a
//! probe before any data leaves), [`package`] the format, manifest, signature and offline
//! verification, [`run`] the `export` job's work (snapshot, per-file checkpoints, resume),
//! [`job`] its envelope and queue.

pub mod archive;
pub mod destination;
pub mod job;
pub mod link;
pub mod package;
pub mod purge;
pub mod run;
mod write;

use crate::db::{DbError, TenantTx};
use crate::ids::TenantId;
use crate::imports::source::{S3Credentials, S3Source};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where an export stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportStatus {
    /// Waiting for a worker.
    Queued,
    /// Being written.
    Running,
    /// Every file and the signed manifest are in the bucket.
    Done,
    /// Stopped for good (the error says why).
    Failed,
    /// Cancelled by the tenant.
    Cancelled,
}

impl ExportStatus {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Self {
        match s {
            "running" => Self::Running,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => Self::Queued,
        }
    }

    /// Whether it has ended.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }
}

/// Where a package goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportKind {
    /// The customer's own S3-compatible bucket.
    Bucket,
    /// Docket's storage, encrypted under the tenant's prefix, fetched through a signed link
    /// and deleted after [`DOWNLOAD_RETENTION_DAYS`].
    Download,
}

impl ExportKind {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Bucket => "bucket",
            Self::Download => "download",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Self {
        match s {
            "download" => Self::Download,
            _ => Self::Bucket,
        }
    }
}

/// Days a download package is kept once done (then its objects are deleted).
pub const DOWNLOAD_RETENTION_DAYS: i64 = 7;

/// The object folder of a download package inside the tenant's prefix.
pub fn package_folder(id: uuid::Uuid) -> String {
    format!("exports/{id}")
}

/// `POST /v1/exports`: the customer's bucket and write credentials, or `download`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// The bucket and prefix.
    pub s3: Option<S3Source>,
    /// Write credentials for it.
    pub credentials: Option<S3Credentials>,
    /// A package kept in Docket's storage, fetched through a short-lived signed link.
    #[serde(default)]
    pub download: Option<bool>,
}

/// An export as the API reports it (never its credentials).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Export {
    /// Id.
    pub id: uuid::Uuid,
    /// The tenant.
    pub tenant_id: TenantId,
    /// Where the package goes.
    pub kind: ExportKind,
    /// Where (bucket, prefix, region, endpoint; `{"download": true}` for a download).
    pub destination: serde_json::Value,
    /// State.
    pub status: ExportStatus,
    /// What the package holds: the database as of this instant.
    pub snapshot_at: Option<DateTime<Utc>>,
    /// Files in the package (known once it runs).
    pub files_total: i32,
    /// Files written.
    pub files_done: i32,
    /// Bytes written.
    pub bytes_done: i64,
    /// `files_done / files_total`, 0–100.
    pub percent: f64,
    /// Estimated seconds left (from the rate so far).
    pub eta_seconds: Option<i64>,
    /// SHA-256 of `manifest.json` once done.
    pub manifest_sha256: Option<String>,
    /// Why it failed.
    pub error: Option<serde_json::Value>,
    /// When asked.
    pub created_at: DateTime<Utc>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// A download package: when it is deleted.
    pub package_expires_at: Option<DateTime<Utc>>,
    /// A download package: when it was deleted (links are refused from then on).
    pub package_deleted_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: uuid::Uuid,
    tenant_id: TenantId,
    destination: serde_json::Value,
    status: String,
    snapshot_at: Option<DateTime<Utc>>,
    files_total: i32,
    files_done: i32,
    bytes_done: i64,
    manifest_sha256: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    kind: String,
    package_expires_at: Option<DateTime<Utc>>,
    package_deleted_at: Option<DateTime<Utc>>,
}

const COLS: &str = "id, tenant_id, destination, status, snapshot_at, files_total, files_done, bytes_done,
    manifest_sha256, error_code, error_message, created_at, started_at, finished_at, kind, package_expires_at,
    package_deleted_at";

fn from_row(r: Row) -> Export {
    let status = ExportStatus::parse(&r.status);
    let percent = match r.files_total {
        0 => 0.0,
        total => (f64::from(r.files_done) * 100.0 / f64::from(total)).min(100.0),
    };
    let eta_seconds = match (r.started_at, status) {
        (Some(started), ExportStatus::Running) if r.files_done > 0 && r.files_total > r.files_done => {
            let spent = (Utc::now() - started).num_milliseconds().max(1) as f64 / 1000.0;
            Some((spent / f64::from(r.files_done) * f64::from(r.files_total - r.files_done)).round() as i64)
        }
        _ => None,
    };
    Export {
        id: r.id,
        tenant_id: r.tenant_id,
        kind: ExportKind::parse(&r.kind),
        destination: r.destination,
        status,
        snapshot_at: r.snapshot_at,
        files_total: r.files_total,
        files_done: r.files_done,
        bytes_done: r.bytes_done,
        percent,
        eta_seconds,
        manifest_sha256: r.manifest_sha256,
        error: r
            .error_code
            .map(|code| serde_json::json!({"code": code, "message": r.error_message})),
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        package_expires_at: r.package_expires_at,
        package_deleted_at: r.package_deleted_at,
    }
}

/// The sealing context of an export's credentials.
pub fn credentials_context(id: uuid::Uuid) -> String {
    format!("export-credentials:{id}")
}

/// Where a requested export goes, as recorded.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The customer's bucket and its sealed write credentials.
    Bucket(&'a S3Source, &'a [u8]),
    /// A download package in Docket's storage.
    Download,
}

/// Records a queued export (inside the tenant's scope).
pub async fn create(
    tx: &mut TenantTx,
    id: uuid::Uuid,
    target: Target<'_>,
    requested_by: &str,
) -> Result<(), DbError> {
    let (kind, destination, sealed) = match target {
        Target::Bucket(s3, sealed) => (
            ExportKind::Bucket,
            serde_json::to_value(s3).unwrap_or_default(),
            Some(sealed),
        ),
        Target::Download => (ExportKind::Download, serde_json::json!({"download": true}), None),
    };
    sqlx::query(
        "INSERT INTO exports (id, tenant_id, kind, destination, credentials, requested_by) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(tx.tenant_id())
    .bind(kind.as_str())
    .bind(destination)
    .bind(sealed)
    .bind(requested_by)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// One of the tenant's exports.
pub async fn get(tx: &mut TenantTx, id: uuid::Uuid) -> Result<Option<Export>, DbError> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM exports WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(from_row))
}

/// The tenant's exports, newest first.
pub async fn list(tx: &mut TenantTx) -> Result<Vec<Export>, DbError> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM exports ORDER BY created_at DESC LIMIT 200"
    )))
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Cancels an export that has not ended (its credentials are erased at once); false if it
/// had ended or does not exist.
pub async fn cancel(tx: &mut TenantTx, id: uuid::Uuid) -> Result<bool, DbError> {
    let n = sqlx::query(
        "UPDATE exports SET status = 'cancelled', credentials = NULL, finished_at = now()
         WHERE id = $1 AND status IN ('queued', 'running')",
    )
    .bind(id)
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Every export of every tenant, newest first (operators; no credentials: the control
/// role cannot read them).
pub async fn list_all(control: &crate::db::ControlDb) -> Result<Vec<Export>, DbError> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM exports ORDER BY created_at DESC LIMIT 500"
    )))
    .fetch_all(control.pool())
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}
