//! The in-process Qdrant engine (`qdrant-edge`).

use super::{OwnerLock, VectorError};
use qdrant_edge::{CountRequest, DEFAULT_VECTOR_NAME, Distance, EdgeConfig, EdgeShard, EdgeVectorParams};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Dimension of the embedding model's vectors (all-MiniLM-L6-v2).
pub const DIMENSION: usize = 384;

/// The engine's shards under one owned directory.
#[derive(Clone)]
pub struct EdgeStore {
    dir: PathBuf,
    shared: Arc<EdgeShard>,
    _lock: Arc<OwnerLock>,
}

impl std::fmt::Debug for EdgeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeStore").field("dir", &self.dir).finish()
    }
}

fn engine(e: impl std::fmt::Display) -> VectorError {
    VectorError::Engine(e.to_string())
}

impl EdgeStore {
    /// Takes ownership of `dir` (failing if another process has it) and opens or creates
    /// the shared collection.
    pub async fn open(dir: &Path, holder: &str) -> Result<Self, VectorError> {
        let lock = OwnerLock::acquire(dir, holder)?;
        let shard_dir = dir.join("shared");
        let shard = tokio::task::spawn_blocking(move || open_or_create(&shard_dir))
            .await
            .map_err(engine)??;
        Ok(Self {
            dir: dir.to_owned(),
            shared: Arc::new(shard),
            _lock: Arc::new(lock),
        })
    }

    /// An exact count over the shared collection: proves the engine answers.
    pub async fn health(&self) -> Result<usize, VectorError> {
        let shard = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            shard
                .count(CountRequest {
                    filter: None,
                    exact: true,
                })
                .map_err(engine)
        })
        .await
        .map_err(engine)?
    }

    /// The owned directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn open_or_create(dir: &Path) -> Result<EdgeShard, VectorError> {
    if dir.join("edge_config.json").exists() || dir.join("segments").exists() {
        return EdgeShard::load(dir, None).map_err(engine);
    }
    std::fs::create_dir_all(dir).map_err(|source| VectorError::Io {
        dir: dir.display().to_string(),
        source,
    })?;
    let config = EdgeConfig::builder()
        .vector(
            DEFAULT_VECTOR_NAME,
            EdgeVectorParams::builder(DIMENSION, Distance::Cosine).build(),
        )
        .build();
    EdgeShard::new(dir, config).map_err(engine)
}
