//! Refresh tokens: opaque, stored hashed, rotated on every use. Presenting a spent token
//! again means it was stolen (or replayed): the whole family is revoked.

use super::credential::{Credential, Kind};
use crate::db::{DbError, TenantTx};
use crate::ids::UserId;
use std::time::Duration;
use uuid::Uuid;

/// Outcome of presenting a refresh token.
#[derive(Debug, PartialEq, Eq)]
pub enum Redeemed {
    /// Valid: the old token is now spent; here is its user and the new token's text.
    Rotated {
        /// Owner of the family.
        user: UserId,
        /// The family (one per login).
        family: Uuid,
        /// The replacement token, shown once.
        token: String,
    },
    /// Already spent: the family has just been revoked.
    Reused {
        /// The revoked family.
        family: Uuid,
        /// Its user.
        user: UserId,
    },
    /// Unknown, wrong secret, expired or revoked.
    Invalid,
}

async fn insert(tx: &mut TenantTx, user: UserId, family: Uuid, ttl: Duration) -> Result<String, DbError> {
    let (cred, text) = Credential::generate(Kind::Refresh, tx.tenant_id());
    let tenant = tx.tenant_id();
    sqlx::query(
        "INSERT INTO refresh_tokens (id, tenant_id, user_id, family_id, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
    )
    .bind(cred.id)
    .bind(tenant)
    .bind(user)
    .bind(family)
    .bind(cred.hash())
    .bind(ttl.as_secs_f64())
    .execute(tx.conn())
    .await?;
    Ok(text)
}

/// Starts a new family (a login); returns the token text.
pub async fn issue(tx: &mut TenantTx, user: UserId, ttl: Duration) -> Result<String, DbError> {
    insert(tx, user, Uuid::new_v4(), ttl).await
}

/// Redeems a token (its tenant already bound to `tx`).
pub async fn redeem(tx: &mut TenantTx, cred: &Credential, ttl: Duration) -> Result<Redeemed, DbError> {
    // FOR UPDATE: two concurrent redemptions of one token cannot both rotate it.
    let row: Option<(UserId, Uuid, String, bool, bool, bool)> = sqlx::query_as(
        "SELECT user_id, family_id, token_hash, used_at IS NOT NULL, revoked_at IS NOT NULL, expires_at <= now()
         FROM refresh_tokens WHERE id = $1 FOR UPDATE",
    )
    .bind(cred.id)
    .fetch_optional(tx.conn())
    .await?;
    let Some((user, family, hash, used, revoked, expired)) = row else {
        return Ok(Redeemed::Invalid);
    };
    if !cred.matches(&hash) {
        return Ok(Redeemed::Invalid);
    }
    if used {
        revoke_family(tx, family).await?;
        return Ok(Redeemed::Reused { family, user });
    }
    if revoked || expired {
        return Ok(Redeemed::Invalid);
    }
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE id = $1")
        .bind(cred.id)
        .execute(tx.conn())
        .await?;
    let token = insert(tx, user, family, ttl).await?;
    Ok(Redeemed::Rotated { user, family, token })
}

/// Revokes every token of a family (logout, re-use).
pub async fn revoke_family(tx: &mut TenantTx, family: Uuid) -> Result<u64, DbError> {
    Ok(sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family)
    .execute(tx.conn())
    .await?
    .rows_affected())
}

/// Revokes every token of a user (disabled user).
pub async fn revoke_user(tx: &mut TenantTx, user: UserId) -> Result<u64, DbError> {
    Ok(
        sqlx::query("UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(user)
            .execute(tx.conn())
            .await?
            .rows_affected(),
    )
}

/// The family of a valid token (logout); `None` if unknown or wrong secret.
pub async fn family_of(tx: &mut TenantTx, cred: &Credential) -> Result<Option<Uuid>, DbError> {
    let row: Option<(Uuid, String)> =
        sqlx::query_as("SELECT family_id, token_hash FROM refresh_tokens WHERE id = $1")
            .bind(cred.id)
            .fetch_optional(tx.conn())
            .await?;
    Ok(row.filter(|(_, h)| cred.matches(h)).map(|(f, _)| f))
}
