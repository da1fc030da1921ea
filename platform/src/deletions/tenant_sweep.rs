//! The steps of a whole-tenant deletion, in the order the `delete` job runs them (the
//! vectors, which need the vector store, are the worker's): freeze (every document marked
//! deleting so no stage goes on, feeds and queued exports stopped), wait until nothing
//! runs, delete every object under the tenant's prefix, delete every row of every tenant
//! table the catalog lists but the retained ones (children before parents, in one
//! transaction), drop the tenant's Redis keys and queue payloads, scan every store again,
//! and end: destroy the tenant's keys last, in the transaction that stores the certificate
//! and marks the tenant `deleted`. Every step is idempotent; each store's count is kept
//! from the first sweep.

use super::certificate::{self, Certificate, Plaintext, Retained};
use super::document::{self, QueueSweep, RUNNING_FOR_AT_MOST_SECS, SweepError, Target};
use super::issue::{Issued, running, sign, store_certificate};
use super::residue::{Scan, redis_mentions_but};
use super::{stores, subject_sha256};
use crate::audit::Auditor;
use crate::blobs::BlobStore;
use crate::db::{Db, TenantTx};
use crate::exports::package::sha256_hex;
use crate::identity::keyring::KeyRing;
use crate::jobs::{JobQueue, finished};
use chrono::Utc;
use std::collections::{BTreeMap, BTreeSet};

/// Tenant tables a whole-tenant deletion keeps, why, and whether only for the retention
/// period (`true`) or as long as the chain they belong to (`false`). Every table of
/// [`super::residue::RETAINED_TABLES`] is here, with the billing records a tenant deletion keeps as well.
pub const TENANT_RETAINED: [(&str, &str, bool); 12] = [
    (
        "audit_events",
        "the audit chain is append-only; its actor pseudonyms die with the key",
        false,
    ),
    (
        "usage_events",
        "the usage ledger is kept for the legal retention period",
        true,
    ),
    (
        "usage_monthly",
        "the usage ledger's roll-up is kept with it",
        true,
    ),
    (
        "deletions",
        "the deletions, this one included, are the proof",
        false,
    ),
    (
        "invoices",
        "invoices are kept for the legal retention period",
        true,
    ),
    (
        "invoice_lines",
        "invoice lines are kept with their invoices",
        true,
    ),
    (
        "invoice_adjustments",
        "billing corrections are kept with the invoices they changed",
        true,
    ),
    (
        "invoice_failures",
        "billing failures are kept with the invoices",
        true,
    ),
    (
        "plan_history",
        "the plan history invoices were computed from",
        true,
    ),
    (
        "status_history",
        "the status history invoices were computed from",
        true,
    ),
    (
        "stripe_customers",
        "the payment provider's customer id the invoices were charged to",
        true,
    ),
    (
        "tenant_secrets",
        "the row stays to record that the keys were destroyed; the sealed keys are erased",
        false,
    ),
];

/// Whether a tenant table is kept by a whole-tenant deletion.
pub fn retained(table: &str) -> bool {
    TENANT_RETAINED.iter().any(|(t, _, _)| *t == table)
}

/// The tenant tables a whole-tenant deletion empties (every table of the catalog with a
/// `tenant_id` but the retained ones), children before the tables they reference.
pub async fn swept_tables(tx: &mut TenantTx) -> Result<Vec<String>, SweepError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(tx.conn())
    .await?;
    let edges: Vec<(String, String)> = sqlx::query_as(
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint
         WHERE contype = 'f' AND conrelid <> confrelid",
    )
    .fetch_all(tx.conn())
    .await?;
    let mut left: BTreeSet<String> = tables.into_iter().filter(|t| !retained(t)).collect();
    let mut ordered = vec![];
    // Repeatedly take the tables no remaining table references (a child goes first).
    while !left.is_empty() {
        let free: Vec<String> = left
            .iter()
            .filter(|t| {
                !edges
                    .iter()
                    .any(|(child, parent)| parent == *t && left.contains(child))
            })
            .cloned()
            .collect();
        if free.is_empty() {
            return Err(SweepError::Busy(format!(
                "tenant tables reference each other in a cycle: {left:?}"
            )));
        }
        for t in free {
            left.remove(&t);
            ordered.push(t);
        }
    }
    Ok(ordered)
}

/// Stops everything that could add to the tenant while it is swept: every document is
/// marked `deleting` (no stage starts on it, a running one cannot bring it back, it
/// answers nothing), import feeds stop and running imports are cancelled, queued exports
/// are cancelled. Unpacking imports and running exports are waited for ([`busy`]).
pub async fn freeze(db: &Db, t: &Target) -> Result<(), SweepError> {
    let mut tx = db.begin_tenant(t.tenant).await?;
    sqlx::query(
        "UPDATE documents SET status = 'deleting', feed_state = NULL, updated_at = now()
         WHERE status <> 'deleting' OR feed_state IS NOT NULL",
    )
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "UPDATE imports SET status = 'cancelled', sealed_credentials = NULL, finished_at = now(), updated_at = now()
         WHERE status = 'running'",
    )
    .execute(tx.conn())
    .await?;
    sqlx::query("UPDATE exports SET status = 'cancelled', finished_at = now() WHERE status = 'queued'")
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Why the sweep cannot start yet, if it cannot: a stage still runs (started before the
/// freeze), an archive is being unpacked, or an export is being written.
pub async fn busy(db: &Db, t: &Target) -> Result<Option<String>, SweepError> {
    let mut tx = db.begin_tenant(t.tenant).await?;
    let found: (Option<String>, bool, bool) = sqlx::query_as(
        "SELECT (SELECT kind FROM jobs WHERE status = 'running'
                   AND updated_at > now() - make_interval(secs => $1) LIMIT 1),
                EXISTS (SELECT 1 FROM imports WHERE status = 'unpacking'),
                EXISTS (SELECT 1 FROM exports WHERE status = 'running')",
    )
    .bind(RUNNING_FOR_AT_MOST_SECS as f64)
    .fetch_one(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(match found {
        (Some(kind), _, _) => Some(format!("a {kind} job is still running")),
        (None, true, _) => Some("an import archive is still being unpacked".into()),
        (None, false, true) => Some("an export is still being written".into()),
        (None, false, false) => None,
    })
}

/// Deletes every object under the tenant's prefix, counted and recorded before they go.
pub async fn sweep_objects(
    db: &Db,
    blobs: &BlobStore,
    auditor: &Auditor,
    t: &Target,
) -> Result<(), SweepError> {
    let objects = blobs.list_all(t.tenant).await?.len() as i64;
    document::record(db, auditor, t, stores::TENANT_OBJECTS, objects).await?;
    blobs.delete_all(t.tenant).await?;
    Ok(())
}

/// Deletes every row of every swept table ([`swept_tables`]) in one transaction, in the
/// tenant's scope (row-level security bounds every statement to it; the statements name
/// the tenant as well), with each table's count. The lexical index is the `lexemes`
/// column of the chunks' rows, counted apart so the certificate names it.
pub async fn sweep_rows(db: &Db, auditor: &Auditor, t: &Target) -> Result<(), SweepError> {
    let mut tx = db.begin_tenant(t.tenant).await?;
    let mut counts = vec![];
    for table in swept_tables(&mut tx).await? {
        let n = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE tenant_id = $1"
        )))
        .bind(t.tenant)
        .execute(tx.conn())
        .await?
        .rows_affected() as i64;
        if table == "chunks" {
            counts.push((stores::LEXICAL.to_owned(), n));
        }
        counts.push((stores::table(&table), n));
    }
    for (store, n) in counts {
        document::swept(&mut tx, auditor, t, &store, n).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Deletes the tenant's Redis keys (every key under the deployment's prefix whose name
/// holds the tenant's id: limits, counters, locks) and the payloads of its finished
/// tasks; adds both to the counts as it goes. Tasks not finished are counted as pending
/// (each stops at once when it runs: its records are gone).
pub async fn sweep_redis(db: &Db, queue: &JobQueue, t: &Target) -> Result<QueueSweep, SweepError> {
    let (needle, own) = (t.tenant.to_string(), t.deletion.to_string());
    // This deletion's own task names the tenant too: it is running, not pending; its
    // payload goes once it has finished (`tenant::forget_own_tasks`).
    let (n, o) = (needle.as_bytes(), own.as_bytes());
    let swept = finished::forget_finished(
        queue,
        &|v| finished::contains(v, n) && !finished::contains(v, o),
        std::time::Duration::ZERO,
    )
    .await
    .map(|f| QueueSweep {
        removed: f.removed,
        pending: f.kept,
    })
    .map_err(|e| SweepError::Redis(e.to_string()))?;
    let keys = super::residue::keys_naming(queue, &needle, true).await?;
    let mut tx = db.begin_tenant(t.tenant).await?;
    super::add_swept(&mut tx, t.deletion, stores::QUEUE, swept.removed).await?;
    super::add_swept(&mut tx, t.deletion, stores::REDIS_KEYS, keys).await?;
    tx.commit().await?;
    Ok(swept)
}

/// Scans PostgreSQL (every swept table must hold no row of the tenant; the catalog is read
/// again, so a table added since is scanned too), object storage (a listing of the whole
/// prefix) and Redis (payloads and key names holding the tenant's id). The worker adds a
/// count in every vector placement.
pub async fn residue(db: &Db, blobs: &BlobStore, queue: &JobQueue, t: &Target) -> Result<Scan, SweepError> {
    let mut scan = Scan::default();
    let mut tx = db.begin_tenant(t.tenant).await?;
    for table in swept_tables(&mut tx).await? {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = $1"
        )))
        .bind(t.tenant)
        .fetch_one(tx.conn())
        .await?;
        scan.add(stores::table(&table), n, "rows of the tenant");
    }
    tx.commit().await?;
    let objects = blobs.list_all(t.tenant).await?.len() as i64;
    scan.add(
        stores::TENANT_OBJECTS,
        objects,
        "objects under the tenant's prefix",
    );
    let own = t.deletion.to_string();
    let (payloads, keys) = redis_mentions_but(queue, &t.tenant.to_string(), Some(&own)).await?;
    scan.add(stores::QUEUE, payloads, "queue payloads naming the tenant");
    scan.add(stores::REDIS_KEYS, keys, "keys naming the tenant");
    Ok(scan)
}

/// How each kind of the tenant's plaintext was handled (the certificate's `plaintext`).
fn plaintext() -> Vec<Plaintext> {
    let p = |data: &str, store: &str, handling: &str| Plaintext {
        data: data.into(),
        store: store.into(),
        handling: handling.into(),
    };
    vec![
        p(
            "originals, extracted text, vectors, import archives, download packages",
            "object storage",
            "encrypted under the tenant's data key (AES-256-GCM); deleted, and the key destroyed",
        ),
        p(
            "chunk text, headings and the lexical index",
            "postgresql.chunks",
            "plaintext; rows deleted",
        ),
        p(
            "questions and answers",
            "postgresql.queries",
            "plaintext; rows deleted",
        ),
        p(
            "users' names and addresses, API key metadata",
            "postgresql.users, postgresql.api_keys",
            "plaintext; rows deleted",
        ),
        p(
            "vector payloads (chunk text, page range)",
            "vector store",
            "dedicated and isolated placements: the tenant's own files removed; shared: points deleted, and the in-process engine's write-ahead log keeps deleted points' bytes until its segments are rewritten (not searchable)",
        ),
        p(
            "audit actors",
            "postgresql.audit_events",
            "keyed pseudonyms; the pseudonym key is destroyed, so they can no longer be linked to anyone",
        ),
        p(
            "queue payloads and limit counters (ids only)",
            "redis",
            "keys and finished tasks' payloads deleted",
        ),
    ]
}

/// Ends a whole-tenant deletion after the residue scan `scan`: `residue_found` when it
/// found anything (the keys stay: an operator looks); otherwise, in one transaction, the
/// tenant's keys are destroyed (last of all), the certificate stored and the tenant
/// marked `deleted` with its slug reserved for `retention_days`.
pub async fn finish(
    db: &Db,
    keys: &KeyRing,
    auditor: &Auditor,
    retention_days: u32,
    t: &Target,
    scan: Scan,
) -> Result<Issued, SweepError> {
    if !scan.found.is_empty() {
        return super::issue::finish(db, keys, auditor, retention_days, t, scan).await;
    }
    let mut tx = db.begin_tenant(t.tenant).await?;
    let Some((requested_at, started_at, swept)) = running(&mut tx, t.deletion).await? else {
        return Ok(Issued::Ended);
    };
    // The keys, named by the SHA-256 of their sealed form: whoever holds a backup can tell
    // which key was destroyed; the certificate does not reveal it.
    type Sealed = (Option<Vec<u8>>, Option<Vec<u8>>);
    let sealed: Option<Sealed> =
        sqlx::query_as("SELECT data_key_enc, pseudonym_key_enc FROM tenant_secrets FOR UPDATE")
            .fetch_optional(tx.conn())
            .await?;
    let mut destroyed = vec![];
    if let Some((data, pseudonym)) = sealed {
        for (kind, k) in [("data-key", data), ("pseudonym-key", pseudonym)] {
            if let Some(k) = k {
                destroyed.push(format!("{kind}:sha256:{}", sha256_hex(&k)));
            }
        }
    }
    let now = Utc::now();
    let until = now + chrono::Duration::days(i64::from(retention_days));
    let mut retained = vec![];
    for (table, reason, dated) in TENANT_RETAINED {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = $1"
        )))
        .bind(t.tenant)
        .fetch_one(tx.conn())
        .await?;
        retained.push(Retained {
            store: stores::table(table),
            count: n,
            reason: reason.into(),
            until: dated.then_some(until),
        });
    }
    retained.push(Retained {
        store: "postgresql.tenants".into(),
        count: 1,
        reason: "the organisation's record (name, plan, status) stays with its invoices; its slug is reserved until then".into(),
        until: Some(until),
    });
    let cert = Certificate {
        format: certificate::FORMAT.into(),
        deletion_id: t.deletion,
        scope: "tenant".into(),
        subject: BTreeMap::from([("tenant".to_owned(), subject_sha256("tenant", t.tenant.as_uuid()))]),
        requested_at,
        started_at: started_at.unwrap_or(requested_at),
        finished_at: now,
        stores: serde_json::from_value(swept).unwrap_or_default(),
        residue: scan,
        keys_destroyed: destroyed,
        plaintext: plaintext(),
        retained,
    };
    let signed = sign(keys, &cert).await?;
    store_certificate(&mut tx, auditor, &cert, &signed).await?;
    // Last: the keys. A tenant whose keys were never made gets a destroyed row, so none can
    // be made afterwards.
    sqlx::query(
        "INSERT INTO tenant_secrets (tenant_id, master_kid, destroyed_at) VALUES ($1, 'destroyed', now())
         ON CONFLICT (tenant_id) DO UPDATE SET pseudonym_key_enc = NULL, data_key_enc = NULL,
                destroyed_at = coalesce(tenant_secrets.destroyed_at, now())",
    )
    .bind(t.tenant)
    .execute(tx.conn())
    .await?;
    sqlx::query("SELECT docket_tenant_deletion_state('deleted', $1)")
        .bind(retention_days as i32)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(Issued::Certificate(signed.sha256))
}
