//! Pseudonymization of personal identifiers in audit rows. Each tenant has a random key,
//! sealed under the master key in `tenant_secrets`; a pseudonym is a keyed hash of the raw
//! identifier. Destroying the key (erasure) leaves pseudonyms that nobody can link back to
//! a person, while every row's hash still verifies.

use crate::config::MasterKey;
use crate::crypto;
use crate::db::TenantTx;

use super::AuditError;

/// The tenant's key, created on first use; `None` once destroyed.
pub async fn tenant_key(tx: &mut TenantTx, master: &MasterKey) -> Result<Option<[u8; 32]>, AuditError> {
    crate::tenant_keys::pseudonym_key(tx, master)
        .await
        .map_err(|e| match e {
            crate::tenant_keys::TenantKeyError::Db(d) => AuditError::Db(d),
            crate::tenant_keys::TenantKeyError::Crypto(c) => AuditError::Crypto(c),
            crate::tenant_keys::TenantKeyError::Destroyed => AuditError::Crypto(crypto::CryptoError::Decrypt),
        })
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
