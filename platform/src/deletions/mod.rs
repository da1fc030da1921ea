//! Deletions: a tenant's data removed from every store we keep it in, checked by a residue
//! scan, and proved by a certificate signed with the platform's Ed25519 key (the key set
//! export manifests use). Three scopes: a document (`DELETE /v1/documents/{id}`), a user's
//! personal data ([`user`], at once) and the whole tenant ([`tenant`]: confirmation, grace
//! period, cancel; [`tenant_sweep`]: the sweep and the crypto-shredding). The `delete` job
//! does the work ([`job`], the worker's `jobs/delete.rs`), [`document`] holds a document's
//! steps, [`residue`] the scan, [`certificate`] the signed result, [`plan`] the dry run.
//! See `docs/DELETION.md`.

pub mod certificate;
pub mod document;
pub mod issue;
pub mod job;
pub mod plan;
pub mod residue;
pub mod tenant;
pub mod tenant_sweep;
pub mod user;

use crate::db::{DbError, TenantTx};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// What a deletion removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeletionScope {
    /// One document: its rows, objects, vectors, lexical entries, queue payloads.
    Document,
    /// A user's personal data (the account stays, erased).
    User,
    /// The whole tenant: every store, then its keys.
    Tenant,
}

impl DeletionScope {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Document => "document",
            Self::User => "user",
            Self::Tenant => "tenant",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "document" => Some(Self::Document),
            "user" => Some(Self::User),
            "tenant" => Some(Self::Tenant),
            _ => None,
        }
    }
}

/// Where a deletion stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeletionStatus {
    /// A tenant deletion an owner asked for, waiting for the one-time confirmation code.
    AwaitingConfirmation,
    /// A confirmed tenant deletion in its grace period: the tenant is suspended, the request
    /// can be cancelled, the calendar queues the sweep when the period ends.
    Scheduled,
    /// Cancelled during confirmation or the grace period (or its code expired); nothing
    /// was removed.
    Cancelled,
    /// Waiting for a worker.
    Queued,
    /// Sweeping.
    Running,
    /// Swept, the residue scan found nothing, the certificate is issued.
    Done,
    /// Swept, but the residue scan found data left behind: listed, counted in `/metrics`
    /// (`docket_deletions_residue_found`), no certificate. Final: an operator looks.
    ResidueFound,
    /// Gave up (the error says why).
    Failed,
}

impl DeletionStatus {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AwaitingConfirmation => "awaiting_confirmation",
            Self::Scheduled => "scheduled",
            Self::Cancelled => "cancelled",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::ResidueFound => "residue_found",
            Self::Failed => "failed",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Self {
        match s {
            "awaiting_confirmation" => Self::AwaitingConfirmation,
            "scheduled" => Self::Scheduled,
            "cancelled" => Self::Cancelled,
            "running" => Self::Running,
            "done" => Self::Done,
            "residue_found" => Self::ResidueFound,
            "failed" => Self::Failed,
            _ => Self::Queued,
        }
    }
}

/// The stores a deletion sweeps, by the name the plan, the counts and the certificate use.
pub mod stores {
    /// The document's row.
    pub const DOCUMENTS: &str = "postgresql.documents";
    /// Its chunks (text, headings, page ranges).
    pub const CHUNKS: &str = "postgresql.chunks";
    /// The lexical index: each chunk's `lexemes` (a column of the chunk's own row, so it
    /// goes with it; counted apart so the certificate names it).
    pub const LEXICAL: &str = "lexical_index";
    /// Its pipeline job records.
    pub const JOBS: &str = "postgresql.jobs";
    /// Cached vectors of its chunks no other document of the tenant shares.
    pub const EMBEDDING_CACHE: &str = "postgresql.embedding_cache";
    /// Answers that quoted it (answer and citations erased, the question kept).
    pub const QUERIES: &str = "postgresql.queries";
    /// Its files' records in finished exports.
    pub const EXPORT_FILES: &str = "postgresql.export_files";
    /// Its original, extracted text and vectors in object storage.
    pub const OBJECTS: &str = "objects.document";
    /// Download packages (our storage) that held it, withdrawn.
    pub const PACKAGES: &str = "objects.export_packages";
    /// Payloads of its finished jobs kept by the queue.
    pub const QUEUE: &str = "redis.queue_payloads";
    /// Every object under the tenant's prefix (originals, text, vectors, archives, packages).
    pub const TENANT_OBJECTS: &str = "objects.tenant";
    /// Redis keys of the tenant (limits, counters, locks).
    pub const REDIS_KEYS: &str = "redis.keys";

    /// A tenant table swept whole.
    pub fn table(name: &str) -> String {
        format!("postgresql.{name}")
    }

    /// The vector store of a placement.
    pub fn vectors(tier: &str) -> String {
        format!("vectors.{tier}")
    }
}

/// SHA-256 of a subject id as the certificate names it (`scope:id`): whoever knows the
/// id can check it; the certificate alone does not reveal it.
pub fn subject_sha256(kind: &str, id: uuid::Uuid) -> String {
    hex::encode(Sha256::digest(format!("{kind}:{id}").as_bytes()))
}

/// A deletion as the API reports it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Deletion {
    /// Id.
    pub id: uuid::Uuid,
    /// What it removes: `document`, `user` or `tenant`.
    pub scope: String,
    /// SHA-256 of `scope:id` of the subject.
    pub target_sha256: String,
    /// Where it stands.
    pub status: DeletionStatus,
    /// Who asked (actor label).
    pub requested_by: String,
    /// Removed so far, per store.
    pub swept: BTreeMap<String, i64>,
    /// What the residue scan found (empty when clean; null before it ran).
    #[schema(value_type = Option<Vec<residue::Finding>>)]
    pub residue: Option<serde_json::Value>,
    /// SHA-256 of the issued certificate.
    pub certificate_sha256: Option<String>,
    /// Machine-readable failure.
    pub error_code: Option<String>,
    /// Human-readable failure.
    pub error_message: Option<String>,
    /// Requested.
    pub created_at: DateTime<Utc>,
    /// First picked up.
    pub started_at: Option<DateTime<Utc>>,
    /// Ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// A tenant deletion's grace period ends (the sweep is queued then).
    pub grace_ends_at: Option<DateTime<Utc>>,
    /// An owner's tenant deletion must be confirmed before this.
    pub confirm_before: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: uuid::Uuid,
    scope: String,
    target_sha256: String,
    status: String,
    requested_by: String,
    swept: serde_json::Value,
    residue: Option<serde_json::Value>,
    certificate_sha256: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    grace_ends_at: Option<DateTime<Utc>>,
    confirm_before: Option<DateTime<Utc>>,
}

const COLS: &str = "id, scope, target_sha256, status, requested_by, swept, residue, certificate_sha256, \
                    error_code, error_message, created_at, started_at, finished_at, grace_ends_at, confirm_before";

impl From<Row> for Deletion {
    fn from(r: Row) -> Self {
        Deletion {
            id: r.id,
            scope: r.scope,
            target_sha256: r.target_sha256,
            status: DeletionStatus::parse(&r.status),
            requested_by: r.requested_by,
            swept: serde_json::from_value(r.swept).unwrap_or_default(),
            residue: r.residue,
            certificate_sha256: r.certificate_sha256,
            error_code: r.error_code,
            error_message: r.error_message,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            grace_ends_at: r.grace_ends_at,
            confirm_before: r.confirm_before,
        }
    }
}

/// Records a deletion of `scope` for `target` (inside the request's transaction).
pub async fn create(
    tx: &mut TenantTx,
    id: uuid::Uuid,
    scope: DeletionScope,
    target: uuid::Uuid,
    requested_by: &str,
) -> Result<(), DbError> {
    let tenant = tx.tenant_id();
    sqlx::query(
        "INSERT INTO deletions (id, tenant_id, scope, target_id, target_sha256, requested_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(tenant)
    .bind(scope.as_str())
    .bind(target)
    .bind(subject_sha256(scope.as_str(), target))
    .bind(requested_by)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// One deletion of the tenant.
pub async fn get(tx: &mut TenantTx, id: uuid::Uuid) -> Result<Option<Deletion>, DbError> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM deletions WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(Deletion::from))
}

/// The tenant's deletions, newest first.
pub async fn list(tx: &mut TenantTx) -> Result<Vec<Deletion>, DbError> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM deletions ORDER BY created_at DESC, id LIMIT 200"
    )))
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(Deletion::from).collect())
}

/// The signed certificate exactly as issued, once the deletion is done.
pub async fn certificate(tx: &mut TenantTx, id: uuid::Uuid) -> Result<Option<String>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT certificate FROM deletions WHERE id = $1 AND status = 'done'")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?
            .flatten(),
    )
}

/// The deletion already asked for `target` and not failed, if any (asking twice returns it).
pub async fn pending_for(tx: &mut TenantTx, target: uuid::Uuid) -> Result<Option<uuid::Uuid>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM deletions WHERE target_id = $1 AND status IN ('queued', 'running', 'residue_found')
         ORDER BY created_at LIMIT 1",
    )
    .bind(target)
    .fetch_optional(tx.conn())
    .await?)
}

/// Records `removed` for `store` unless a count is recorded already (a resumed sweep finds
/// nothing left and must not overwrite what the first one removed).
pub async fn record_swept(
    tx: &mut TenantTx,
    id: uuid::Uuid,
    store: &str,
    removed: i64,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE deletions SET swept = swept || jsonb_build_object($2::text, $3::bigint), updated_at = now()
         WHERE id = $1 AND NOT swept ? $2",
    )
    .bind(id)
    .bind(store)
    .bind(removed)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Adds `removed` to `store`'s count (a store swept a part at a time, e.g. queue payloads
/// of tasks that had to run first: each part is counted once, as it goes).
pub async fn add_swept(tx: &mut TenantTx, id: uuid::Uuid, store: &str, removed: i64) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE deletions SET swept = swept || jsonb_build_object($2::text, coalesce((swept->>$2)::bigint, 0) + $3),
                updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(store)
    .bind(removed)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Deletions queued or running whose last change is older than `quiet` (their queue entry
/// may be lost): the calendar queues them again.
pub async fn stale(
    control: &crate::db::ControlDb,
    now: DateTime<Utc>,
    quiet: chrono::Duration,
) -> Result<Vec<(uuid::Uuid, crate::ids::TenantId, DateTime<Utc>)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT id, tenant_id, updated_at FROM deletions
         WHERE status IN ('queued', 'running') AND updated_at < $1 ORDER BY updated_at LIMIT 1000",
    )
    .bind(now - quiet)
    .fetch_all(control.pool())
    .await?)
}

/// Every tenant's deletions, newest first (operators: `/ops/deletions`), with the tenant.
pub async fn list_all(
    control: &crate::db::ControlDb,
) -> Result<Vec<(crate::ids::TenantId, Deletion)>, DbError> {
    #[derive(sqlx::FromRow)]
    struct WithTenant {
        tenant_id: crate::ids::TenantId,
        #[sqlx(flatten)]
        row: Row,
    }
    let rows: Vec<WithTenant> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT tenant_id, {COLS} FROM deletions ORDER BY created_at DESC LIMIT 500"
    )))
    .fetch_all(control.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.tenant_id, Deletion::from(r.row)))
        .collect())
}

/// Deletions of every tenant that ended with residue found (`/metrics` alerts on it).
pub async fn residue_found_total(control: &crate::db::ControlDb) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM deletions WHERE status = 'residue_found'")
            .fetch_one(control.pool())
            .await?,
    )
}
