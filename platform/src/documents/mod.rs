//! Documents of a tenant. Every function takes a [`TenantTx`].

pub mod lexical;
pub mod sniff;
pub mod vectors;

use crate::db::{DbError, TenantTx};
use crate::ids::{DocumentId, UserId};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A document as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Document {
    /// Id.
    pub id: DocumentId,
    /// Name given at upload (display only; never used as a path).
    pub filename: String,
    /// MIME type decided from the content.
    pub content_type: String,
    /// Bytes.
    pub byte_size: i64,
    /// Hex SHA-256 of the original.
    pub sha256: String,
    /// `queued`, `processing`, `ready`, `failed`, `cancelled` or `deleting`.
    pub status: String,
    /// Current or last stage: `parse`, `chunk`, `embed`, `index`.
    pub stage: Option<String>,
    /// Pages once parsed.
    pub pages: Option<i32>,
    /// Chunks once chunked.
    pub chunks: Option<i32>,
    /// Machine-readable failure.
    pub error_code: Option<String>,
    /// Human-readable failure.
    pub error_message: Option<String>,
    /// The `Idempotency-Key` it was uploaded with.
    #[serde(skip)]
    pub idempotency_key: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

const COLS: &str = "id, filename, content_type, byte_size, sha256, status, stage, pages, chunks, error_code, \
                    error_message, idempotency_key, created_at, updated_at";

/// The object key of a document's original.
pub fn original_key(id: DocumentId) -> String {
    format!("documents/{id}/original")
}

/// The object key of a document's extracted text (JSON pages).
pub fn text_key(id: DocumentId) -> String {
    format!("documents/{id}/text.json")
}

/// A document to insert.
#[derive(Debug, Clone)]
pub struct NewDocument<'a> {
    /// Id (chosen before the upload, so the object key is known while streaming).
    pub id: DocumentId,
    /// File name.
    pub filename: &'a str,
    /// MIME type.
    pub content_type: &'a str,
    /// Bytes.
    pub byte_size: i64,
    /// SHA-256.
    pub sha256: &'a str,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<&'a str>,
    /// Uploader.
    pub created_by: Option<UserId>,
}

/// Inserts a document; `Ok(None)` when the same bytes or idempotency key already exist
/// (a concurrent duplicate upload won the race).
pub async fn insert(tx: &mut TenantTx, d: &NewDocument<'_>) -> Result<Option<Document>, DbError> {
    let tenant = tx.tenant_id();
    let sql = format!(
        "INSERT INTO documents (id, tenant_id, filename, content_type, byte_size, sha256, idempotency_key, created_by, stage)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'parse') ON CONFLICT DO NOTHING RETURNING {COLS}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(d.id)
        .bind(tenant)
        .bind(d.filename)
        .bind(d.content_type)
        .bind(d.byte_size)
        .bind(d.sha256)
        .bind(d.idempotency_key)
        .bind(d.created_by)
        .fetch_optional(tx.conn())
        .await?)
}

/// By id (`None` for other tenants' ids too).
pub async fn get(tx: &mut TenantTx, id: DocumentId) -> Result<Option<Document>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM documents WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// By content hash (dedupe within the tenant; cancelled documents never ran and documents
/// being deleted are going: neither counts).
pub async fn find_by_sha(tx: &mut TenantTx, sha256: &str) -> Result<Option<Document>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM documents WHERE sha256 = $1 AND status NOT IN ('cancelled', 'deleting')"
    )))
    .bind(sha256)
    .fetch_optional(tx.conn())
    .await?)
}

/// By idempotency key.
pub async fn find_by_idempotency_key(tx: &mut TenantTx, key: &str) -> Result<Option<Document>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM documents WHERE idempotency_key = $1"
    )))
    .bind(key)
    .fetch_optional(tx.conn())
    .await?)
}

/// How many of `ids` the tenant has (another tenant's ids are invisible here, by RLS).
pub async fn count_existing(tx: &mut TenantTx, ids: &[DocumentId]) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM documents WHERE id = ANY($1)")
            .bind(ids)
            .fetch_one(tx.conn())
            .await?,
    )
}

/// A page of documents, newest first, after the cursor `(created_at, id)`.
pub async fn list(
    tx: &mut TenantTx,
    status: Option<&str>,
    after: Option<(DateTime<Utc>, DocumentId)>,
    limit: i64,
) -> Result<Vec<Document>, DbError> {
    let sql = format!(
        "SELECT {COLS} FROM documents
         WHERE ($1::text IS NULL OR status = $1)
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(status)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit)
        .fetch_all(tx.conn())
        .await?)
}

/// Moves a document to `status` at `stage` (clearing any error). A failed document stays
/// failed and one being deleted stays `deleting` (a stage that was running when the
/// deletion was asked finishes without bringing it back).
pub async fn set_progress(
    tx: &mut TenantTx,
    id: DocumentId,
    status: &str,
    stage: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE documents SET status = $2, stage = $3, error_code = NULL, error_message = NULL, updated_at = now()
         WHERE id = $1 AND status NOT IN ('failed', 'deleting')",
    )
    .bind(id)
    .bind(status)
    .bind(stage)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Records the page count after parsing.
pub async fn set_pages(tx: &mut TenantTx, id: DocumentId, pages: i32) -> Result<(), DbError> {
    sqlx::query("UPDATE documents SET pages = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(pages)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Records the chunk count after chunking.
pub async fn set_chunks(tx: &mut TenantTx, id: DocumentId, chunks: i32) -> Result<(), DbError> {
    sqlx::query("UPDATE documents SET chunks = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(chunks)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Version of the chunking rules (`docket_rag::chunk`) this build applies; bump it with
/// them. Documents chunked by an older version are moved by `docketctl reindex`; 1 was
/// fixed-size token windows, 2 is structure-aware chunking with carried headings, 3 no
/// longer takes the last line of a paragraph in capitals (or a line of a script without
/// capitals) for a title to carry.
pub const CHUNKING_VERSION: i32 = 3;

/// Records that the document's chunks now follow [`CHUNKING_VERSION`] (set once they are
/// indexed).
pub async fn set_chunking_version(tx: &mut TenantTx, id: DocumentId) -> Result<(), DbError> {
    sqlx::query("UPDATE documents SET chunking_version = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(CHUNKING_VERSION)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Fails the document with a code and a sentence (not one being deleted: it ends deleted).
pub async fn fail(tx: &mut TenantTx, id: DocumentId, code: &str, message: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE documents SET status = 'failed', error_code = $2, error_message = $3, updated_at = now()
         WHERE id = $1 AND status <> 'deleting'",
    )
    .bind(id)
    .bind(code)
    .bind(message)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Puts a failed document back at the start of the pipeline (a retry, or the same bytes
/// uploaded again): queued at `parse`, error cleared. A revived imported document leaves
/// its import's feed (it goes through the interactive lane as the user's retry). `None`
/// when the document is not failed (nothing to retry, or a concurrent retry won).
pub async fn revive(tx: &mut TenantTx, id: DocumentId) -> Result<Option<Document>, DbError> {
    let sql = format!(
        "UPDATE documents SET status = 'queued', stage = 'parse', error_code = NULL, error_message = NULL,
                feed_state = NULL, updated_at = now()
         WHERE id = $1 AND status = 'failed' RETURNING {COLS}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?)
}

/// Whether the document is being deleted or is gone: no pipeline stage may work on it
/// (the stage that sees this stops; the deletion waits only for stages already past it).
pub async fn is_deleted(tx: &mut TenantTx, id: DocumentId) -> Result<bool, DbError> {
    Ok(
        sqlx::query_scalar(
            "SELECT coalesce((SELECT status = 'deleting' FROM documents WHERE id = $1), true)",
        )
        .bind(id)
        .fetch_one(tx.conn())
        .await?,
    )
}

/// Which of `ids` are `ready` (the only documents whose chunks may be cited).
pub async fn ready_among(
    tx: &mut TenantTx,
    ids: &[uuid::Uuid],
) -> Result<std::collections::HashSet<uuid::Uuid>, DbError> {
    let rows: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM documents WHERE id = ANY($1) AND status = 'ready'")
            .bind(ids)
            .fetch_all(tx.conn())
            .await?;
    Ok(rows.into_iter().collect())
}
