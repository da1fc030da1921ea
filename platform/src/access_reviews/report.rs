//! Building a quarter's access-review report from the membership tables and the audit
//! trail. The audit trail names actors only by pseudonym, so the report computes each
//! user's and key's pseudonym with the tenant's key and reads the quarter's events as
//! per-actor aggregates (one grouped query, however many events the quarter holds), plus the
//! few events it lists one by one (membership changes, operators' actions).
//!
//! The signed report names accounts by id (`user:{id}`, `api_key:{id}`), never by address:
//! a user's erasure must not leave their address in a signed document it cannot change. The
//! PDF and the API's view add the addresses as they are when read.

use super::Quarter;
pub use super::model::{
    ActionCount, Change, Finding, FindingKind, KeyLine, OperatorAction, Report, TenantRef, UserLine,
};
use crate::audit::Auditor;
use crate::db::TenantTx;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::collections::HashMap;
use uuid::Uuid;

/// An account without a sign-in for this long before the quarter's end is dormant.
pub const DORMANT_DAYS: i64 = 90;

/// Actions (by prefix) counted as administrative: they change who can do what, or move or
/// remove the tenant's data.
pub const ADMIN_ACTIONS: [&str; 8] = [
    "users.",
    "api_keys.",
    "tenant.",
    "consent.",
    "exports.",
    "deletions.",
    "access_review.",
    "audit.export",
];

/// Membership actions listed one by one (an erasure shows as the erased account: disabled,
/// its address replaced).
const MEMBERSHIP_ACTIONS: [&str; 3] = ["users.create", "users.update", "users.disable"];

/// Building failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The database.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    /// The tenant's pseudonym key.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl From<sqlx::Error> for ReportError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    role: String,
    status: String,
    created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    name: String,
    role: String,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// The quarter's events of one actor, action and outcome.
#[derive(sqlx::FromRow)]
struct Count {
    actor_kind: String,
    actor_id: Option<String>,
    action: String,
    outcome: String,
    n: i64,
    last_at: DateTime<Utc>,
}

/// An event the report lists one by one.
#[derive(sqlx::FromRow)]
struct Listed {
    seq: i64,
    occurred_at: DateTime<Utc>,
    actor_kind: String,
    actor_id: Option<String>,
    action: String,
    target: Option<String>,
    outcome: String,
    reason: Option<String>,
    details: Value,
}

/// Builds `quarter`'s report of the transaction's tenant as of `now`.
pub async fn build(
    tx: &mut TenantTx,
    auditor: &Auditor,
    review_id: Uuid,
    quarter: Quarter,
    now: DateTime<Utc>,
) -> Result<Report, ReportError> {
    let (start, end) = (quarter.start(), quarter.end());
    let tenant: TenantRef =
        sqlx::query_as::<_, (Uuid, String, String)>("SELECT id, slug, name FROM tenants WHERE id = $1")
            .bind(tx.tenant_id())
            .fetch_one(tx.conn())
            .await
            .map(|(id, slug, name)| TenantRef { id, slug, name })?;
    let users: Vec<UserRow> = sqlx::query_as(
        "SELECT id, role, status, created_at FROM users WHERE created_at < $1 ORDER BY created_at, id",
    )
    .bind(end)
    .fetch_all(tx.conn())
    .await?;
    let keys: Vec<KeyRow> = sqlx::query_as(
        "SELECT id, name, role, created_by, created_at, expires_at, last_used_at, revoked_at
         FROM api_keys WHERE created_at < $1 ORDER BY created_at, id",
    )
    .bind(end)
    .fetch_all(tx.conn())
    .await?;

    // Pseudonym → account id, for every account the report names (the key opened once).
    let pseudonyms = auditor.tenant_pseudonyms(tx).await?;
    let mut names: HashMap<String, String> = HashMap::new();
    let mut user_alias = HashMap::new();
    for u in &users {
        let raw = format!("user:{}", u.id);
        let p = pseudonyms.of(&raw);
        names.insert(p.clone(), raw);
        user_alias.insert(u.id, p);
    }
    for k in &keys {
        let raw = format!("api_key:{}", k.id);
        names.insert(pseudonyms.of(&raw), raw);
    }
    let who = |kind: &str, id: &Option<String>| match id {
        Some(p) => names
            .get(p)
            .cloned()
            .unwrap_or_else(|| format!("{kind} {}", short(p))),
        None => kind.to_owned(),
    };

    // The quarter's events per actor, action and outcome.
    let counts: Vec<Count> = sqlx::query_as(
        "SELECT actor_kind, actor_id, action, outcome, count(*)::bigint AS n, max(occurred_at) AS last_at
         FROM audit_events WHERE tenant_id = $3 AND occurred_at >= $1 AND occurred_at < $2
         GROUP BY 1, 2, 3, 4",
    )
    .bind(start)
    .bind(end)
    .bind(tx.tenant_id())
    .fetch_all(tx.conn())
    .await?;
    let last_sign_in: HashMap<String, DateTime<Utc>> = sqlx::query_as::<_, (String, DateTime<Utc>)>(
        "SELECT actor_id, max(occurred_at) FROM audit_events
         WHERE tenant_id = $2 AND action = 'auth.login' AND outcome = 'allowed' AND actor_id IS NOT NULL
           AND occurred_at < $1
         GROUP BY 1",
    )
    .bind(end)
    .bind(tx.tenant_id())
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .collect();
    // (allowed, refused) sign-ins per actor.
    let mut logins: HashMap<&str, (i64, i64)> = HashMap::new();
    for c in counts.iter().filter(|c| c.action == "auth.login") {
        if let Some(actor) = c.actor_id.as_deref() {
            let e = logins.entry(actor).or_default();
            match c.outcome.as_str() {
                "allowed" => e.0 += c.n,
                "refused" => e.1 += c.n,
                _ => {}
            }
        }
    }

    let dormant_before = end.min(now) - Duration::days(DORMANT_DAYS);
    let mut findings = vec![];
    let mut user_lines = Vec::with_capacity(users.len());
    for u in users {
        let alias = &user_alias[&u.id];
        let active = u.status == "active";
        let last = last_sign_in.get(alias).copied();
        let privileged = active && matches!(u.role.as_str(), "owner" | "admin");
        let dormant = active && u.created_at < dormant_before && last.is_none_or(|l| l < dormant_before);
        let subject = format!("user:{}", u.id);
        if dormant {
            findings.push(Finding {
                id: format!("{subject}:dormant_user"),
                kind: FindingKind::DormantUser,
                subject: subject.clone(),
                label: None,
                detail: match last {
                    Some(l) => format!("no sign-in since {}", l.format("%Y-%m-%d")),
                    None => "never signed in".into(),
                },
            });
        }
        if privileged {
            findings.push(Finding {
                id: format!("{subject}:privileged_user"),
                kind: FindingKind::PrivilegedUser,
                subject,
                label: None,
                detail: format!("holds the {} role", u.role),
            });
        }
        let (sign_ins, failed_sign_ins) = logins.get(alias.as_str()).copied().unwrap_or_default();
        user_lines.push(UserLine {
            sign_ins,
            failed_sign_ins,
            id: u.id,
            role: u.role,
            status: u.status,
            created_at: u.created_at,
            last_sign_in: last,
            privileged,
            dormant,
        });
    }

    let mut key_lines = Vec::with_capacity(keys.len());
    for k in keys {
        let present = k.revoked_at.is_none();
        let never_used = present && k.last_used_at.is_none();
        let expired = present && k.expires_at.is_some_and(|e| e <= now);
        let subject = format!("api_key:{}", k.id);
        if never_used {
            findings.push(Finding {
                id: format!("{subject}:never_used_key"),
                kind: FindingKind::NeverUsedKey,
                subject: subject.clone(),
                label: Some(k.name.clone()),
                detail: format!("made {} and never used", k.created_at.format("%Y-%m-%d")),
            });
        }
        if expired {
            findings.push(Finding {
                id: format!("{subject}:expired_key"),
                kind: FindingKind::ExpiredKey,
                subject,
                label: Some(k.name.clone()),
                detail: format!(
                    "expired {} but was never revoked",
                    k.expires_at
                        .map(|e| e.format("%Y-%m-%d").to_string())
                        .unwrap_or_default()
                ),
            });
        }
        key_lines.push(KeyLine {
            created_by: k.created_by,
            id: k.id,
            name: k.name,
            role: k.role,
            created_at: k.created_at,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
            never_used,
            expired,
        });
    }

    let mut admin_actions: Vec<ActionCount> = counts
        .iter()
        .filter(|c| c.outcome == "allowed" && ADMIN_ACTIONS.iter().any(|p| c.action.starts_with(p)))
        .filter(|c| matches!(c.actor_kind.as_str(), "user" | "api_key"))
        .map(|c| ActionCount {
            actor: who(&c.actor_kind, &c.actor_id),
            action: c.action.clone(),
            count: c.n,
            last_at: c.last_at,
        })
        .collect();
    admin_actions.sort_by(|a, b| (&a.actor, &a.action).cmp(&(&b.actor, &b.action)));

    let listed: Vec<Listed> = sqlx::query_as(
        "SELECT seq, occurred_at, actor_kind, actor_id, action, target, outcome, reason, details
             FROM audit_events
             WHERE occurred_at >= $1 AND occurred_at < $2 AND (actor_kind = 'operator' OR action = ANY($3))
             ORDER BY seq",
    )
    .bind(start)
    .bind(end)
    .bind(&MEMBERSHIP_ACTIONS[..])
    .fetch_all(tx.conn())
    .await?;
    let mut membership_changes = vec![];
    let mut operator_actions = vec![];
    for e in listed {
        if e.actor_kind == "operator" {
            operator_actions.push(OperatorAction {
                seq: e.seq,
                at: e.occurred_at,
                reason: e
                    .reason
                    .or_else(|| e.details["reason"].as_str().map(str::to_owned)),
                action: e.action,
                target: e.target,
                outcome: e.outcome,
            });
        } else if e.outcome == "allowed" {
            membership_changes.push(Change {
                seq: e.seq,
                at: e.occurred_at,
                by: who(&e.actor_kind, &e.actor_id),
                role: e.details["role"].as_str().map(str::to_owned),
                status: e.details["status"].as_str().map(str::to_owned),
                action: e.action,
                target: e.target,
            });
        }
    }

    Ok(Report {
        format: super::FORMAT.into(),
        review_id,
        tenant,
        quarter: quarter.to_string(),
        period_start: start,
        period_end: end,
        generated_at: now,
        dormant_after_days: DORMANT_DAYS,
        events_in_quarter: counts.iter().map(|c| c.n).sum(),
        users: user_lines,
        membership_changes,
        api_keys: key_lines,
        admin_actions,
        operator_actions,
        findings,
    })
}

fn short(pseudonym: &str) -> &str {
    &pseudonym[..pseudonym.len().min(12)]
}
