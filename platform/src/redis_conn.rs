//! Redis access with a deployment-wide key prefix and tenant-scoped key construction.

use crate::ids::TenantId;
use crate::secret::Secret;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;
use tokio::sync::OnceCell;

/// A Redis operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The URL could not be parsed.
    #[error("invalid Redis URL")]
    BadUrl,
    /// Connecting or a command failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No answer in time.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

const TIMEOUT: Duration = Duration::from_secs(2);

/// A lazily connected, auto-reconnecting Redis handle. Processes start while Redis is down
/// (and report not-ready) instead of crashing.
#[derive(Debug, Clone)]
pub struct Redis {
    client: redis::Client,
    manager: std::sync::Arc<OnceCell<ConnectionManager>>,
    prefix: String,
}

impl Redis {
    /// A handle; no connection is made yet.
    pub fn new(url: &Secret<String>, prefix: &str) -> Result<Self, RedisError> {
        let client = redis::Client::open(url.expose().as_str()).map_err(|_| RedisError::BadUrl)?;
        Ok(Self {
            client,
            manager: Default::default(),
            prefix: prefix.to_owned(),
        })
    }

    /// A multiplexed connection (cheap to clone).
    pub async fn conn(&self) -> Result<ConnectionManager, RedisError> {
        let client = self.client.clone();
        let fut = self.manager.get_or_try_init(|| async move {
            let cfg = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(TIMEOUT))
                .set_response_timeout(Some(TIMEOUT))
                .set_number_of_retries(1);
            ConnectionManager::new_with_config(client, cfg).await
        });
        match tokio::time::timeout(TIMEOUT * 2, fut).await {
            Ok(Ok(m)) => Ok(m.clone()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(RedisError::Timeout(TIMEOUT * 2)),
        }
    }

    /// `PING` (readiness checks).
    pub async fn ping(&self) -> Result<(), RedisError> {
        let mut c = self.conn().await?;
        let cmd = redis::cmd("PING");
        match tokio::time::timeout(TIMEOUT, cmd.query_async::<String>(&mut c)).await {
            Ok(r) => r.map(|_| ()).map_err(Into::into),
            Err(_) => Err(RedisError::Timeout(TIMEOUT)),
        }
    }

    /// A key outside any tenant (e.g. global switches): `{prefix}platform:{name}`.
    pub fn platform_key(&self, name: &str) -> String {
        format!("{}platform:{name}", self.prefix)
    }

    /// A key of one tenant: `{prefix}t:{tenant}:{name}`. Every tenant-specific key goes
    /// through here so that no cache or counter can be shared across tenants.
    pub fn tenant_key(&self, tenant: TenantId, name: &str) -> String {
        format!("{}t:{tenant}:{name}", self.prefix)
    }

    /// Appends `value` to the platform list `name` (work notifications between processes).
    pub async fn push_platform_list(&self, name: &str, value: &str) -> Result<(), RedisError> {
        let mut c = self.conn().await?;
        redis::cmd("LPUSH")
            .arg(self.platform_key(name))
            .arg(value)
            .query_async::<i64>(&mut c)
            .await?;
        Ok(())
    }

    /// Takes the oldest value of the platform list `name`, if any.
    pub async fn pop_platform_list(&self, name: &str) -> Result<Option<String>, RedisError> {
        let mut c = self.conn().await?;
        Ok(redis::cmd("RPOP")
            .arg(self.platform_key(name))
            .query_async::<Option<String>>(&mut c)
            .await?)
    }

    /// The deployment's key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}
