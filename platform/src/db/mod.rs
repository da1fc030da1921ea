//! Database access.
//!
//! Three PostgreSQL roles, three trust levels:
//! - [`Db`] connects as the service role (`docket_app`: no owner, no superuser, no
//!   BYPASSRLS). Tenant tables are reachable only through a [`TenantTx`], a transaction
//!   that has set `app.tenant_id` first; without it row-level security shows zero rows.
//! - [`ControlDb`] connects as the control-plane role (`docket_control`, BYPASSRLS) for
//!   work that spans tenants: tenant administration, billing runs, access reviews.
//! - [`migrate`] runs as the owner role, only to apply migrations.

mod migrate;

pub use migrate::{MIGRATOR, run_migrations};

use crate::ids::TenantId;
use crate::secret::Secret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::str::FromStr;
use std::time::Duration;

/// A database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The connection URL is malformed.
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    /// Any error from PostgreSQL or the driver.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

impl DbError {
    /// True when the error is a unique-constraint violation (e.g. a duplicate email).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Sqlx(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

/// Builds a pool that connects lazily, so a process starts (and reports not-ready) while
/// PostgreSQL is down instead of crashing.
fn lazy_pool(url: &Secret<String>, max: u32) -> Result<PgPool, DbError> {
    let opts = PgConnectOptions::from_str(url.expose())
        .map_err(|_| DbError::BadUrl("cannot parse the PostgreSQL URL".into()))?;
    Ok(PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(opts))
}

/// Runs `work` holding the lease named `key` (a session advisory lock, in whichever process
/// asks), or returns `busy` at once if someone else holds it: one delivery of a job at a
/// time, whatever the queue does.
pub async fn leased<T, E: From<sqlx::Error>>(
    db: &Db,
    key: &str,
    busy: T,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let mut lease = db.platform_pool().acquire().await?;
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(key)
        .fetch_one(&mut *lease)
        .await?;
    if !held {
        return Ok(busy);
    }
    let result = work.await;
    // Unlock, or close the session if that fails: the lock must not stay in the pool.
    let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind(key)
        .execute(&mut *lease)
        .await;
    if unlocked.is_err() {
        drop(lease.detach());
    }
    result
}

/// The service-role pool. Hands out tenant-scoped transactions.
#[derive(Clone, Debug)]
pub struct Db {
    pool: PgPool,
}

impl Db {
    /// A pool for the service role; connects on first use.
    pub fn connect_lazy(url: &Secret<String>, max_connections: u32) -> Result<Self, DbError> {
        Ok(Self {
            pool: lazy_pool(url, max_connections)?,
        })
    }

    /// Starts a transaction in which only `tenant`'s rows are visible or writable.
    pub async fn begin_tenant(&self, tenant: TenantId) -> Result<TenantTx, DbError> {
        self.begin_scoped(tenant, "").await
    }

    /// [`Db::begin_tenant`] for writes whose loss in a database crash is harmless because
    /// they are redone (a job claiming its record): the commit does not wait for the WAL
    /// to reach disk (`synchronous_commit = off`; no risk of corruption, only of losing the
    /// last moments of such commits).
    pub async fn begin_tenant_redoable(&self, tenant: TenantId) -> Result<TenantTx, DbError> {
        self.begin_scoped(tenant, "; SET LOCAL synchronous_commit = off")
            .await
    }

    async fn begin_scoped(&self, tenant: TenantId, extra: &'static str) -> Result<TenantTx, DbError> {
        // One round trip: BEGIN and the tenant setting travel as one simple query. `true` =
        // transaction-local, so the setting cannot leak to the next user of this pooled
        // connection. Formatting is safe: a `TenantId` displays as a UUID and nothing else,
        // and `extra` is a constant of this module.
        let begin = format!(
            "BEGIN; SELECT set_config('app.tenant_id', '{}', true){extra}",
            tenant.as_uuid()
        );
        let tx = self.pool.begin_with(sqlx::AssertSqlSafe(begin)).await?;
        Ok(TenantTx { tx, tenant })
    }

    /// Round trip to the server (readiness checks).
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The raw pool, for platform tables without tenant data (plans, tenants,
    /// heartbeats). Tenant tables answer zero rows here by row-level security.
    pub fn platform_pool(&self) -> &PgPool {
        &self.pool
    }
}

/// A transaction bound to one tenant: the only way to read or write tenant tables.
#[derive(Debug)]
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    tenant: TenantId,
}

impl TenantTx {
    /// The tenant this transaction is bound to.
    pub fn tenant_id(&self) -> TenantId {
        self.tenant
    }

    /// The connection, for queries inside the tenant scope.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), DbError> {
        Ok(self.tx.commit().await?)
    }
}

/// The control-plane pool (role `docket_control`, BYPASSRLS): cross-tenant administration.
/// Every use on behalf of a person is audited by the caller.
#[derive(Clone, Debug)]
pub struct ControlDb {
    pool: PgPool,
}

impl ControlDb {
    /// A pool for the control-plane role; connects on first use.
    pub fn connect_lazy(url: &Secret<String>, max_connections: u32) -> Result<Self, DbError> {
        Ok(Self {
            pool: lazy_pool(url, max_connections)?,
        })
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Narrows a control-plane transaction to one tenant: drops to the service role for the
    /// rest of the transaction (`SET LOCAL ROLE docket_app`), so row-level security applies
    /// again and tenant-scoped code (which relies on it) can run here safely. Used, e.g., to
    /// create a tenant and its first owner atomically.
    pub async fn scope_to_tenant(
        mut tx: Transaction<'static, Postgres>,
        tenant: TenantId,
    ) -> Result<TenantTx, DbError> {
        sqlx::query("SET LOCAL ROLE docket_app").execute(&mut *tx).await?;
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
        Ok(TenantTx { tx, tenant })
    }

    /// A transaction scoped to one tenant with the service role's rights (see
    /// [`ControlDb::scope_to_tenant`]).
    pub async fn begin_tenant(&self, tenant: TenantId) -> Result<TenantTx, DbError> {
        let tx = self.pool.begin().await?;
        Self::scope_to_tenant(tx, tenant).await
    }
}
