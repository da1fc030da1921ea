//! Pseudonymization of personal identifiers in audit rows. Each tenant has a random key,
//! sealed under the master key in `tenant_secrets`; a pseudonym is a keyed hash of the raw
//! identifier. Destroying the key (erasure) leaves pseudonyms that nobody can link back to
//! a person, while every row's hash still verifies.

use crate::config::MasterKey;
use crate::crypto;
use crate::db::TenantTx;

use super::AuditError;

fn context(tenant: &str) -> String {
    format!("pseudonym-key:{tenant}")
}

/// The tenant's key, created on first use; `None` once destroyed.
pub async fn tenant_key(tx: &mut TenantTx, master: &MasterKey) -> Result<Option<[u8; 32]>, AuditError> {
    let tenant = tx.tenant_id();
    let ctx = context(&tenant.to_string());
    let row: Option<(Option<Vec<u8>>, String)> =
        sqlx::query_as("SELECT pseudonym_key_enc, master_kid FROM tenant_secrets")
            .fetch_optional(tx.conn())
            .await?;
    let (sealed, kid) = match row {
        Some(r) => r,
        None => {
            let sealed = crypto::seal(master, &ctx, &crypto::random_bytes::<32>());
            // A concurrent first writer may win; then read theirs.
            sqlx::query(
                "INSERT INTO tenant_secrets (tenant_id, pseudonym_key_enc, master_kid) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id) DO NOTHING",
            )
            .bind(tenant)
            .bind(&sealed)
            .bind(&master.kid)
            .execute(tx.conn())
            .await?;
            sqlx::query_as("SELECT pseudonym_key_enc, master_kid FROM tenant_secrets")
                .fetch_one(tx.conn())
                .await?
        }
    };
    let Some(sealed) = sealed else { return Ok(None) };
    let key = crypto::open(master, &kid, &ctx, &sealed)?;
    Ok(key.try_into().ok())
}

/// The platform chain's key, derived from the master key.
pub fn platform_key(master: &MasterKey) -> [u8; 32] {
    let hex = crypto::hmac_hex(master.key.expose(), b"docket platform audit pseudonyms");
    let mut out = [0u8; 32];
    hex::decode_to_slice(&hex, &mut out).unwrap_or_default();
    out
}

/// `p_` + 32 hex characters of HMAC-SHA-256(key, raw); `erased` once the key is gone.
pub fn apply(key: Option<&[u8; 32]>, raw: &str) -> String {
    match key {
        Some(k) => format!("p_{}", &crypto::hmac_hex(k, raw.as_bytes())[..32]),
        None => "erased".into(),
    }
}
