//! The residue scan after a sweep: every store is searched again for what was deleted.
//! PostgreSQL: every tenant table the catalog lists (the one the RLS test reads, so a new
//! table is scanned without anyone remembering to add it), each row's whole text searched
//! for the id, in the tenant's scope; plus the document's sample chunks by hash. Object
//! storage: a listing under the tenant's prefixes. Redis: every queue payload and key under
//! the deployment prefix. The worker adds a count in every vector placement. Stores kept
//! on purpose (the retention exceptions) are not residue and are not searched here.

use super::document::SweepError;
use crate::blobs::BlobStore;
use crate::db::Db;
use crate::ids::TenantId;
use crate::jobs::JobQueue;
use crate::jobs::finished;
use serde::{Deserialize, Serialize};

/// Tenant tables kept on purpose and so not residue: the audit chain (immutable; its actor
/// links die with the pseudonym key), the usage ledger and its monthly roll-up (kept for
/// the legal retention period), the deletions themselves (this one is the proof).
pub const RETAINED_TABLES: [&str; 4] = ["audit_events", "usage_events", "usage_monthly", "deletions"];

/// Something found where nothing should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ResidueFinding)]
pub struct Finding {
    /// The store (`postgresql.<table>`, `objects`, `vectors.<tier>`, `redis`).
    pub store: String,
    /// How many rows, objects, points or entries.
    pub count: i64,
    /// What was matched.
    pub detail: String,
}

/// What the scan looked at and what it found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ResidueScan)]
pub struct Scan {
    /// Every store searched (for the certificate).
    pub checked: Vec<String>,
    /// Anything found (empty: clean).
    pub found: Vec<Finding>,
}

impl Scan {
    /// Adds a store's result.
    pub fn add(&mut self, store: impl Into<String>, count: i64, detail: impl Into<String>) {
        let store = store.into();
        if count > 0 {
            self.found.push(Finding {
                store: store.clone(),
                count,
                detail: detail.into(),
            });
        }
        self.checked.push(store);
    }
}

/// The tenant tables of the catalog, with whether the service role may read each.
async fn tenant_tables(tx: &mut crate::db::TenantTx) -> Result<Vec<(String, bool)>, SweepError> {
    Ok(sqlx::query_as(
        "SELECT c.relname::text, has_table_privilege(current_user, c.oid, 'SELECT') FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(tx.conn())
    .await?)
}

/// How a residue search matches a row's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needle<'a> {
    /// Anywhere (an id: nothing else contains a whole UUID by chance).
    Anywhere(&'a str),
    /// As a whole address, ignoring case (`ann@x.com` is not inside `joann@x.com`).
    Address(&'a str),
}

/// A regex matching `address` alone: not preceded or followed by what an address may
/// contain.
fn address_pattern(address: &str) -> String {
    let mut escaped = String::new();
    for c in address.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    format!("(^|[^a-z0-9._%+-]){escaped}($|[^a-z0-9.-])")
}

/// Searches every tenant table but the retained ones and `skip`, in `tx`'s tenant, for rows
/// whose whole text (every column, whatever it is called) holds `needle`.
pub(super) async fn tables_naming(
    tx: &mut crate::db::TenantTx,
    scan: &mut Scan,
    needle: Needle<'_>,
    skip: &[&str],
    detail: &str,
) -> Result<(), SweepError> {
    for (table, readable) in tenant_tables(tx).await? {
        if RETAINED_TABLES.contains(&table.as_str()) || skip.contains(&table.as_str()) {
            continue;
        }
        let store = format!("postgresql.{table}");
        if !readable {
            scan.add(
                store,
                1,
                "the service role cannot read this table, so it cannot be searched",
            );
            continue;
        }
        let (condition, bound) = match needle {
            Needle::Anywhere(n) => ("strpos(r::text, $1) > 0", n.to_owned()),
            Needle::Address(a) => ("r::text ~* $1", address_pattern(a)),
        };
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} r WHERE {condition}"
        )))
        .bind(bound)
        .fetch_one(tx.conn())
        .await?;
        scan.add(store, n, detail);
    }
    Ok(())
}

/// Rows of `tables` (in `tx`'s tenant) whose text holds `address` as a whole address.
pub(super) async fn address_mentions(
    tx: &mut crate::db::TenantTx,
    tables: &[&str],
    address: &str,
) -> Result<i64, SweepError> {
    let mut n = 0;
    for table in tables {
        let found: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} r WHERE r::text ~* $1"
        )))
        .bind(address_pattern(address))
        .fetch_one(tx.conn())
        .await?;
        n += found;
    }
    Ok(n)
}

/// Scans PostgreSQL, object storage and Redis for document `d` of `tenant`: its id, and
/// the chunks whose SHA-256s are `samples` in documents older than the deletion's request
/// (`requested`: the same file uploaded again since is a new document, not residue).
pub async fn document(
    db: &Db,
    blobs: &BlobStore,
    queue: &JobQueue,
    tenant: TenantId,
    d: crate::ids::DocumentId,
    samples: &[String],
    requested: chrono::DateTime<chrono::Utc>,
) -> Result<Scan, SweepError> {
    let needle = d.to_string();
    let mut scan = Scan::default();
    let mut tx = db.begin_tenant(tenant).await?;
    let detail = format!("rows naming document {needle}");
    tables_naming(&mut tx, &mut scan, Needle::Anywhere(&needle), &[], &detail).await?;
    let again: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM chunks c JOIN documents o ON o.id = c.document_id
         WHERE c.sha256 = ANY($1) AND o.created_at < $2",
    )
    .bind(samples)
    .bind(requested)
    .fetch_one(tx.conn())
    .await?;
    scan.add(
        "postgresql.chunks (sample text)",
        again,
        "chunks with the deleted document's sample text",
    );
    tx.commit().await?;

    let own = blobs.list(tenant, &super::document::folder(d)).await?;
    scan.add(
        "objects.document",
        own.len() as i64,
        "objects under the document's folder",
    );
    let marker = format!("documents/{needle}/");
    let packaged = blobs
        .list(tenant, "exports")
        .await?
        .into_iter()
        .filter(|p| p.contains(&marker))
        .count();
    scan.add(
        "objects.export_packages",
        packaged as i64,
        "the document's files inside download packages",
    );

    let (payloads, keys) = redis_mentions(queue, &needle).await?;
    scan.add(
        "redis.queue_payloads",
        payloads,
        "queue payloads naming the document",
    );
    scan.add("redis.keys", keys, "keys naming the document");
    Ok(scan)
}

/// Queue payloads naming `needle` (any state) and keys whose name contains it, under the
/// deployment's prefix.
pub async fn redis_mentions(queue: &JobQueue, needle: &str) -> Result<(i64, i64), SweepError> {
    redis_mentions_but(queue, needle, None).await
}

/// [`redis_mentions`], leaving out the payloads that also name `but` (a whole-tenant
/// deletion's own task names the tenant: it is the deletion, not residue).
pub async fn redis_mentions_but(
    queue: &JobQueue,
    needle: &str,
    but: Option<&str>,
) -> Result<(i64, i64), SweepError> {
    let redis = queue.redis();
    let mut conn = redis.conn().await.map_err(|e| SweepError::Redis(e.to_string()))?;
    let mut payloads = 0;
    let queue_err = |e: crate::jobs::QueueError| SweepError::Redis(e.to_string());
    let (n, b) = (needle.as_bytes(), but.unwrap_or_default().as_bytes());
    let matches = |v: &[u8]| finished::contains(v, n) && !finished::contains(v, b);
    for data in finished::data_hashes(&mut conn, redis.prefix())
        .await
        .map_err(queue_err)?
    {
        payloads += finished::tasks_where(&mut conn, &data, &matches)
            .await
            .map_err(queue_err)?
            .len() as i64;
    }
    Ok((payloads, keys_naming(queue, needle, false).await?))
}

/// Keys under the deployment's prefix whose name holds `needle`, counted, and removed too
/// when `unlink` (a whole-tenant sweep). Returns how many.
pub(super) async fn keys_naming(queue: &JobQueue, needle: &str, unlink: bool) -> Result<i64, SweepError> {
    let redis = queue.redis();
    let redis_err = |e: &dyn std::fmt::Display| SweepError::Redis(e.to_string());
    let mut conn = redis.conn().await.map_err(|e| redis_err(&e))?;
    let pattern = format!("{}*{needle}*", redis.prefix());
    let (mut cursor, mut keys) = (0u64, 0i64);
    loop {
        let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_err(&e))?;
        keys += found.len() as i64;
        if unlink && !found.is_empty() {
            redis::cmd("UNLINK")
                .arg(&found)
                .query_async::<i64>(&mut conn)
                .await
                .map_err(|e| redis_err(&e))?;
        }
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_address_pattern_escapes_what_regexes_read_and_bounds_the_address() {
        assert_eq!(
            super::address_pattern("ann.b+x@x.com"),
            r"(^|[^a-z0-9._%+-])ann\.b\+x@x\.com($|[^a-z0-9.-])"
        );
    }
}
