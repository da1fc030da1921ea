//! `docketctl`, the operator CLI. Commands are library functions returning JSON so that the
//! end-to-end tests exercise exactly what operators run.

mod access_review;
mod billing;
mod checkpoints;
mod deletion;
mod export;
mod import;
mod limits;
mod lookup;
mod reindex;
mod switch;
mod tier_move;

pub use access_review::{access_review_run, access_review_verify};
pub use billing::{billing_adjust, billing_run};
pub use checkpoints::{audit_verify_checkpoints, audit_verify_file};
pub use deletion::{certificate_verify, deletion_plan};
pub use export::export_verify;
pub use import::import_folder;
pub use limits::{RateOverride, tenant_plan, tenant_rate_override};
pub use reindex::reindex;
pub use switch::{switch_lift, switch_list, switch_set};
pub use tier_move::tenant_move;

use anyhow::Context;
use docket_platform::audit::{self, Actor, Auditor, Event, Outcome};
use docket_platform::authz::Role;
use docket_platform::config::Config;
use docket_platform::db::{self, ControlDb};
use docket_platform::identity::users::{self, Email};
use docket_platform::identity::{keyring, operators, password};
use docket_platform::ids::{TenantId, TenantSlug};
use docket_platform::tenants::{self, IsolationTier, NewTenant};
use serde_json::{Value, json};

/// Applies pending migrations as the owner role.
pub async fn migrate(config: &Config) -> anyhow::Result<Value> {
    db::run_migrations(&config.database.migrate_url).await?;
    Ok(json!({"migrated": true, "migrations": db::MIGRATOR.iter().count()}))
}

/// Arguments of `tenant create`.
#[derive(Debug, Clone, Default)]
pub struct TenantCreate {
    /// Slug.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Plan id.
    pub plan: String,
    /// Isolation tier.
    pub tier: String,
    /// First owner's email (with `owner_password`).
    pub owner_email: Option<String>,
    /// First owner's password.
    pub owner_password: Option<String>,
}

/// Creates a tenant — and its first owner, atomically, when an email is given. Prints
/// `{"tenant_id", "owner_user_id", …}`.
pub async fn tenant_create(
    control: &ControlDb,
    auditor: &Auditor,
    args: &TenantCreate,
) -> anyhow::Result<Value> {
    let new = NewTenant {
        slug: TenantSlug::parse(&args.slug)?,
        name: args.name.clone(),
        plan_id: args.plan.clone(),
        tier: args.tier.parse::<IsolationTier>().map_err(anyhow::Error::msg)?,
    };
    let owner = match (&args.owner_email, &args.owner_password) {
        (Some(e), Some(p)) => Some((Email::parse(e)?, password::hash(p)?)),
        (None, None) => None,
        _ => anyhow::bail!("--owner-email and --owner-password go together"),
    };
    let mut tx = control.pool().begin().await?;
    let tenant = tenants::create(&mut tx, &new).await?;
    let mut tx = ControlDb::scope_to_tenant(tx, tenant.id).await?;
    let owner_id = match &owner {
        Some((email, hash)) => Some(users::create(&mut tx, email, Some(hash), Role::Owner).await?.id),
        None => None,
    };
    let mut ev = Event::new("tenant.create", Outcome::Allowed, Actor::System)
        .target(format!("tenant:{}", tenant.id))
        .detail("plan", tenant.plan_id.clone())
        .detail("tier", tenant.isolation_tier.clone());
    if let Some(id) = owner_id {
        ev = ev.detail("owner", format!("user:{id}"));
    }
    auditor.tenant(&mut tx, ev).await?;
    // The tenant, its owner and both records commit together.
    auditor
        .platform_in(
            tx.conn(),
            Event::new("tenant.create", Outcome::Allowed, Actor::System)
                .target(format!("tenant:{}", tenant.id)),
        )
        .await?;
    tx.commit().await?;
    Ok(json!({
        "tenant_id": tenant.id, "owner_user_id": owner_id, "slug": tenant.slug, "name": tenant.name,
        "plan": tenant.plan_id, "tier": tenant.isolation_tier, "status": tenant.status,
    }))
}

/// Lists tenants as a JSON array.
pub async fn tenant_list(control: &ControlDb) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(tenants::list(control).await?)?)
}

/// Creates a platform operator.
pub async fn operator_create(
    control: &ControlDb,
    auditor: &Auditor,
    email: &str,
    pw: &str,
) -> anyhow::Result<Value> {
    let email = Email::parse(email)?;
    let hash = password::hash(pw)?;
    // The operator and its record commit together.
    let mut tx = control.pool().begin().await?;
    let id = operators::create(&mut tx, &email, &hash)
        .await
        .context("creating the operator (is the email taken?)")?;
    auditor
        .platform_in(
            &mut tx,
            Event::new("operator.create", Outcome::Allowed, Actor::System).target(format!("operator:{id}")),
        )
        .await?;
    tx.commit().await?;
    Ok(json!({"operator_id": id}))
}

/// Rotates the access-token signing key.
pub async fn keys_rotate(control: &ControlDb, auditor: &Auditor, config: &Config) -> anyhow::Result<Value> {
    let mut tx = control.pool().begin().await?;
    let kid = keyring::rotate(&mut tx, &config.master_key).await?;
    auditor
        .platform_in(
            &mut tx,
            Event::new("keys.rotate", Outcome::Allowed, Actor::System).detail("kid", kid.clone()),
        )
        .await?;
    tx.commit().await?;
    Ok(json!({"active_kid": kid, "previous_accepted_for_secs": config.auth.key_rotation_window.as_secs()}))
}

/// Verifies one tenant's chain, or the platform chain and every tenant's. `ok` is false if
/// any chain is broken; each report names its first broken link.
pub async fn audit_verify(control: &ControlDb, tenant: Option<TenantId>) -> anyhow::Result<Value> {
    let mut reports = vec![];
    match tenant {
        Some(t) => reports.push(audit::verify::tenant(control.pool(), t).await?),
        None => {
            reports.push(audit::verify::platform(control.pool()).await?);
            for t in tenants::list(control).await? {
                reports.push(audit::verify::tenant(control.pool(), t.id).await?);
            }
        }
    }
    let ok = reports.iter().all(|r| r.ok);
    Ok(json!({"ok": ok, "chains": reports}))
}
