//! Bulk imports: a zip archive, an S3-compatible prefix or (operators) a folder becomes
//! documents that wait in PostgreSQL until the feeder admits them into the bulk lane of
//! the job queues. Every function that touches an import takes a [`TenantTx`].

pub mod admit;
pub mod archive;
pub mod feeder;
pub mod job;
pub mod progress;
pub mod source;

use crate::db::{DbError, TenantTx};
use crate::ids::{ImportId, UserId};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Where an import reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// An uploaded zip archive (stored encrypted until unpacked).
    Zip,
    /// A bucket prefix the tenant points to with its own read-only credentials.
    S3,
    /// A folder on the operator's machine (`docketctl import`).
    Folder,
}

impl SourceKind {
    /// Name stored in `imports.source`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceKind::Zip => "zip",
            SourceKind::S3 => "s3",
            SourceKind::Folder => "folder",
        }
    }
}

/// An import row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Import {
    /// Id.
    pub id: ImportId,
    /// `zip`, `s3` or `folder`.
    pub source: String,
    /// `unpacking`, `running`, `done`, `cancelled` or `failed`.
    pub status: String,
    /// Bucket, prefix, endpoint or archive name (never credentials).
    pub source_detail: serde_json::Value,
    /// Entries found so far.
    pub total: i32,
    /// Entries handled by the unpack step so far.
    pub unpacked: i32,
    /// Entries whose content the tenant already had.
    pub duplicates: i32,
    /// Its documents deleted since.
    #[serde(skip)]
    pub deleted_documents: i32,
    /// Why the source could not be read (status `failed`).
    pub error_code: Option<String>,
    /// The sentence for it.
    pub error_message: Option<String>,
    /// Who started it (`user:…`, `operator:…`).
    #[serde(skip)]
    pub actor: String,
    /// The request that started it.
    #[serde(skip)]
    pub request_id: Option<String>,
    /// Started.
    pub started_at: DateTime<Utc>,
    /// Finished (done, cancelled or failed).
    pub finished_at: Option<DateTime<Utc>>,
}

const COLS: &str = "id, source, status, source_detail, total, unpacked, duplicates, deleted_documents, error_code, error_message, \
                    actor, request_id, started_at, finished_at";

/// An import to create.
#[derive(Debug, Clone)]
pub struct NewImport<'a> {
    /// Id (chosen first: an archive is stored under it before the row exists).
    pub id: ImportId,
    /// Source kind.
    pub source: SourceKind,
    /// Source description without secrets.
    pub detail: serde_json::Value,
    /// Sealed S3 credentials.
    pub sealed_credentials: Option<Vec<u8>>,
    /// Entries known up front (a zip's central directory), else 0.
    pub total: i32,
    /// Who starts it.
    pub actor: &'a str,
    /// The user, if one.
    pub created_by: Option<UserId>,
    /// The request.
    pub request_id: Option<&'a str>,
}

/// Inserts an import in status `unpacking`.
pub async fn insert(tx: &mut TenantTx, new: &NewImport<'_>) -> Result<Import, DbError> {
    let tenant = tx.tenant_id();
    let sql = format!(
        "INSERT INTO imports (id, tenant_id, source, source_detail, sealed_credentials, total, actor, created_by, request_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLS}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(new.id)
        .bind(tenant)
        .bind(new.source.as_str())
        .bind(&new.detail)
        .bind(new.sealed_credentials.as_deref())
        .bind(new.total)
        .bind(new.actor)
        .bind(new.created_by)
        .bind(new.request_id)
        .fetch_one(tx.conn())
        .await?)
}

/// By id (`None` for another tenant's id too).
pub async fn get(tx: &mut TenantTx, id: ImportId) -> Result<Option<Import>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM imports WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// The sealed S3 credentials of an import still listing its source.
pub async fn sealed_credentials(tx: &mut TenantTx, id: ImportId) -> Result<Option<Vec<u8>>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT sealed_credentials FROM imports WHERE id = $1")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?
            .flatten(),
    )
}

/// The unpack step has seen every entry: the import now only waits for the pipeline, and
/// the source credentials are erased.
pub async fn finish_unpacking(tx: &mut TenantTx, id: ImportId) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE imports SET status = 'running', sealed_credentials = NULL, updated_at = now()
         WHERE id = $1 AND status = 'unpacking'",
    )
    .bind(id)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The source could not be read: the import fails (documents already made stay).
pub async fn fail(tx: &mut TenantTx, id: ImportId, code: &str, message: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE imports SET status = 'failed', error_code = $2, error_message = $3, sealed_credentials = NULL,
                finished_at = now(), updated_at = now()
         WHERE id = $1 AND status IN ('unpacking', 'running')",
    )
    .bind(id)
    .bind(code)
    .bind(message)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Counts an unpack attempt; returns the count (`None` when the import is no longer
/// unpacking: cancelled, failed or already unpacked).
pub async fn start_unpack_attempt(tx: &mut TenantTx, id: ImportId) -> Result<Option<i32>, DbError> {
    Ok(sqlx::query_scalar(
        "UPDATE imports SET unpack_attempts = unpack_attempts + 1, updated_at = now()
         WHERE id = $1 AND status = 'unpacking' RETURNING unpack_attempts",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// Cancels what has not started: documents still waiting in PostgreSQL become
/// `cancelled`; documents already in the pipeline finish. Returns how many were cancelled,
/// or `None` if the import is already over.
pub async fn cancel(tx: &mut TenantTx, id: ImportId) -> Result<Option<i64>, DbError> {
    let updated = sqlx::query(
        "UPDATE imports SET status = 'cancelled', sealed_credentials = NULL, finished_at = now(), updated_at = now()
         WHERE id = $1 AND status IN ('unpacking', 'running')",
    )
    .bind(id)
    .execute(tx.conn())
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(None);
    }
    let cancelled = sqlx::query(
        "UPDATE documents SET status = 'cancelled', feed_state = NULL, error_code = 'cancelled',
                error_message = 'the import was cancelled before this document started', updated_at = now()
         WHERE import_id = $1 AND feed_state = 'waiting'",
    )
    .bind(id)
    .execute(tx.conn())
    .await?;
    Ok(Some(cancelled.rows_affected() as i64))
}
