//! Entries → waiting documents, a batch at a time. Each batch commits its documents, its
//! failures, its duplicate count and the import's resume point in one transaction, so an
//! unpack killed at any moment resumes at the first entry not yet committed and counts
//! every entry exactly once. Document ids are derived from (import, entry), so a batch
//! that is redone writes the same objects again instead of new ones.

use super::ImportId;
use crate::blobs::{BlobError, BlobStore};
use crate::config::MasterKey;
use crate::crypto::sha256_hex;
use crate::db::{Db, DbError};
use crate::documents::{self, sniff::SNIFF_LEN, sniff::sniff};
use crate::ids::{DocumentId, TenantId};
use crate::tenant_keys;

/// An entry ready to admit.
#[derive(Debug)]
pub struct Entry {
    /// Its position in the source (stable across re-runs).
    pub index: i32,
    /// Its name or path in the source (display only; never used as a path here).
    pub name: String,
    /// Its bytes, or why they could not be read (`code`, sentence).
    pub bytes: Result<Vec<u8>, (&'static str, String)>,
}

/// What a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// New waiting documents.
    pub documents: usize,
    /// Entries whose content the tenant already had.
    pub duplicates: usize,
    /// Entries that failed (type, size, emptiness, read errors).
    pub failures: usize,
    /// The import stopped being `unpacking` (cancelled): nothing was written.
    pub stopped: bool,
}

/// Admitting a batch failed (nothing of it was committed; safe to retry).
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Object storage.
    #[error(transparent)]
    Blobs(#[from] BlobError),
    /// The tenant's data key.
    #[error("the tenant's data key is unavailable: {0}")]
    Key(String),
}

/// The document id of entry `index` of `import`.
pub fn document_id(import: ImportId, index: i32) -> DocumentId {
    let name = format!("{import}/{index}");
    DocumentId(uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()))
}

/// The display name kept for an entry: its path, control characters dropped, ≤ 255 chars.
fn display_name(name: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).take(255).collect();
    if clean.trim().is_empty() {
        "unnamed".into()
    } else {
        clean
    }
}

struct Accepted {
    id: DocumentId,
    index: i32,
    name: String,
    mime: &'static str,
    size: i64,
    sha: String,
}

/// Where a batch sits in its source.
#[derive(Debug, Clone, Copy)]
pub struct Resume<'a> {
    /// The resume point this batch continues from (`imports.unpacked` when it was read).
    pub start: i32,
    /// The resume point after it.
    pub next: i32,
    /// The last key done, for sources resumed by key.
    pub cursor: Option<&'a str>,
    /// Entries this batch adds to the total (sources listed as they go; 0 for a zip).
    pub found: i32,
}

/// Stores the acceptable entries' originals (encrypted), then records the batch:
/// documents as `waiting`, duplicates, failures, and `next` as the resume point (`cursor`
/// for sources resumed by key). `total` grows by `found` (sources listed as they go; a zip's
/// total is known from the start and passes 0).
#[allow(clippy::too_many_arguments)]
pub async fn admit_batch(
    db: &Db,
    blobs: &BlobStore,
    master: &MasterKey,
    tenant: TenantId,
    import: ImportId,
    entries: Vec<Entry>,
    at: Resume<'_>,
) -> Result<BatchOutcome, AdmitError> {
    let Resume {
        start,
        next,
        cursor,
        found,
    } = at;
    let mut tx = db.begin_tenant(tenant).await?;
    let key = tenant_keys::data_key(&mut tx, master)
        .await
        .map_err(|e| AdmitError::Key(e.to_string()))?;
    tx.commit().await?;

    let mut accepted = vec![];
    let mut failed: Vec<(i32, String, &'static str, String)> = vec![];
    for e in entries {
        let name = display_name(&e.name);
        let bytes = match e.bytes {
            Err((code, msg)) => {
                failed.push((e.index, name, code, msg));
                continue;
            }
            Ok(b) if b.is_empty() => {
                failed.push((e.index, name, "empty_file", "the file is empty (0 bytes)".into()));
                continue;
            }
            Ok(b) => b,
        };
        let kind = sniff(
            &bytes[..bytes.len().min(SNIFF_LEN)],
            bytes.len() <= SNIFF_LEN,
            &name,
            None,
        );
        let Some(mime) = kind.mime() else {
            let msg = "Docket accepts PDF, plain text and Markdown; this file's content is none of these";
            failed.push((e.index, name, "unsupported_media_type", msg.into()));
            continue;
        };
        let id = document_id(import, e.index);
        blobs.put(&key, &documents::original_key(id), &bytes).await?;
        accepted.push(Accepted {
            id,
            index: e.index,
            name,
            mime,
            size: bytes.len() as i64,
            sha: sha256_hex(&bytes),
        });
    }

    let mut tx = db.begin_tenant(tenant).await?;
    // The row lock orders this batch with a concurrent cancel and with another run of the
    // same unpack (a redelivered job): only the run whose batch starts at the committed
    // resume point may write.
    let row: Option<(String, i32)> =
        sqlx::query_as("SELECT status, unpacked FROM imports WHERE id = $1 FOR UPDATE")
            .bind(import)
            .fetch_optional(tx.conn())
            .await
            .map_err(DbError::from)?;
    let stopped = BatchOutcome {
        stopped: true,
        ..Default::default()
    };
    match row {
        Some((status, unpacked)) if status == "unpacking" && unpacked == start => {}
        Some((status, _)) if status == "unpacking" => {
            // Another run got further: these ids may be its committed documents.
            return Ok(stopped);
        }
        _ => {
            // Cancelled or gone: remove the copies, but never a committed document's.
            let ids: Vec<DocumentId> = accepted.iter().map(|a| a.id).collect();
            let kept: Vec<DocumentId> = sqlx::query_scalar("SELECT id FROM documents WHERE id = ANY($1)")
                .bind(&ids)
                .fetch_all(tx.conn())
                .await
                .map_err(DbError::from)?;
            drop(tx);
            for a in accepted.iter().filter(|a| !kept.contains(&a.id)) {
                blobs.delete(tenant, &documents::original_key(a.id)).await?;
            }
            return Ok(stopped);
        }
    }
    let ids: Vec<DocumentId> = accepted.iter().map(|a| a.id).collect();
    let names: Vec<&str> = accepted.iter().map(|a| a.name.as_str()).collect();
    let mimes: Vec<&str> = accepted.iter().map(|a| a.mime).collect();
    let sizes: Vec<i64> = accepted.iter().map(|a| a.size).collect();
    let shas: Vec<&str> = accepted.iter().map(|a| a.sha.as_str()).collect();
    let indexes: Vec<i32> = accepted.iter().map(|a| a.index).collect();
    // Row by row in entry order (ORDER BY ordinality), so of two equal entries the first
    // becomes the document and the second the duplicate.
    let inserted: Vec<DocumentId> = sqlx::query_scalar(
        "INSERT INTO documents (id, tenant_id, filename, content_type, byte_size, sha256, stage, import_id,
                                import_entry, feed_state)
         SELECT u.id, $1, u.name, u.mime, u.size, u.sha, 'parse', $2, u.entry, 'waiting'
         FROM UNNEST($3::uuid[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::int[])
              WITH ORDINALITY AS u(id, name, mime, size, sha, entry, n)
         ORDER BY u.n
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(tenant)
    .bind(import)
    .bind(&ids)
    .bind(&names)
    .bind(&mimes)
    .bind(&sizes)
    .bind(&shas)
    .bind(&indexes)
    .fetch_all(tx.conn())
    .await
    .map_err(DbError::from)?;
    let duplicates: Vec<&Accepted> = accepted.iter().filter(|a| !inserted.contains(&a.id)).collect();
    for (index, name, code, msg) in &failed {
        sqlx::query(
            "INSERT INTO import_failures (tenant_id, import_id, entry, filename, code, message)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (import_id, entry) DO NOTHING",
        )
        .bind(tenant)
        .bind(import)
        .bind(index)
        .bind(name)
        .bind(code)
        .bind(msg)
        .execute(tx.conn())
        .await
        .map_err(DbError::from)?;
    }
    sqlx::query(
        "UPDATE imports SET unpacked = $2, cursor = COALESCE($3, cursor), duplicates = duplicates + $4,
                total = total + $5, updated_at = now()
         WHERE id = $1",
    )
    .bind(import)
    .bind(next)
    .bind(cursor)
    .bind(duplicates.len() as i32)
    .bind(found)
    .execute(tx.conn())
    .await
    .map_err(DbError::from)?;
    tx.commit().await?;
    // A duplicate's copy is not needed: the tenant's existing document stands for it.
    for d in &duplicates {
        blobs.delete(tenant, &documents::original_key(d.id)).await?;
    }
    Ok(BatchOutcome {
        documents: inserted.len(),
        duplicates: duplicates.len(),
        failures: failed.len(),
        stopped: false,
    })
}
