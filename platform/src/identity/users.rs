//! Tenant users. Every function takes a [`TenantTx`]: these queries cannot be written
//! without a tenant.

use crate::authz::Role;
use crate::db::{DbError, TenantTx};
use crate::ids::UserId;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A validated, normalized (trimmed, lowercased) email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

/// The email address is not acceptable.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a valid email address")]
pub struct InvalidEmail(pub String);

impl Email {
    /// Validates: one `@`, a non-empty local part, a dotted domain, no spaces, ≤ 254 chars,
    /// not under `.invalid` (reserved, RFC 2606: erased accounts' addresses live there).
    pub fn parse(s: &str) -> Result<Self, InvalidEmail> {
        let e = s.trim().to_lowercase();
        let ok = e.len() <= 254
            && !e.ends_with(".invalid")
            && !e.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(e.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.')
                && !d.starts_with('.') && !d.ends_with('.') && !d.contains('@'));
        if ok {
            Ok(Self(e))
        } else {
            Err(InvalidEmail(s.to_owned()))
        }
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Email.
    pub email: String,
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
    /// `active` or `disabled`.
    pub status: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// The role as a type (the database constrains the text).
    pub fn role(&self) -> Role {
        self.role.parse().unwrap_or(Role::Viewer)
    }
    /// Whether the user may sign in and act.
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// A user operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The email is taken within this tenant.
    #[error("a user with this email already exists in this tenant")]
    EmailTaken,
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for UserError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

const COLS: &str = "id, email, role, status, created_at, updated_at";

/// Creates a user in the transaction's tenant.
pub async fn create(
    tx: &mut TenantTx,
    email: &Email,
    password_hash: Option<&str>,
    role: Role,
) -> Result<User, UserError> {
    let tenant = tx.tenant_id();
    let res = sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO users (tenant_id, email, password_hash, role) VALUES ($1, $2, $3, $4) RETURNING {COLS}"
    )))
    .bind(tenant)
    .bind(email.as_str())
    .bind(password_hash)
    .bind(role.as_str())
    .fetch_one(tx.conn())
    .await;
    res.map_err(|e| {
        let e = DbError::from(e);
        if e.is_unique_violation() {
            UserError::EmailTaken
        } else {
            UserError::Db(e)
        }
    })
}

/// A user and their password hash, by email (login).
pub async fn find_for_login(
    tx: &mut TenantTx,
    email: &Email,
) -> Result<Option<(User, Option<String>)>, UserError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: User,
        password_hash: Option<String>,
    }
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS}, password_hash FROM users WHERE lower(email) = $1"
    )))
    .bind(email.as_str())
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(|r| (r.user, r.password_hash)))
}

/// One user by id; `None` for ids of other tenants too (RLS).
pub async fn get(tx: &mut TenantTx, id: UserId) -> Result<Option<User>, UserError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM users WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// All users of the tenant, oldest first.
pub async fn list(tx: &mut TenantTx) -> Result<Vec<User>, UserError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM users ORDER BY created_at, id"
    )))
    .fetch_all(tx.conn())
    .await?)
}

/// Changes role and/or status; returns the updated user.
pub async fn update(
    tx: &mut TenantTx,
    id: UserId,
    role: Option<Role>,
    status: Option<&str>,
) -> Result<Option<User>, UserError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE users SET role = COALESCE($2, role), status = COALESCE($3, status), updated_at = now()
         WHERE id = $1 RETURNING {COLS}"
    )))
    .bind(id)
    .bind(role.map(|r| r.as_str()))
    .bind(status)
    .fetch_optional(tx.conn())
    .await?)
}

/// Active owners of the tenant (a tenant must keep at least one).
pub async fn active_owner_count(tx: &mut TenantTx) -> Result<i64, UserError> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'owner' AND status = 'active'")
            .fetch_one(tx.conn())
            .await?,
    )
}

/// Serialises changes to the tenant's memberships until the transaction ends: two owners
/// demoting each other at once must not both see the other as the remaining owner (each
/// alone would keep one). Taken before reading the target.
pub async fn lock_memberships(tx: &mut TenantTx) -> Result<(), UserError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('memberships:' || $1::text, 0))")
        .bind(tx.tenant_id())
        .execute(tx.conn())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn emails_validate_and_normalize() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").expect("ok").as_str(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@localhost",
            "a b@example.com",
            "ann@.com",
            "a@b@c.com",
            "erased-1@erased.invalid",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }
}
