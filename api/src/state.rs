//! Shared state of the API process.

use docket_platform::audit::Auditor;
use docket_platform::blobs::{BlobError, BlobStore};
use docket_platform::config::Config;
use docket_platform::db::{ControlDb, Db, DbError};
use docket_platform::identity::keyring::KeyRing;
use docket_platform::jobs::JobQueue;
use docket_platform::redis_conn::{Redis, RedisError};
use std::sync::Arc;

/// Building the state failed (bad URLs, unusable object store folder).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Redis.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// Object store.
    #[error(transparent)]
    Blobs(#[from] BlobError),
}

/// Everything a handler may use. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Service-role database (tenant-scoped transactions).
    pub db: Db,
    /// Control-plane database (operator endpoints only).
    pub control: ControlDb,
    /// Redis.
    pub redis: Redis,
    /// Object storage.
    pub blobs: BlobStore,
    /// Access-token signing keys.
    pub keys: KeyRing,
    /// Audit writer.
    pub auditor: Auditor,
    /// Job queues.
    pub queue: JobQueue,
    /// Configuration.
    pub config: Arc<Config>,
    /// Incident switches in force (refreshed in the background by `serve`).
    pub switches: crate::switchboard::SwitchBoard,
    /// Finished-query announcements (fed by `serve`'s listener).
    pub answers: crate::answers::AnswerBoard,
    /// The cached `/readyz` verdict.
    pub readiness: crate::routes::health::Readiness,
    /// When `/metrics` last computed its cross-tenant gauges.
    pub gauges: crate::routes::health::GaugeSnapshot,
}

impl AppState {
    /// Connects lazily to everything: the process starts even if a dependency is down, and
    /// `/readyz` says which.
    pub fn from_config(config: &Config) -> Result<Self, StateError> {
        let db = Db::connect_lazy(&config.database.app_url, config.database.max_connections)?;
        let redis = Redis::new(&config.redis.url, &config.redis.prefix)?;
        Ok(Self {
            queue: JobQueue::new(redis.clone(), config.ingest.job_max_attempts),
            keys: KeyRing::new(
                db.clone(),
                config.master_key.clone(),
                config.auth.key_rotation_window,
            ),
            auditor: Auditor::new(config.master_key.clone()),
            db,
            control: ControlDb::connect_lazy(&config.database.control_url, config.database.max_connections)?,
            redis,
            blobs: BlobStore::from_config(&config.objects)?,
            config: Arc::new(config.clone()),
            switches: Default::default(),
            answers: Default::default(),
            readiness: Default::default(),
            gauges: Default::default(),
        })
    }
}
