//! API keys: machine credentials of a tenant with a role. Shown once, stored hashed.

use super::credential::{Credential, Kind};
use crate::authz::Role;
use crate::db::{DbError, TenantTx};
use crate::ids::{ApiKeyId, UserId};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// An API key as listed (never the secret).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ApiKey {
    /// Id.
    pub id: ApiKeyId,
    /// Label.
    pub name: String,
    /// Role the key acts with.
    pub role: String,
    /// Creator.
    pub created_by: Option<UserId>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Optional expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Set when revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Last authenticated use (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

const COLS: &str = "id, name, role, created_by, created_at, expires_at, revoked_at, last_used_at";

/// Creates a key; returns it and its full text (shown once).
pub async fn create(
    tx: &mut TenantTx,
    name: &str,
    role: Role,
    created_by: Option<UserId>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(ApiKey, String), DbError> {
    let (cred, text) = Credential::generate(Kind::ApiKey, tx.tenant_id());
    let tenant = tx.tenant_id();
    let key = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO api_keys (id, tenant_id, name, role, key_hash, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLS}"
    )))
    .bind(cred.id)
    .bind(tenant)
    .bind(name)
    .bind(role.as_str())
    .bind(cred.hash())
    .bind(created_by)
    .bind(expires_at)
    .fetch_one(tx.conn())
    .await?;
    Ok((key, text))
}

/// Why a presented key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// Unknown id or wrong secret.
    Invalid,
    /// Revoked.
    Revoked,
    /// Past its expiry.
    Expired,
    /// The user who created it is disabled (or gone): a key never outlives its creator's
    /// access.
    CreatorDisabled,
}

/// Authenticates a presented key in its tenant's scope; records the use. The returned key's
/// `role` is the one it acts with now: the lesser of its own and its creator's current role
/// (keys made by the CLI, with no creator, keep theirs).
pub async fn authenticate(
    tx: &mut TenantTx,
    cred: &Credential,
) -> Result<Result<ApiKey, KeyRefusal>, DbError> {
    let row: Option<(String,)> = sqlx::query_as("SELECT key_hash FROM api_keys WHERE id = $1")
        .bind(cred.id)
        .fetch_optional(tx.conn())
        .await?;
    match row {
        Some((hash,)) if cred.matches(&hash) => {}
        _ => return Ok(Err(KeyRefusal::Invalid)),
    }
    let key: ApiKey = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM api_keys WHERE id = $1"
    )))
    .bind(cred.id)
    .fetch_one(tx.conn())
    .await?;
    if key.revoked_at.is_some() {
        return Ok(Err(KeyRefusal::Revoked));
    }
    if key.expires_at.is_some_and(|e| e <= Utc::now()) {
        return Ok(Err(KeyRefusal::Expired));
    }
    let mut key = key;
    if let Some(creator) = key.created_by {
        let row: Option<(String, String)> = sqlx::query_as("SELECT role, status FROM users WHERE id = $1")
            .bind(creator)
            .fetch_optional(tx.conn())
            .await?;
        let Some((role, _)) = row.filter(|(_, s)| s == "active") else {
            return Ok(Err(KeyRefusal::CreatorDisabled));
        };
        // Never above the creator's current role: a demoted admin's keys are demoted too.
        let (granted, creator_role) = (
            key.role.parse::<Role>().unwrap_or(Role::Viewer),
            role.parse::<Role>().unwrap_or(Role::Viewer),
        );
        key.role = granted.max(creator_role).as_str().to_owned();
    }
    sqlx::query(
        "UPDATE api_keys SET last_used_at = now()
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(cred.id)
    .execute(tx.conn())
    .await?;
    Ok(Ok(key))
}

/// All keys of the tenant, newest first.
pub async fn list(tx: &mut TenantTx) -> Result<Vec<ApiKey>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM api_keys ORDER BY created_at DESC, id"
    )))
    .fetch_all(tx.conn())
    .await?)
}

/// Revokes a key; `None` if no such key in this tenant.
pub async fn revoke(tx: &mut TenantTx, id: ApiKeyId) -> Result<Option<ApiKey>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING {COLS}"
    )))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// One key by id; `None` if no such key in this tenant.
pub async fn get(tx: &mut TenantTx, id: ApiKeyId) -> Result<Option<ApiKey>, DbError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM api_keys WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// The current role of the key's creator (`None` for keys without one, or whose creator
/// is gone).
pub async fn creator_role(tx: &mut TenantTx, key: &ApiKey) -> Result<Option<Role>, DbError> {
    let Some(creator) = key.created_by else {
        return Ok(None);
    };
    let role: Option<String> = sqlx::query_scalar("SELECT role FROM users WHERE id = $1")
        .bind(creator)
        .fetch_optional(tx.conn())
        .await?;
    Ok(role.and_then(|r| r.parse().ok()))
}
