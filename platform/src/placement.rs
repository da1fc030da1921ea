//! Where a tenant's vectors are. `tenants.isolation_tier` is the tier an operator asked
//! for; `vector_placements` is the one searches and indexing use, switched in one UPDATE at
//! the end of a tier move (see migration 0007).

use crate::db::{DbError, TenantTx};
use crate::ids::TenantId;
use crate::redis_conn::{Redis, RedisError};
use crate::tenants::IsolationTier;

/// The tenant's placement as searches use it, and the tier it should have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Where its vectors are now.
    pub current: IsolationTier,
    /// Where an operator wants them (differs while a move is pending).
    pub desired: IsolationTier,
    /// A placement a move switched away from and has not purged yet.
    pub leftover: Option<IsolationTier>,
}

fn tier(s: &str) -> Result<IsolationTier, DbError> {
    s.parse()
        .map_err(|e: String| DbError::Sqlx(sqlx::Error::Protocol(e)))
}

/// Reads the placement, recording the current tier on first use (a tenant that has never
/// indexed anything starts where its tier says).
pub async fn ensure(tx: &mut TenantTx) -> Result<Placement, DbError> {
    let tenant = tx.tenant_id();
    sqlx::query(
        "INSERT INTO vector_placements (tenant_id, tier)
         SELECT id, isolation_tier FROM tenants WHERE id = $1
         ON CONFLICT (tenant_id) DO NOTHING",
    )
    .bind(tenant)
    .execute(tx.conn())
    .await?;
    read(tx).await
}

/// Reads the placement without recording anything.
pub async fn read(tx: &mut TenantTx) -> Result<Placement, DbError> {
    let tenant = tx.tenant_id();
    let (current, desired, leftover): (String, String, Option<String>) = sqlx::query_as(
        "SELECT COALESCE(p.tier, t.isolation_tier), t.isolation_tier, p.moving_from
         FROM tenants t LEFT JOIN vector_placements p ON p.tenant_id = t.id WHERE t.id = $1",
    )
    .bind(tenant)
    .fetch_one(tx.conn())
    .await?;
    Ok(Placement {
        current: tier(&current)?,
        desired: tier(&desired)?,
        leftover: leftover.as_deref().map(tier).transpose()?,
    })
}

/// Switches searches from `from` to `to` (after the new placement is filled), remembering
/// `from` until [`purged`] says it is empty. A compare-and-set: it applies only while the
/// placement is still `from` (another worker may have moved the tenant meanwhile);
/// `Ok(false)` when it was not, and nothing changed.
pub async fn switch(tx: &mut TenantTx, from: IsolationTier, to: IsolationTier) -> Result<bool, DbError> {
    let tenant = tx.tenant_id();
    let done = sqlx::query(
        "INSERT INTO vector_placements (tenant_id, tier, moving_from) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE SET tier = EXCLUDED.tier, moving_from = EXCLUDED.moving_from,
         switched_at = now()
         WHERE vector_placements.tier = $3",
    )
    .bind(tenant)
    .bind(to.as_str())
    .bind(from.as_str())
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The advisory-lock key of a tenant's vectors (index jobs and tier moves take it, in
/// whichever worker process they run).
pub fn vector_lock_key(tenant: uuid::Uuid) -> i64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("docket:vectors:{tenant}").as_bytes());
    i64::from_be_bytes(d[..8].try_into().unwrap_or([0; 8]))
}

/// The placement a move left has been purged: the move is complete.
pub async fn purged(tx: &mut TenantTx) -> Result<(), DbError> {
    let tenant = tx.tenant_id();
    sqlx::query("UPDATE vector_placements SET moving_from = NULL WHERE tenant_id = $1")
        .bind(tenant)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The Redis list (under the deployment prefix) on which the vector-owning worker is woken
/// for tier moves.
pub const MOVES_LIST: &str = "vectors:moves";

/// Wakes the worker that owns the vector store to carry out `tenant`'s requested move.
pub async fn notify_move(redis: &Redis, tenant: TenantId) -> Result<(), RedisError> {
    redis.push_platform_list(MOVES_LIST, &tenant.to_string()).await
}

/// The next tenant whose move was requested, if any.
pub async fn next_move(redis: &Redis) -> Result<Option<TenantId>, RedisError> {
    Ok(redis
        .pop_platform_list(MOVES_LIST)
        .await?
        .and_then(|s| s.parse::<uuid::Uuid>().ok())
        .map(TenantId))
}
