//! Incident switches (migration 0009): an operator turns an endpoint class off globally or
//! for one tenant. API processes keep a snapshot refreshed twice a second, so a switch takes
//! effect within a second everywhere; a snapshot that cannot be refreshed goes stale and
//! then every request is refused (fail closed).

use crate::audit::{AuditError, Auditor, Event};
use crate::db::{ControlDb, Db, DbError};
use crate::ids::TenantId;
use crate::ratelimit::EndpointClass;
use serde::Serialize;
use uuid::Uuid;

/// An active switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = IncidentSwitch)]
pub struct Switch {
    /// Id (named in refusals and audit events).
    pub id: Uuid,
    /// Endpoint class it turns off.
    pub class: String,
    /// The tenant, or `None` for everyone.
    pub target_tenant: Option<Uuid>,
    /// Why (shown to callers).
    pub reason: String,
    /// Who set it.
    pub created_by: String,
    /// When it stops applying by itself.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

const COLUMNS: &str = "id, class, target_tenant, reason, created_by, expires_at";

/// Every switch in force now (service role).
pub async fn active(db: &Db) -> Result<Vec<Switch>, DbError> {
    active_in(db.platform_pool()).await
}

/// Every switch in force now, read through `pool` (service or control role).
pub async fn active_in(pool: &sqlx::PgPool) -> Result<Vec<Switch>, DbError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM incident_switches
         WHERE lifted_at IS NULL AND (expires_at IS NULL OR expires_at > now()) ORDER BY created_at"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?)
}

/// The switch, if any, that turns `class` off for `tenant` (a global one first).
pub fn blocking(switches: &[Switch], class: EndpointClass, tenant: TenantId) -> Option<&Switch> {
    let mine = |s: &&Switch| s.class == class.as_str();
    switches
        .iter()
        .filter(mine)
        .find(|s| s.target_tenant.is_none())
        .or_else(|| {
            switches
                .iter()
                .filter(mine)
                .find(|s| s.target_tenant == Some(tenant.as_uuid()))
        })
}

/// Why a switch could not be set or lifted.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Audit.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<sqlx::Error> for SwitchError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

/// Sets a switch (control plane) and records it — on the platform chain, and on the
/// tenant's for a tenant switch — in the same transaction: the switch and its record commit
/// together or not at all. `event` builds the record from the stored switch.
#[allow(clippy::too_many_arguments)] // each is a distinct part of the switch or its record
pub async fn set(
    control: &ControlDb,
    auditor: &Auditor,
    class: EndpointClass,
    tenant: Option<TenantId>,
    reason: &str,
    by: &str,
    expires_in: Option<std::time::Duration>,
    event: impl FnOnce(&Switch) -> Event,
) -> Result<Switch, SwitchError> {
    let sql = format!(
        "INSERT INTO incident_switches (class, target_tenant, reason, created_by, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5)) RETURNING {COLUMNS}"
    );
    let mut tx = control.pool().begin().await?;
    let sw: Switch = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(class.as_str())
        .bind(tenant)
        .bind(reason)
        .bind(by)
        .bind(expires_in.map(|d| d.as_secs_f64()))
        .fetch_one(&mut *tx)
        .await?;
    let ev = event(&sw);
    match tenant {
        Some(t) => auditor.commit_operator_change(tx, t, ev).await?,
        None => {
            auditor.platform_in(&mut tx, ev).await?;
            tx.commit().await?;
        }
    }
    Ok(sw)
}

/// Lifts a switch and records `ev` on the platform chain in the same transaction; `false`
/// (and no record) if there is no such active switch.
pub async fn lift(control: &ControlDb, auditor: &Auditor, id: Uuid, ev: Event) -> Result<bool, SwitchError> {
    let mut tx = control.pool().begin().await?;
    let done =
        sqlx::query("UPDATE incident_switches SET lifted_at = now() WHERE id = $1 AND lifted_at IS NULL")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    auditor.platform_in(&mut tx, ev).await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sw(class: &str, tenant: Option<Uuid>) -> Switch {
        Switch {
            id: Uuid::new_v4(),
            class: class.into(),
            target_tenant: tenant,
            reason: "r".into(),
            created_by: "op".into(),
            expires_at: None,
        }
    }

    #[test]
    fn global_and_tenant_switches_apply_to_their_class_and_tenant() {
        let (a, b) = (TenantId(Uuid::new_v4()), TenantId(Uuid::new_v4()));
        let list = vec![sw("upload", Some(a.as_uuid())), sw("query", None)];
        assert!(blocking(&list, EndpointClass::Upload, a).is_some());
        assert!(blocking(&list, EndpointClass::Upload, b).is_none());
        assert!(blocking(&list, EndpointClass::Query, b).is_some());
        assert!(blocking(&list, EndpointClass::Read, a).is_none());
    }
}
