//! The dry run: per store, exactly what deleting a document or the whole tenant would
//! remove, counted without removing anything (`DELETE /v1/documents/{id}?dry_run=true`,
//! `POST /v1/deletions {"scope": "tenant", "dry_run": true}`, `docketctl deletion plan`).

use super::document::{SweepError, folder};
use super::residue::redis_mentions;
use super::stores;
use crate::blobs::BlobStore;
use crate::db::TenantTx;
use crate::ids::DocumentId;
use crate::jobs::JobQueue;
use std::collections::BTreeMap;

/// Counts per store for deleting `d` (in the caller's tenant transaction). Vector points
/// are one per chunk of an indexed document, in the tenant's current placement (`tier`):
/// the index job writes exactly that many and checks it.
pub async fn document(
    tx: &mut TenantTx,
    blobs: &BlobStore,
    queue: &JobQueue,
    tier: &str,
    d: DocumentId,
) -> Result<BTreeMap<String, i64>, SweepError> {
    let tenant = tx.tenant_id();
    let cited = "citations @> jsonb_build_array(jsonb_build_object('document_id', $1::text))";
    let counts: (i64, i64, i64, i64, i64, i64, bool) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT (SELECT count(*) FROM documents WHERE id = $1),
                (SELECT count(*) FROM chunks WHERE document_id = $1),
                (SELECT count(*) FROM jobs WHERE target_id = $1),
                (SELECT count(*) FROM embedding_cache e WHERE e.sha256 IN (SELECT sha256 FROM chunks WHERE document_id = $1)
                   AND NOT EXISTS (SELECT 1 FROM chunks c WHERE c.sha256 = e.sha256 AND c.document_id <> $1)),
                (SELECT count(*) FROM queries WHERE {cited} OR $1 = ANY(document_ids)),
                (SELECT count(*) FROM export_files WHERE path LIKE 'documents/' || $1::text || '/%'),
                coalesce((SELECT status = 'ready' OR (status = 'deleting' AND stage = 'index') FROM documents WHERE id = $1), false)"
    )))
    .bind(d)
    .fetch_one(tx.conn())
    .await?;
    let (documents, chunks, jobs, cache, queries, export_files, indexed) = counts;
    let packages: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT e.id FROM exports e JOIN export_files f ON f.export_id = e.id
         WHERE e.kind = 'download' AND e.package_deleted_at IS NULL
           AND f.path LIKE 'documents/' || $1::text || '/%'",
    )
    .bind(d)
    .fetch_all(tx.conn())
    .await?;
    let mut packaged = 0;
    for p in packages {
        packaged += blobs
            .list(tenant, &crate::exports::package_folder(p))
            .await?
            .len() as i64;
    }
    let objects = blobs.list(tenant, &folder(d)).await?.len() as i64;
    let (payloads, _) = redis_mentions(queue, &d.to_string()).await?;
    Ok(BTreeMap::from([
        (stores::DOCUMENTS.to_owned(), documents),
        (stores::CHUNKS.to_owned(), chunks),
        (stores::LEXICAL.to_owned(), chunks),
        (stores::JOBS.to_owned(), jobs),
        (stores::EMBEDDING_CACHE.to_owned(), cache),
        (stores::QUERIES.to_owned(), queries),
        (stores::EXPORT_FILES.to_owned(), export_files),
        (stores::OBJECTS.to_owned(), objects),
        (stores::PACKAGES.to_owned(), packaged),
        (stores::QUEUE.to_owned(), payloads),
        (stores::vectors(tier), if indexed { chunks } else { 0 }),
    ]))
}

/// Counts per store for deleting the whole tenant of `tx` (in the caller's transaction):
/// the rows of every table the sweep empties, every object under its prefix, its Redis
/// keys and queue payloads, and one vector point per chunk of its indexed documents in
/// its current placement (`tier`).
pub async fn tenant(
    tx: &mut TenantTx,
    blobs: &BlobStore,
    queue: &JobQueue,
    tier: &str,
) -> Result<BTreeMap<String, i64>, SweepError> {
    let t = tx.tenant_id();
    let mut out = BTreeMap::new();
    for table in super::tenant_sweep::swept_tables(tx).await? {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = $1"
        )))
        .bind(t)
        .fetch_one(tx.conn())
        .await?;
        if table == "chunks" {
            out.insert(stores::LEXICAL.to_owned(), n);
        }
        out.insert(stores::table(&table), n);
    }
    let points: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM chunks c JOIN documents d ON d.id = c.document_id
         WHERE d.status = 'ready' OR (d.status = 'deleting' AND d.stage = 'index')",
    )
    .fetch_one(tx.conn())
    .await?;
    out.insert(stores::vectors(tier), points);
    out.insert(
        stores::TENANT_OBJECTS.to_owned(),
        blobs.list_all(t).await?.len() as i64,
    );
    let (payloads, keys) = redis_mentions(queue, &t.to_string()).await?;
    out.insert(stores::QUEUE.to_owned(), payloads);
    out.insert(stores::REDIS_KEYS.to_owned(), keys);
    Ok(out)
}
