//! Per-account failed-login throttle, in PostgreSQL (durable, shared by all API processes,
//! no extra dependency on Redis for a security control).

use crate::db::{DbError, TenantTx};

/// Seconds until `account` may try again, if it is locked now.
pub async fn locked_for(tx: &mut TenantTx, account: &str) -> Result<Option<u64>, DbError> {
    let secs: Option<Option<f64>> = sqlx::query_scalar(
        "SELECT extract(epoch FROM locked_until - now())::float8 FROM login_throttle
         WHERE account = $1 AND locked_until > now()",
    )
    .bind(account)
    .fetch_optional(tx.conn())
    .await?;
    Ok(secs.flatten().map(|s| s.ceil().max(1.0) as u64))
}

/// Counts a failure; when it reaches `max`, locks the account for `lockout_secs` and returns
/// the wait.
pub async fn record_failure(
    tx: &mut TenantTx,
    account: &str,
    max: u32,
    lockout_secs: u64,
) -> Result<Option<u64>, DbError> {
    let tenant = tx.tenant_id();
    let failures: i32 = sqlx::query_scalar(
        "INSERT INTO login_throttle (tenant_id, account, failures, updated_at) VALUES ($1, $2, 1, now())
         ON CONFLICT (tenant_id, account) DO UPDATE SET failures = login_throttle.failures + 1, updated_at = now()
         RETURNING failures",
    )
    .bind(tenant)
    .bind(account)
    .fetch_one(tx.conn())
    .await?;
    if failures as u32 >= max {
        sqlx::query(
            "UPDATE login_throttle SET failures = 0, locked_until = now() + make_interval(secs => $2)
             WHERE account = $1",
        )
        .bind(account)
        .bind(lockout_secs as f64)
        .execute(tx.conn())
        .await?;
        return Ok(Some(lockout_secs));
    }
    Ok(None)
}

/// Clears the account's failures after a successful login.
pub async fn reset(tx: &mut TenantTx, account: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE login_throttle SET failures = 0, locked_until = NULL WHERE account = $1")
        .bind(account)
        .execute(tx.conn())
        .await?;
    Ok(())
}
