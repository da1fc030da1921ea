//! Issuing a review: the report built, signed with the active platform key, stored and
//! audited in one transaction that holds the review's row (its PDF is rendered from it when
//! asked for: [`super::pdf`]). A second delivery waits on the row and then
//! finds the review issued; an attempt that dies leaves the review as it was.

use super::report::{self, Report, ReportError};
use super::{Quarter, SIGNING_CONTEXT, Status};
use crate::audit::{Actor, Auditor, Event, Outcome};
use crate::db::{Db, DbError};
use crate::exports::package::{self, ManifestSignature, SignatureProblem, TrustedKeys};
use crate::identity::keyring::KeyRing;
use crate::ids::TenantId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What issuing needs.
#[derive(Debug, Clone, Copy)]
pub struct Services<'a> {
    /// Tenant-scoped database access.
    pub db: &'a Db,
    /// The platform's signing keys.
    pub keys: &'a KeyRing,
    /// The audit trail (and the tenant's pseudonyms).
    pub auditor: &'a Auditor,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    /// Issued now, with this many findings.
    Issued(usize),
    /// It was issued already (a duplicate delivery): nothing done.
    Already,
    /// No such review of this tenant.
    Missing,
    /// Its attempts (crashes included) are used up: recorded as `failed`.
    GaveUp,
}

/// Attempts, crashes included, before a review is recorded as `failed` (an operator's run
/// queues it again with a fresh count).
pub const MAX_ATTEMPTS: i32 = 5;

/// Issuing failed (the job retries, then records the review as failed).
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Building the report.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// Signing.
    #[error("signing the report: {0}")]
    Signing(String),
    /// The review's row holds a quarter that does not parse.
    #[error("the review's quarter {0:?} is not a quarter")]
    Quarter(String),
}

impl From<sqlx::Error> for IssueError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

impl From<crate::audit::AuditError> for IssueError {
    fn from(e: crate::audit::AuditError) -> Self {
        Self::Report(ReportError::Audit(e))
    }
}

/// The stored document: the report and the signature over it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedReport {
    /// The report.
    #[schema(value_type = crate::access_reviews::model::Report)]
    pub report: serde_json::Value,
    /// Ed25519 over [`SIGNING_CONTEXT`] + the canonical JSON of `report`.
    pub signature: ManifestSignature,
}

fn canonical(v: &serde_json::Value) -> Vec<u8> {
    crate::audit::canonical::to_string(v).into_bytes()
}

/// Issues review `id` of `tenant` (see the module).
pub async fn issue(s: Services<'_>, tenant: TenantId, id: Uuid) -> Result<Issued, IssueError> {
    // The attempt is counted in a commit of its own, so an attempt that crashes the worker
    // still counts: a review that always crashes ends `failed`, not retried for ever.
    let mut tx = s.db.begin_tenant(tenant).await?;
    let attempts: Option<i32> = sqlx::query_scalar(
        "UPDATE access_reviews SET attempts = attempts + 1, status = 'running', updated_at = now()
         WHERE id = $1 AND status IN ('queued', 'running') RETURNING attempts",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?;
    tx.commit().await?;
    if let Some(n) = attempts.filter(|n| *n > MAX_ATTEMPTS) {
        let msg = format!(
            "gave up after {} attempts: the job kept failing, crashing or timing out",
            n - 1
        );
        fail(s.db, tenant, id, &msg).await?;
        return Ok(Issued::GaveUp);
    }

    let mut tx = s.db.begin_tenant(tenant).await?;
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT quarter, status FROM access_reviews WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
    let Some((quarter, status)) = row else {
        return Ok(Issued::Missing);
    };
    if attempts.is_none() || Status::parse(&status) != Some(Status::Running) {
        return Ok(Issued::Already);
    }
    let q = Quarter::parse(&quarter).map_err(|_| IssueError::Quarter(quarter.clone()))?;
    let now = chrono::Utc::now();
    let built = report::build(&mut tx, s.auditor, id, q, now).await?;
    let (kid, key) = s
        .keys
        .signer()
        .await
        .map_err(|e| IssueError::Signing(e.to_string()))?;
    let value = serde_json::to_value(&built).map_err(|e| IssueError::Signing(e.to_string()))?;
    let signature = package::sign_in(SIGNING_CONTEXT, &canonical(&value), &kid, &key);
    let text = serde_json::to_string_pretty(&SignedReport {
        report: value,
        signature,
    })
    .map_err(|e| IssueError::Signing(e.to_string()))?;
    let sha256 = package::sha256_hex(text.as_bytes());
    sqlx::query(
        "UPDATE access_reviews SET status = 'open', report = $2, report_sha256 = $3,
                findings = $4, issued_at = now(), error_message = NULL, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(&text)
    .bind(&sha256)
    .bind(built.findings.len() as i32)
    .execute(tx.conn())
    .await?;
    let ev = Event::new("access_review.issued", Outcome::Allowed, Actor::System)
        .target(format!("access_review:{id}"))
        .detail("quarter", quarter)
        .detail("findings", built.findings.len())
        .detail("report_sha256", sha256)
        .detail("kid", kid);
    s.auditor.tenant(&mut tx, ev).await?;
    tx.commit().await?;
    Ok(Issued::Issued(built.findings.len()))
}

/// Records that the job gave up on review `id` (the next operator run queues it again).
pub async fn fail(db: &Db, tenant: TenantId, id: Uuid, message: &str) -> Result<(), DbError> {
    let mut tx = db.begin_tenant(tenant).await?;
    sqlx::query(
        "UPDATE access_reviews SET status = 'failed', error_message = $2, updated_at = now()
         WHERE id = $1 AND status IN ('queued', 'running')",
    )
    .bind(id)
    .bind(message)
    .execute(tx.conn())
    .await?;
    tx.commit().await
}

/// Checks a signed report: its signature against `trusted` keys (or, if none are given,
/// the key it carries: integrity only) and its format. Returns the report and the key id,
/// or every problem found.
pub fn verify(text: &[u8], trusted: Option<&TrustedKeys>) -> Result<(Report, String), Vec<String>> {
    let signed: SignedReport =
        serde_json::from_slice(text).map_err(|e| vec![format!("not a signed access review: {e}")])?;
    let mut problems = vec![];
    match package::check_signature(
        SIGNING_CONTEXT,
        &canonical(&signed.report),
        &signed.signature,
        trusted,
    ) {
        Ok(()) => {}
        Err(SignatureProblem::Untrusted(kid)) => problems.push(format!("key {kid} is not a trusted key")),
        Err(SignatureProblem::Malformed) => problems.push("the signature is malformed".into()),
        Err(SignatureProblem::Mismatch) => problems.push("the signature does not match the report".into()),
    }
    let report: Option<Report> = match serde_json::from_value(signed.report) {
        Ok(r) => Some(r),
        Err(e) => {
            problems.push(format!("not a {}: {e}", super::FORMAT));
            None
        }
    };
    match report {
        Some(r) if problems.is_empty() && r.format == super::FORMAT => Ok((r, signed.signature.kid)),
        Some(r) if problems.is_empty() => Err(vec![format!("format {} is not {}", r.format, super::FORMAT)]),
        _ => Err(problems),
    }
}
