//! A tenant's own keys, sealed under the master key in `tenant_secrets`: the data key that
//! encrypts its objects, and the pseudonym key of its audit rows. Created on first use.
//! Destroying them (`destroyed_at`) is crypto-shredding: objects become unreadable and
//! audit pseudonyms unlinkable, while audit hashes still verify.

use crate::config::MasterKey;
use crate::crypto::{self, CryptoError};
use crate::db::{DbError, TenantTx};
use crate::ids::TenantId;
use crate::secret::Secret;

/// Loading or creating a tenant's keys failed.
#[derive(Debug, thiserror::Error)]
pub enum TenantKeyError {
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A sealed key did not open (wrong master key?).
    #[error("tenant key: {0}")]
    Crypto(#[from] CryptoError),
    /// The tenant's keys were destroyed (the tenant was erased).
    #[error("the tenant's keys have been destroyed")]
    Destroyed,
}

impl From<sqlx::Error> for TenantKeyError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e.into())
    }
}

/// The key that encrypts one tenant's objects. Carries its tenant, so an object of one
/// tenant can never be written with another's key.
#[derive(Clone)]
pub struct DataKey {
    tenant: TenantId,
    key: Secret<[u8; 32]>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey {{ tenant: {}, key: [redacted] }}", self.tenant)
    }
}

impl DataKey {
    /// The tenant this key belongs to.
    pub fn tenant(&self) -> TenantId {
        self.tenant
    }
    /// The key bytes.
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        self.key.expose()
    }
    /// A key from raw bytes (tests that must show a wrong key fails).
    pub fn from_bytes_for_tests(tenant: TenantId, key: [u8; 32]) -> Self {
        Self {
            tenant,
            key: Secret::new(key),
        }
    }
}

fn data_ctx(t: TenantId) -> String {
    format!("data-key:{t}")
}

fn pseudonym_ctx(t: TenantId) -> String {
    format!("pseudonym-key:{t}")
}

#[derive(sqlx::FromRow)]
struct Row {
    pseudonym_key_enc: Option<Vec<u8>>,
    data_key_enc: Option<Vec<u8>>,
    master_kid: String,
    destroyed: bool,
}

async fn row(tx: &mut TenantTx, master: &MasterKey) -> Result<Row, TenantKeyError> {
    let sql = "SELECT pseudonym_key_enc, data_key_enc, master_kid, destroyed_at IS NOT NULL AS destroyed FROM tenant_secrets";
    if let Some(r) = sqlx::query_as::<_, Row>(sql).fetch_optional(tx.conn()).await? {
        if r.data_key_enc.is_some() || r.destroyed {
            return Ok(r);
        }
        // A tenant from before data keys: add one (only if still missing).
        let t = tx.tenant_id();
        sqlx::query(
            "UPDATE tenant_secrets SET data_key_enc = $1 WHERE data_key_enc IS NULL AND master_kid = $2",
        )
        .bind(crypto::seal(master, &data_ctx(t), &crypto::random_bytes::<32>()))
        .bind(&master.kid)
        .execute(tx.conn())
        .await?;
    } else {
        let t = tx.tenant_id();
        // A concurrent first use may win the insert; then we read theirs.
        sqlx::query(
            "INSERT INTO tenant_secrets (tenant_id, pseudonym_key_enc, data_key_enc, master_kid)
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(t)
        .bind(crypto::seal(
            master,
            &pseudonym_ctx(t),
            &crypto::random_bytes::<32>(),
        ))
        .bind(crypto::seal(master, &data_ctx(t), &crypto::random_bytes::<32>()))
        .bind(&master.kid)
        .execute(tx.conn())
        .await?;
    }
    Ok(sqlx::query_as::<_, Row>(sql).fetch_one(tx.conn()).await?)
}

fn open32(master: &MasterKey, kid: &str, ctx: &str, sealed: &[u8]) -> Result<[u8; 32], TenantKeyError> {
    let k = crypto::open(master, kid, ctx, sealed)?;
    k.try_into()
        .map_err(|_| TenantKeyError::Crypto(CryptoError::Decrypt))
}

/// The tenant's data key (created on first use).
pub async fn data_key(tx: &mut TenantTx, master: &MasterKey) -> Result<DataKey, TenantKeyError> {
    let t = tx.tenant_id();
    let r = row(tx, master).await?;
    match (r.destroyed, r.data_key_enc) {
        (false, Some(sealed)) => Ok(DataKey {
            tenant: t,
            key: Secret::new(open32(master, &r.master_kid, &data_ctx(t), &sealed)?),
        }),
        _ => Err(TenantKeyError::Destroyed),
    }
}

/// The tenant's audit pseudonym key; `None` once destroyed.
pub async fn pseudonym_key(
    tx: &mut TenantTx,
    master: &MasterKey,
) -> Result<Option<[u8; 32]>, TenantKeyError> {
    let t = tx.tenant_id();
    let r = row(tx, master).await?;
    match (r.destroyed, r.pseudonym_key_enc) {
        (false, Some(sealed)) => Ok(Some(open32(master, &r.master_kid, &pseudonym_ctx(t), &sealed)?)),
        _ => Ok(None),
    }
}
