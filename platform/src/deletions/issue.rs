//! Ending a document deletion: a clean residue scan issues the signed certificate (once:
//! the deletion is `done` in the same transaction that stores it) and forgets the
//! document's id; anything found ends it as `residue_found`, listed, with no certificate.

use super::certificate::{self, Certificate, Plaintext, Retained};
use super::document::{SweepError, Target};
use super::residue::Scan;
use super::subject_sha256;
use crate::audit::{Actor, Auditor, Event, Outcome};
use crate::db::Db;
use crate::identity::keyring::KeyRing;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// How the deletion ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    /// Clean: the certificate's SHA-256.
    Certificate(String),
    /// Residue found (the findings are on the deletion).
    Residue(usize),
    /// It had ended already (a duplicate delivery): nothing done.
    Ended,
}

/// A certificate signed with the active platform key: the file's text, its SHA-256, the key.
pub(super) struct Signed {
    pub(super) text: String,
    pub(super) sha256: String,
    kid: String,
}

/// Signs `cert` with the active platform key.
pub(super) async fn sign(keys: &KeyRing, cert: &Certificate) -> Result<Signed, SweepError> {
    let signing = |e: &dyn std::fmt::Display| SweepError::Signing(e.to_string());
    let (kid, key) = keys.signer().await.map_err(|e| signing(&e))?;
    let text = certificate::sign(cert, &kid, &key).map_err(|e| signing(&e))?;
    let sha256 = crate::exports::package::sha256_hex(text.as_bytes());
    Ok(Signed { text, sha256, kid })
}

/// Audits a deletion's end and its certificate (`deletions.finished`, with what was
/// removed per store, and `deletions.certificate_issued`), in `tx`.
pub(super) async fn audit_issued(
    tx: &mut crate::db::TenantTx,
    auditor: &Auditor,
    cert: &Certificate,
    signed: &Signed,
) -> Result<(), SweepError> {
    let target = format!("deletion:{}", cert.deletion_id);
    let ev = Event::new("deletions.finished", Outcome::Allowed, Actor::System)
        .target(target.clone())
        .detail("scope", cert.scope.clone())
        .detail("stores", serde_json::to_value(&cert.stores).unwrap_or_default());
    auditor.tenant(tx, ev).await?;
    let ev = Event::new("deletions.certificate_issued", Outcome::Allowed, Actor::System)
        .target(target)
        .detail("certificate_sha256", signed.sha256.clone())
        .detail("kid", signed.kid.clone());
    auditor.tenant(tx, ev).await?;
    Ok(())
}

/// A running deletion's request time, start time and counts per store.
pub(super) type Running = (DateTime<Utc>, Option<DateTime<Utc>>, serde_json::Value);

/// When a running deletion was asked for and started, and its counts, locked; `None` once
/// it has ended (a duplicate delivery).
pub(super) async fn running(
    tx: &mut crate::db::TenantTx,
    id: uuid::Uuid,
) -> Result<Option<Running>, SweepError> {
    Ok(sqlx::query_as(
        "SELECT created_at, started_at, swept FROM deletions WHERE id = $1 AND status = 'running' FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// Stores the signed certificate and marks the deletion `done` (the subject's id and the
/// residue samples forgotten), with its audit events, in `tx`.
pub(super) async fn store_certificate(
    tx: &mut crate::db::TenantTx,
    auditor: &Auditor,
    cert: &Certificate,
    signed: &Signed,
) -> Result<(), SweepError> {
    sqlx::query(
        "UPDATE deletions SET status = 'done', residue = '[]'::jsonb, certificate = $2, certificate_sha256 = $3,
                target_id = NULL, samples = '{}', finished_at = $4, updated_at = now(), error_code = NULL, error_message = NULL
         WHERE id = $1",
    )
    .bind(cert.deletion_id)
    .bind(&signed.text)
    .bind(&signed.sha256)
    .bind(cert.finished_at)
    .execute(tx.conn())
    .await?;
    audit_issued(tx, auditor, cert, signed).await
}

/// How each kind of a document's plaintext is handled (the certificate's `plaintext`).
fn plaintext() -> Vec<Plaintext> {
    let p = |data: &str, store: &str, handling: &str| Plaintext {
        data: data.into(),
        store: store.into(),
        handling: handling.into(),
    };
    vec![
        p(
            "original file, extracted text, vectors",
            "object storage",
            "encrypted under the tenant's data key (AES-256-GCM); deleted",
        ),
        p(
            "chunk text and headings",
            "postgresql.chunks",
            "plaintext; rows deleted",
        ),
        p(
            "lexical index (chunk lexemes)",
            "postgresql.chunks.lexemes",
            "plaintext; deleted with the chunks",
        ),
        p(
            "cached vectors",
            "postgresql.embedding_cache",
            "plaintext floats; rows only this document used deleted",
        ),
        p(
            "answers quoting it",
            "postgresql.queries",
            "plaintext; answer and citations erased (the question, the asker's own text, stays)",
        ),
        p(
            "vector payloads (chunk text, page range)",
            "vector store",
            "points deleted in every placement; the in-process engine's write-ahead log keeps deleted points' bytes until its segments are rewritten (not searchable)",
        ),
        p(
            "queue payloads (ids only)",
            "redis",
            "finished tasks' payloads deleted",
        ),
    ]
}

/// Ends the deletion after the residue scan `scan`: the certificate (signed with the active
/// platform key) when clean, `residue_found` otherwise. A deletion already ended is left
/// as it is (one certificate, whatever the queue redelivers).
pub async fn finish(
    db: &Db,
    keys: &KeyRing,
    auditor: &Auditor,
    ledger_retention_days: u32,
    t: &Target,
    scan: Scan,
) -> Result<Issued, SweepError> {
    let mut tx = db.begin_tenant(t.tenant).await?;
    let Some((requested_at, started_at, swept)) = running(&mut tx, t.deletion).await? else {
        return Ok(Issued::Ended);
    };
    let target = format!("deletion:{}", t.deletion);
    if !scan.found.is_empty() {
        let n = scan.found.len();
        sqlx::query(
            "UPDATE deletions SET status = 'residue_found', residue = $2, finished_at = now(), updated_at = now(),
                    error_code = 'residue_found', error_message = 'the residue scan found data left behind; operators were alerted'
             WHERE id = $1",
        )
        .bind(t.deletion)
        .bind(serde_json::to_value(&scan.found).unwrap_or_default())
        .execute(tx.conn())
        .await?;
        let ev = Event::new("deletions.residue_found", Outcome::Failed, Actor::System)
            .target(target)
            .detail(
                "stores",
                scan.found.iter().map(|f| f.store.clone()).collect::<Vec<_>>(),
            );
        auditor.tenant(&mut tx, ev).await?;
        tx.commit().await?;
        return Ok(Issued::Residue(n));
    }
    let needle = t.document.to_string();
    // What stays on purpose, counted so the certificate says how much.
    let ledger: i64 =
        sqlx::query_scalar("SELECT count(*) FROM usage_events WHERE strpos(idempotency_key, $1) > 0")
            .bind(&needle)
            .fetch_one(tx.conn())
            .await?;
    let audit: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events a WHERE strpos(a::text, $1) > 0")
        .bind(&needle)
        .fetch_one(tx.conn())
        .await?;
    let now = Utc::now();
    let cert = Certificate {
        format: certificate::FORMAT.into(),
        deletion_id: t.deletion,
        scope: "document".into(),
        subject: BTreeMap::from([
            ("tenant".to_owned(), subject_sha256("tenant", t.tenant.as_uuid())),
            ("document".to_owned(), subject_sha256("document", t.document.as_uuid())),
        ]),
        requested_at,
        started_at: started_at.unwrap_or(requested_at),
        finished_at: now,
        stores: serde_json::from_value(swept).unwrap_or_default(),
        residue: scan.clone(),
        keys_destroyed: vec![],
        plaintext: plaintext(),
        retained: vec![
            Retained {
                store: "postgresql.usage_events".into(),
                count: ledger,
                reason: "the usage ledger is kept for the legal retention period (it holds counts and ids, no content)".into(),
                until: Some(now + chrono::Duration::days(i64::from(ledger_retention_days))),
            },
            Retained {
                store: "postgresql.audit_events".into(),
                count: audit,
                reason: "the audit chain is append-only (it holds ids and pseudonyms, no content)".into(),
                until: None,
            },
            Retained {
                store: "exports to the customer's own bucket".into(),
                count: 0,
                reason: "packages written to the customer's bucket before the deletion are the customer's copies".into(),
                until: None,
            },
        ],
    };
    let signed = sign(keys, &cert).await?;
    store_certificate(&mut tx, auditor, &cert, &signed).await?;
    tx.commit().await?;
    Ok(Issued::Certificate(signed.sha256))
}
