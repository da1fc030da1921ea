//! The in-process Qdrant engine (`qdrant-edge`): one shared shard for the `shared` tier and
//! one shard per tenant, in its own directory, for `dedicated` and `isolated` tenants.

use super::shard::Shard;
use super::{
    OwnerLock, Placement, Searched, StoredPoint, TenantScope, VectorError, VectorIndex, VectorPoint,
    retain_tenant,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// The engine's shards under one owned directory. Cheap to clone.
#[derive(Clone)]
pub struct EdgeStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    shared: Arc<Shard>,
    own: Mutex<HashMap<(Placement, Uuid), Arc<Shard>>>,
    _lock: OwnerLock,
}

impl std::fmt::Debug for EdgeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeStore").field("dir", &self.inner.dir).finish()
    }
}

fn joined(e: tokio::task::JoinError) -> VectorError {
    VectorError::Engine(format!("engine task failed: {e}"))
}

impl EdgeStore {
    /// Takes ownership of `dir` (failing if another process has it) and opens or creates
    /// the shared collection.
    pub async fn open(dir: &Path, holder: &str) -> Result<Self, VectorError> {
        let lock = OwnerLock::acquire(dir, holder)?;
        let shard_dir = dir.join("shared");
        let shard = tokio::task::spawn_blocking(move || Shard::open_or_create(&shard_dir))
            .await
            .map_err(joined)??;
        Ok(Self {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                shared: Arc::new(shard),
                own: Mutex::new(HashMap::new()),
                _lock: lock,
            }),
        })
    }

    /// The owned directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn own_dir(&self, placement: Placement, tenant: Uuid) -> PathBuf {
        self.inner.dir.join(placement.as_str()).join(tenant.to_string())
    }

    /// The shard holding `scope`'s points; `None` if it does not exist and `create` is false
    /// (a tenant never indexed at a placement has nothing there).
    fn shard(&self, scope: TenantScope, create: bool) -> Result<Option<Arc<Shard>>, VectorError> {
        let placement = scope.placement();
        if placement == Placement::Shared {
            return Ok(Some(self.inner.shared.clone()));
        }
        let key = (placement, scope.tenant());
        let mut own = self
            .inner
            .own
            .lock()
            .map_err(|_| VectorError::Engine("shard map poisoned".into()))?;
        if let Some(s) = own.get(&key) {
            return Ok(Some(s.clone()));
        }
        let dir = self.own_dir(placement, scope.tenant());
        if !create && !dir.exists() {
            return Ok(None);
        }
        let shard = Arc::new(Shard::open_or_create(&dir)?);
        own.insert(key, shard.clone());
        Ok(Some(shard))
    }

    /// Runs `f` on the scope's shard on the blocking pool.
    async fn with_shard<T: Send + 'static>(
        &self,
        scope: TenantScope,
        create: bool,
        empty: T,
        f: impl FnOnce(&Shard) -> Result<T, VectorError> + Send + 'static,
    ) -> Result<T, VectorError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || match this.shard(scope, create)? {
            Some(s) => f(&s),
            None => Ok(empty),
        })
        .await
        .map_err(joined)?
    }

    /// An exact count over the shared collection: proves the engine answers.
    pub async fn health(&self) -> Result<usize, VectorError> {
        let shared = self.inner.shared.clone();
        tokio::task::spawn_blocking(move || shared.count_all())
            .await
            .map_err(joined)?
    }

    /// Builds HNSW indexes of shards written since the last run (blocking for seconds: the
    /// worker calls it from a background task, never on a request path). Returns how many
    /// shards changed.
    pub async fn optimize(&self) -> Result<usize, VectorError> {
        let mut shards = vec![self.inner.shared.clone()];
        if let Ok(own) = self.inner.own.lock() {
            shards.extend(own.values().cloned());
        }
        tokio::task::spawn_blocking(move || {
            let mut changed = 0;
            for s in shards {
                if s.optimize_if_dirty()? {
                    changed += 1;
                }
            }
            Ok(changed)
        })
        .await
        .map_err(joined)?
    }

    /// Bytes the engine's files take on disk (documented growth: the WAL is never
    /// truncated by this engine version).
    pub fn disk_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(p) else {
                return 0;
            };
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.inner.dir)
    }
}

impl VectorIndex for EdgeStore {
    async fn upsert(&self, scope: TenantScope, points: Vec<VectorPoint>) -> Result<(), VectorError> {
        self.with_shard(scope, true, (), move |s| s.upsert(scope.tenant(), points))
            .await
    }

    async fn search(
        &self,
        scope: TenantScope,
        query: Vec<f32>,
        limit: usize,
        document: Option<Uuid>,
    ) -> Result<Searched, VectorError> {
        let raw = self
            .with_shard(scope, false, vec![], move |s| {
                s.search(scope.tenant(), query, limit, document)
            })
            .await?;
        Ok(retain_tenant(scope, raw))
    }

    async fn delete_document(&self, scope: TenantScope, document: Uuid) -> Result<(), VectorError> {
        self.with_shard(scope, false, (), move |s| {
            s.delete(scope.tenant(), Some(document))
        })
        .await
    }

    async fn delete_tenant(&self, scope: TenantScope) -> Result<(), VectorError> {
        self.with_shard(scope, false, (), move |s| s.delete(scope.tenant(), None))
            .await?;
        if scope.placement() == Placement::Shared {
            return Ok(());
        }
        // A tenant's own shard: close it and remove its files, unless a concurrent reader
        // still holds it (its points are already deleted; the directory goes next time).
        let key = (scope.placement(), scope.tenant());
        let removed = self
            .inner
            .own
            .lock()
            .map_err(|_| VectorError::Engine("shard map poisoned".into()))?
            .remove(&key);
        let dir = self.own_dir(scope.placement(), scope.tenant());
        tokio::task::spawn_blocking(move || {
            if let Some(shard) = removed {
                match Arc::try_unwrap(shard) {
                    Ok(s) => drop(s),
                    Err(_) => return Ok(()),
                }
            }
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(VectorError::Io {
                    dir: dir.display().to_string(),
                    source,
                }),
            }
        })
        .await
        .map_err(joined)?
    }

    async fn count(&self, scope: TenantScope, document: Option<Uuid>) -> Result<usize, VectorError> {
        self.with_shard(scope, false, 0, move |s| s.count(scope.tenant(), document))
            .await
    }

    async fn scroll(
        &self,
        scope: TenantScope,
        offset: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<StoredPoint>, Option<Uuid>), VectorError> {
        self.with_shard(scope, false, (vec![], None), move |s| {
            s.scroll(scope.tenant(), offset, limit)
        })
        .await
    }
}
