//! The owner's sign-off: every flagged finding kept (with a reason) or revoked — a
//! revocation is applied at once (the user disabled and signed out, the key revoked) and
//! audited with the decision — then the review completed. Decisions are recorded once each
//! and never edited; a review is completed only when every finding is decided.

use super::Status;
use super::issue::SignedReport;
use super::report::{Finding, Report};
use crate::audit::{Auditor, Event};
use crate::db::{DbError, TenantTx};
use crate::identity::{refresh, users};
use crate::ids::UserId;
use serde::Serialize;
use uuid::Uuid;

/// Longest reason kept.
pub const MAX_REASON: usize = 1_000;

/// What the owner decided about one finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Keep the access, for this reason.
    Keep(String),
    /// Revoke it (an optional note).
    Revoke(Option<String>),
}

/// One decision asked for.
#[derive(Debug, Clone)]
pub struct Asked {
    /// The finding's id in the report.
    pub finding_id: String,
    /// What to do.
    pub decision: Decision,
}

/// A decision recorded (and, for a revocation, applied).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = AppliedDecision)]
pub struct Applied {
    /// The finding.
    pub finding_id: String,
    /// `keep` or `revoke`.
    pub decision: &'static str,
    /// What the revocation did (`user_disabled`, `key_revoked`, or `already_revoked`).
    pub effect: Option<&'static str>,
}

/// Why a decision or completion was refused; nothing of the request is kept.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// No such review of this tenant.
    #[error("access review not found")]
    NotFound,
    /// The review is not open (not issued yet, or completed).
    #[error("the review is {0}; decisions are taken while it is open")]
    NotOpen(String),
    /// The finding is not in the review.
    #[error("finding {0:?} is not in this review")]
    UnknownFinding(String),
    /// A keep without a reason, or a reason too long.
    #[error("keeping finding {0:?} needs a reason (1 to 1000 characters)")]
    ReasonRequired(String),
    /// The finding was decided already.
    #[error("finding {0:?} was decided already; decisions are not changed")]
    AlreadyDecided(String),
    /// Revoking the decider's own access.
    #[error("you cannot revoke your own access; another owner decides finding {0:?}")]
    OwnAccess(String),
    /// Revoking the last active owner.
    #[error("revoking finding {0:?} would leave the organisation without an active owner")]
    LastOwner(String),
    /// Completion with findings undecided.
    #[error("{0} findings are undecided; decide every finding before completing the review")]
    Undecided(i64),
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The audit trail.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// The stored report could not be read.
    #[error("the stored report is unreadable: {0}")]
    Report(String),
}

impl From<sqlx::Error> for DecideError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

impl From<users::UserError> for DecideError {
    fn from(e: users::UserError) -> Self {
        match e {
            users::UserError::Db(e) => Self::Db(e),
            other => Self::Report(other.to_string()),
        }
    }
}

impl DecideError {
    /// The machine-readable code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            DecideError::NotFound => "not_found",
            DecideError::NotOpen(_) => "review_not_open",
            DecideError::UnknownFinding(_) => "unknown_finding",
            DecideError::ReasonRequired(_) => "reason_required",
            DecideError::AlreadyDecided(_) => "already_decided",
            DecideError::OwnAccess(_) => "cannot_modify_self",
            DecideError::LastOwner(_) => "last_owner",
            DecideError::Undecided(_) => "findings_undecided",
            DecideError::Db(_) | DecideError::Audit(_) | DecideError::Report(_) => "internal",
        }
    }
}

/// The open review `id`'s findings, its row locked for the rest of `tx`.
async fn open_findings(tx: &mut TenantTx, id: Uuid) -> Result<Vec<Finding>, DecideError> {
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT status, report FROM access_reviews WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(tx.conn())
            .await?;
    let (status, text) = row.ok_or(DecideError::NotFound)?;
    if Status::parse(&status) != Some(Status::Open) {
        return Err(DecideError::NotOpen(status));
    }
    let signed: SignedReport = serde_json::from_str(text.as_deref().unwrap_or_default())
        .map_err(|e| DecideError::Report(e.to_string()))?;
    let report: Report =
        serde_json::from_value(signed.report).map_err(|e| DecideError::Report(e.to_string()))?;
    Ok(report.findings)
}

/// Records and applies `asked` on review `id` for `decider` (the owner's `user:{id}`, or
/// `api_key:{id}` of a key with the owner role), all or nothing, each audited on the
/// tenant's chain with `event` (the decider's event,
/// carrying the request's id and address).
pub async fn decide(
    tx: &mut TenantTx,
    auditor: &Auditor,
    id: Uuid,
    decider: &str,
    event: impl Fn(&str) -> Event,
    asked: &[Asked],
) -> Result<Vec<Applied>, DecideError> {
    let findings = open_findings(tx, id).await?;
    users::lock_memberships(tx).await?;
    let mut out = vec![];
    for a in asked {
        let f = findings
            .iter()
            .find(|f| f.id == a.finding_id)
            .ok_or_else(|| DecideError::UnknownFinding(a.finding_id.clone()))?;
        let (name, reason) = match &a.decision {
            Decision::Keep(r) => {
                let r = r.trim();
                if r.is_empty() || r.chars().count() > MAX_REASON {
                    return Err(DecideError::ReasonRequired(f.id.clone()));
                }
                ("keep", Some(r.to_owned()))
            }
            Decision::Revoke(note) => {
                let note = note.as_deref().map(str::trim).filter(|n| !n.is_empty());
                if note.is_some_and(|n| n.chars().count() > MAX_REASON) {
                    return Err(DecideError::ReasonRequired(f.id.clone()));
                }
                ("revoke", note.map(str::to_owned))
            }
        };
        let inserted = sqlx::query(
            "INSERT INTO access_review_decisions (id, tenant_id, review_id, finding_id, decision, reason, decided_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (review_id, finding_id) DO NOTHING",
        )
        .bind(Uuid::new_v4())
        .bind(tx.tenant_id())
        .bind(id)
        .bind(&f.id)
        .bind(name)
        .bind(&reason)
        .bind(decider)
        .execute(tx.conn())
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(DecideError::AlreadyDecided(f.id.clone()));
        }
        let effect = match name {
            "revoke" => Some(revoke(tx, f, decider).await?),
            _ => None,
        };
        let mut ev = event(&format!("access_review.{name}"))
            .target(f.subject.clone())
            .detail("review_id", id.to_string())
            .detail("finding_id", f.id.clone())
            .detail("finding", serde_json::to_value(f.kind).unwrap_or_default());
        if let Some(r) = &reason {
            ev = ev.reason(r.clone());
        }
        if let Some(e) = effect {
            ev = ev.detail("effect", e);
        }
        auditor.tenant(tx, ev).await?;
        out.push(Applied {
            finding_id: f.id.clone(),
            decision: name,
            effect,
        });
    }
    Ok(out)
}

/// Applies a revocation: the user disabled and its sessions ended, or the key revoked
/// (`already_revoked` when someone did it since the report was made).
async fn revoke(tx: &mut TenantTx, f: &Finding, decider: &str) -> Result<&'static str, DecideError> {
    let bad = || DecideError::Report(format!("finding {} names no account", f.id));
    // A user or a key never revokes itself: another owner decides (the report is a
    // snapshot, so a key's `never_used_key` finding stays after the key is first used).
    if f.subject == decider {
        return Err(DecideError::OwnAccess(f.id.clone()));
    }
    let (kind, raw) = f.subject.split_once(':').ok_or_else(bad)?;
    let subject = Uuid::parse_str(raw).map_err(|_| bad())?;
    match kind {
        "user" => {
            let disabled = sqlx::query(
                "UPDATE users SET status = 'disabled', updated_at = now() WHERE id = $1 AND status = 'active'",
            )
            .bind(subject)
            .execute(tx.conn())
            .await?
            .rows_affected();
            if disabled == 0 {
                return Ok("already_revoked");
            }
            if users::active_owner_count(tx).await? == 0 {
                return Err(DecideError::LastOwner(f.id.clone()));
            }
            refresh::revoke_user(tx, UserId(subject)).await?;
            Ok("user_disabled")
        }
        "api_key" => {
            let revoked =
                sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
                    .bind(subject)
                    .execute(tx.conn())
                    .await?
                    .rows_affected();
            Ok(if revoked == 0 {
                "already_revoked"
            } else {
                "key_revoked"
            })
        }
        _ => Err(bad()),
    }
}

/// Completes open review `id` for `by` (`user:{id}` or `api_key:{id}`) once every finding
/// is decided; returns how many there were.
pub async fn complete(
    tx: &mut TenantTx,
    auditor: &Auditor,
    id: Uuid,
    by: &str,
    event: Event,
) -> Result<usize, DecideError> {
    let findings = open_findings(tx, id).await?;
    let decided: i64 =
        sqlx::query_scalar("SELECT count(*) FROM access_review_decisions WHERE review_id = $1")
            .bind(id)
            .fetch_one(tx.conn())
            .await?;
    let undecided = findings.len() as i64 - decided;
    if undecided > 0 {
        return Err(DecideError::Undecided(undecided));
    }
    sqlx::query(
        "UPDATE access_reviews SET status = 'completed', completed_by = $2, completed_at = now(), updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(by)
    .execute(tx.conn())
    .await?;
    let ev = event
        .target(format!("access_review:{id}"))
        .detail("findings", findings.len());
    auditor.tenant(tx, ev).await?;
    Ok(findings.len())
}

/// A decision as recorded.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = AccessReviewDecision)]
pub struct Recorded {
    /// The finding.
    pub finding_id: String,
    /// `keep` or `revoke`.
    pub decision: String,
    /// The owner's reason.
    pub reason: Option<String>,
    /// Who decided (`user:{id}`).
    pub decided_by: String,
    /// When.
    pub decided_at: chrono::DateTime<chrono::Utc>,
}

/// Every decision of review `id`, in the order taken.
pub async fn decisions(tx: &mut TenantTx, id: Uuid) -> Result<Vec<Recorded>, DbError> {
    Ok(sqlx::query_as(
        "SELECT finding_id, decision, reason, decided_by, decided_at FROM access_review_decisions
         WHERE review_id = $1 ORDER BY decided_at, finding_id",
    )
    .bind(id)
    .fetch_all(tx.conn())
    .await?)
}
