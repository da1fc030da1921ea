//! Tenants: the control-plane records of customer organisations.

use crate::db::{ControlDb, Db, DbError};
use crate::ids::{TenantId, TenantSlug};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::str::FromStr;

/// Where a tenant's vectors live (DESIGN.md, isolation tiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IsolationTier {
    /// One shared collection, filtered by tenant.
    Shared,
    /// A collection of its own.
    Dedicated,
    /// A separate vector deployment.
    Isolated,
}

impl IsolationTier {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Dedicated => "dedicated",
            Self::Isolated => "isolated",
        }
    }
}

impl FromStr for IsolationTier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "shared" => Ok(Self::Shared),
            "dedicated" => Ok(Self::Dedicated),
            "isolated" => Ok(Self::Isolated),
            _ => Err(format!(
                "unknown isolation tier {s:?}: expected shared, dedicated or isolated"
            )),
        }
    }
}

/// A tenant as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Tenant {
    /// Id.
    pub id: TenantId,
    /// URL-safe handle used at login.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Plan id.
    pub plan_id: String,
    /// `shared`, `dedicated` or `isolated`.
    pub isolation_tier: String,
    /// `active`, `suspended`, `deleting` or `deleted`.
    pub status: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

impl Tenant {
    /// Whether requests on its behalf may proceed.
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    /// Whether it has been deleted (its credentials are refused as unknown ones).
    pub fn is_deleted(&self) -> bool {
        self.status == "deleted"
    }
}

/// A tenant to create; validated on construction.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// Slug.
    pub slug: TenantSlug,
    /// Display name (1–200 characters).
    pub name: String,
    /// Plan id (must exist).
    pub plan_id: String,
    /// Vector placement.
    pub tier: IsolationTier,
}

/// Creating or reading a tenant failed.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// The slug is taken.
    #[error("a tenant with slug {0:?} already exists")]
    SlugTaken(String),
    /// The slug belonged to a deleted tenant and stays reserved until the retention
    /// period ends.
    #[error("the slug {0:?} belonged to a deleted organisation and is reserved until {1}")]
    SlugReserved(String, DateTime<Utc>),
    /// The plan does not exist.
    #[error("unknown plan {0:?}")]
    UnknownPlan(String),
    /// The name is empty or too long.
    #[error("tenant name must be 1-200 characters")]
    BadName,
    /// Database failure.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for TenantError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

const COLUMNS: &str = "id, slug, name, plan_id, isolation_tier, status, created_at";

/// Creates a tenant inside an open control-plane transaction (so callers can create its
/// first owner atomically with it).
pub async fn create(conn: &mut sqlx::PgConnection, new: &NewTenant) -> Result<Tenant, TenantError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(TenantError::BadName);
    }
    let plan: Option<(String,)> = sqlx::query_as("SELECT id FROM plans WHERE id = $1")
        .bind(&new.plan_id)
        .fetch_optional(&mut *conn)
        .await?;
    if plan.is_none() {
        return Err(TenantError::UnknownPlan(new.plan_id.clone()));
    }
    // A deleted tenant keeps its slug until its reservation ends (its invoices and audit
    // chain name it); after that the old row gives it up to the new tenant.
    let reserved: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
        "SELECT slug_reserved_until FROM tenants WHERE slug = $1 AND status = 'deleted' FOR UPDATE",
    )
    .bind(new.slug.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    match reserved {
        Some(Some(until)) if until > Utc::now() => {
            return Err(TenantError::SlugReserved(new.slug.to_string(), until));
        }
        Some(_) => {
            sqlx::query(
                "UPDATE tenants SET slug = 'deleted-' || left(replace(id::text, '-', ''), 30), updated_at = now()
                 WHERE slug = $1 AND status = 'deleted'",
            )
            .bind(new.slug.as_str())
            .execute(&mut *conn)
            .await?;
        }
        None => {}
    }
    let res = sqlx::query_as::<_, Tenant>(
        "INSERT INTO tenants (slug, name, plan_id, isolation_tier) VALUES ($1, $2, $3, $4)
         RETURNING id, slug, name, plan_id, isolation_tier, status, created_at",
    )
    .bind(new.slug.as_str())
    .bind(name)
    .bind(&new.plan_id)
    .bind(new.tier.as_str())
    .fetch_one(&mut *conn)
    .await;
    match res {
        Ok(t) => Ok(t),
        Err(e) => {
            let e = DbError::from(e);
            if e.is_unique_violation() {
                Err(TenantError::SlugTaken(new.slug.to_string()))
            } else {
                Err(e.into())
            }
        }
    }
}

/// All tenants, oldest first (control plane).
pub async fn list(control: &ControlDb) -> Result<Vec<Tenant>, TenantError> {
    let sql = format!("SELECT {COLUMNS} FROM tenants ORDER BY created_at, slug");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(control.pool())
        .await?)
}

/// One tenant by id (service role, inside that tenant's scope: the row policy shows the
/// service no other tenant's row).
pub async fn get(db: &Db, id: TenantId) -> Result<Option<Tenant>, TenantError> {
    let mut tx = db.begin_tenant(id).await?;
    let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id = $1");
    let found = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(tx.conn())
        .await?;
    tx.commit().await?;
    Ok(found)
}

/// One tenant by slug (service role; used at login to find the tenant). The slug is
/// resolved by `docket_tenant_id`, the one way the service can name a tenant it is not
/// scoped to; the row is then read in that tenant's scope.
pub async fn find_by_slug(db: &Db, slug: &str) -> Result<Option<Tenant>, TenantError> {
    let id: Option<TenantId> = sqlx::query_scalar("SELECT docket_tenant_id($1)")
        .bind(slug)
        .fetch_one(db.platform_pool())
        .await?;
    match id {
        Some(id) => get(db, id).await,
        None => Ok(None),
    }
}

/// Every tenant's id, oldest first (service role: start-up checks that walk all tenants;
/// identifiers only, through `docket_tenant_ids`).
pub async fn all_ids(db: &Db) -> Result<Vec<TenantId>, TenantError> {
    Ok(sqlx::query_scalar("SELECT docket_tenant_ids()")
        .fetch_all(db.platform_pool())
        .await?)
}
