//! A user's personal data erased (`DELETE /v1/users/{id}?erase=true`): in one transaction
//! the email becomes `erased-{id}@erased.invalid`, the password hash goes, the account is
//! disabled, its refresh tokens and its login throttle row are deleted; then every tenant
//! table is searched for the old address (the residue scan), and the deletion is recorded
//! with its signed certificate, or refused as a whole if anything is found. The user's id
//! stays (documents, questions and audit rows name it); it now leads to nobody. Audit rows
//! name actors only by pseudonym and carry no addresses.

use super::certificate::{self, Certificate, Plaintext, Retained};
use super::document::SweepError;
use super::residue::{Needle, Scan, address_mentions, tables_naming};
use super::subject_sha256;
use crate::audit::{Actor, Auditor, Event, Outcome};
use crate::blobs::BlobStore;
use crate::db::TenantTx;
use crate::identity::keyring::KeyRing;
use crate::ids::UserId;
use chrono::Utc;
use std::collections::BTreeMap;

/// What an erasure removes, per store (the dry run and the certificate).
pub type Counts = BTreeMap<String, i64>;

/// The organisation's content: documents it uploaded, questions its people asked, import
/// records. A mention of the person there is the organisation's record, not the account's
/// personal data: counted in the certificate as retained, not erased, not residue.
pub const CONTENT_TABLES: [&str; 4] = ["chunks", "documents", "import_failures", "queries"];

/// The user's old address, if the user exists (and is not erased already).
async fn address(tx: &mut TenantTx, user: UserId) -> Result<Option<String>, SweepError> {
    Ok(sqlx::query_scalar(
        "SELECT email FROM users WHERE id = $1 AND email NOT LIKE 'erased-%@erased.invalid' FOR UPDATE",
    )
    .bind(user)
    .fetch_optional(tx.conn())
    .await?)
}

/// The login throttle's key for an address (a pseudonym, like the login route's).
async fn throttle_account(tx: &mut TenantTx, auditor: &Auditor, email: &str) -> Result<String, SweepError> {
    Ok(auditor.tenant_pseudonym(tx, &format!("email:{email}")).await?)
}

/// What erasing `user` would remove, changing nothing; `None` when there is no such user
/// (or it is erased already).
pub async fn plan(tx: &mut TenantTx, auditor: &Auditor, user: UserId) -> Result<Option<Counts>, SweepError> {
    let Some(email) = address(tx, user).await? else {
        return Ok(None);
    };
    let account = throttle_account(tx, auditor, &email).await?;
    let (tokens, throttle): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM refresh_tokens WHERE user_id = $1),
                (SELECT count(*) FROM login_throttle WHERE account = $2)",
    )
    .bind(user)
    .bind(&account)
    .fetch_one(tx.conn())
    .await?;
    Ok(Some(BTreeMap::from([
        ("postgresql.users.email".to_owned(), 1),
        ("postgresql.users.password_hash".to_owned(), 1),
        ("postgresql.refresh_tokens".to_owned(), tokens),
        ("postgresql.login_throttle".to_owned(), throttle),
    ])))
}

/// How the erasure ended.
#[derive(Debug)]
pub enum Erased {
    /// Done: the deletion's id and its certificate's SHA-256.
    Done {
        /// The deletion.
        deletion: uuid::Uuid,
        /// SHA-256 of the certificate.
        certificate_sha256: String,
    },
    /// No such user (or erased already).
    NotFound,
    /// An export is being written (it copies users): asked again once it ends.
    ExportRunning,
    /// The address was still found after erasing (nothing was committed): the findings.
    Residue(Scan),
}

/// Erases `user`'s personal data in `tx` (committed by the caller only when `Done`).
pub async fn erase(
    tx: &mut TenantTx,
    auditor: &Auditor,
    keys: &KeyRing,
    blobs: &BlobStore,
    user: UserId,
    requested_by: &str,
) -> Result<Erased, SweepError> {
    let requested_at = Utc::now();
    let Some(mut counts) = plan(tx, auditor, user).await? else {
        return Ok(Erased::NotFound);
    };
    let running: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM exports WHERE status IN ('queued', 'running') LIMIT 1")
            .fetch_optional(tx.conn())
            .await?;
    if running.is_some() {
        return Ok(Erased::ExportRunning);
    }
    // Download packages in our storage hold a copy of every user (users.jsonl): withdrawn.
    // Their objects go before the commit; should the erasure then roll back, a package is
    // a copy the organisation can export again.
    let packages: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM exports WHERE kind = 'download' AND package_deleted_at IS NULL AND status = 'done'",
    )
    .fetch_all(tx.conn())
    .await?;
    let mut objects = 0;
    for export in &packages {
        objects += blobs
            .delete_prefix(tx.tenant_id(), &crate::exports::package_folder(*export))
            .await? as i64;
        sqlx::query("UPDATE exports SET package_deleted_at = now() WHERE id = $1")
            .bind(export)
            .execute(tx.conn())
            .await?;
        let ev = Event::new("exports.package_deleted", Outcome::Allowed, Actor::System)
            .target(format!("export:{export}"))
            .reason("user_erased");
        auditor.tenant(tx, ev).await?;
    }
    counts.insert("objects.export_packages".into(), objects);
    let Some(email) = address(tx, user).await? else {
        return Ok(Erased::NotFound);
    };
    let account = throttle_account(tx, auditor, &email).await?;
    sqlx::query(
        "UPDATE users SET email = 'erased-' || id::text || '@erased.invalid', password_hash = NULL,
                status = 'disabled', updated_at = now() WHERE id = $1",
    )
    .bind(user)
    .execute(tx.conn())
    .await?;
    sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
        .bind(user)
        .execute(tx.conn())
        .await?;
    sqlx::query("DELETE FROM login_throttle WHERE account = $1")
        .bind(&account)
        .execute(tx.conn())
        .await?;
    let mut scan = Scan::default();
    let detail = "rows holding the erased address";
    tables_naming(tx, &mut scan, Needle::Address(&email), &CONTENT_TABLES, detail).await?;
    let in_audit = address_mentions(tx, &["audit_events"], &email).await?;
    scan.add(
        "postgresql.audit_events",
        in_audit,
        "audit rows holding the erased address",
    );
    if !scan.found.is_empty() {
        return Ok(Erased::Residue(scan));
    }
    let mentioned = address_mentions(tx, &CONTENT_TABLES, &email).await?;
    let audit_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events a WHERE strpos(a::text, $1) > 0")
            .bind(user.0.to_string())
            .fetch_one(tx.conn())
            .await?;

    let deletion = uuid::Uuid::new_v4();
    let tenant = tx.tenant_id();
    let now = Utc::now();
    let cert = Certificate {
        format: certificate::FORMAT.into(),
        deletion_id: deletion,
        scope: "user".into(),
        subject: BTreeMap::from([
            ("tenant".to_owned(), subject_sha256("tenant", tenant.as_uuid())),
            ("user".to_owned(), subject_sha256("user", user.0)),
        ]),
        requested_at,
        started_at: requested_at,
        finished_at: now,
        stores: counts.clone(),
        residue: scan,
        keys_destroyed: vec![],
        plaintext: vec![
            Plaintext {
                data: "email address".into(),
                store: "postgresql.users".into(),
                handling: "replaced by erased-<user id>@erased.invalid".into(),
            },
            Plaintext {
                data: "password hash, sessions, login throttle".into(),
                store: "postgresql.users, refresh_tokens, login_throttle".into(),
                handling: "deleted".into(),
            },
        ],
        retained: vec![
            Retained {
                store: "postgresql.audit_events".into(),
                count: audit_rows,
                reason: "append-only; holds no addresses (searched): actors appear as keyed pseudonyms, targets by the user's id, which now leads to no person".into(),
                until: None,
            },
            Retained {
                store: "the organisation's content (documents, chunks, questions, import records)".into(),
                count: mentioned,
                reason: "rows mentioning the address are the organisation's records, not the account's; the user's id stays as their author".into(),
                until: None,
            },
        ],
    };
    let signed = super::issue::sign(keys, &cert).await?;
    sqlx::query(
        "INSERT INTO deletions (id, tenant_id, scope, target_sha256, status, requested_by, swept, residue,
                                certificate, certificate_sha256, attempts, started_at, finished_at)
         VALUES ($1, $2, 'user', $3, 'done', $4, $5, '[]'::jsonb, $6, $7, 1, $8, $9)",
    )
    .bind(deletion)
    .bind(tenant)
    .bind(subject_sha256("user", user.0))
    .bind(requested_by)
    .bind(serde_json::to_value(&counts).unwrap_or_default())
    .bind(&signed.text)
    .bind(&signed.sha256)
    .bind(requested_at)
    .bind(now)
    .execute(tx.conn())
    .await?;
    super::issue::audit_issued(tx, auditor, &cert, &signed).await?;
    Ok(Erased::Done {
        deletion,
        certificate_sha256: signed.sha256,
    })
}
