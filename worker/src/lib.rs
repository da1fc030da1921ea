//! Docket's background worker. With the in-process vector engine, exactly one worker
//! process owns the vector directory; it reports the store's health in its heartbeat.
//! Job queues (parse, chunk, embed, index, …) are added to this process by the ingestion
//! work; this crate holds the process lifecycle they plug into.

use docket_platform::config::Config;
use docket_platform::db::{Db, DbError};
use docket_platform::heartbeat;
use docket_rag::vectors::{EdgeStore, VectorError};
use serde_json::json;
use std::future::Future;

/// The worker could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Vector store (e.g. another process owns the directory).
    #[error(transparent)]
    Vectors(#[from] VectorError),
}

/// A started worker: owns the vector store until dropped.
#[derive(Debug)]
pub struct Worker {
    config: Config,
    db: Db,
    vectors: EdgeStore,
}

impl Worker {
    /// Opens the stores. Fails at once, with a clear message, if another process owns the
    /// vector directory.
    pub async fn start(config: Config) -> Result<Self, WorkerError> {
        let db = Db::connect_lazy(&config.database.app_url, config.database.max_connections)?;
        let vectors = EdgeStore::open(&config.vector_dir, &config.worker_name).await?;
        tracing::info!(worker = %config.worker_name, vector_dir = %config.vector_dir.display(), "worker started");
        Ok(Self { config, db, vectors })
    }

    /// Heartbeats until `shutdown` resolves, then deregisters.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        let mut tick = tokio::time::interval(self.config.heartbeat_interval);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => self.beat().await,
            }
        }
        if let Err(e) = heartbeat::remove(&self.db, &self.config.worker_name).await {
            tracing::warn!(error = %e, "could not remove heartbeat on shutdown");
        }
        tracing::info!(worker = %self.config.worker_name, "worker stopped");
        Ok(())
    }

    async fn beat(&self) {
        let vector_store = match self.vectors.health().await {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("error: {e}"),
        };
        let components = json!({"vector_store": vector_store});
        if let Err(e) = heartbeat::beat(&self.db, &self.config.worker_name, "worker", &components).await {
            tracing::warn!(error = %e, "heartbeat failed");
        }
    }
}
