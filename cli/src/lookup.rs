//! Finding a tenant by what an operator types: its slug or its id.

use anyhow::Context;
use docket_platform::db::ControlDb;
use docket_platform::ids::TenantId;
use docket_platform::tenants::{self, Tenant};

/// The tenant named by slug or id, or an error saying so.
pub async fn tenant(control: &ControlDb, name: &str) -> anyhow::Result<Tenant> {
    let all = tenants::list(control).await?;
    let found = match name.parse::<uuid::Uuid>() {
        Ok(id) => all.into_iter().find(|t| t.id == TenantId(id)),
        Err(_) => all.into_iter().find(|t| t.slug == name),
    };
    found.with_context(|| format!("no tenant {name:?} (give its slug or id)"))
}
