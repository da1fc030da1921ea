//! What a tenant's plan entitles it to, read on every request (a plan change applies at
//! once): features (`api_keys`, `exports`, `dedicated_tier`, …) and the document limit.

use crate::db::{DbError, TenantTx};

/// Whether the tenant's plan includes `feature`.
pub async fn has_feature(tx: &mut TenantTx, feature: &str) -> Result<bool, DbError> {
    let tenant = tx.tenant_id();
    Ok(sqlx::query_scalar(
        "SELECT p.features ? $2 FROM tenants t JOIN plans p ON p.id = t.plan_id WHERE t.id = $1",
    )
    .bind(tenant)
    .bind(feature)
    .fetch_one(tx.conn())
    .await?)
}

/// The plan's document limit and how many documents the tenant has (failed ones do not
/// count: they hold no searchable content).
pub async fn documents_used(tx: &mut TenantTx) -> Result<(Option<i64>, i64), DbError> {
    let tenant = tx.tenant_id();
    Ok(sqlx::query_as(
        "SELECT p.max_documents, (SELECT count(*) FROM documents d WHERE d.status <> 'failed')
         FROM tenants t JOIN plans p ON p.id = t.plan_id WHERE t.id = $1",
    )
    .bind(tenant)
    .fetch_one(tx.conn())
    .await?)
}
