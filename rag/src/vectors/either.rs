//! The index a process runs with: the in-process engine or a Qdrant server, chosen by
//! configuration once at start.

use super::{
    EdgeStore, QdrantServer, Searched, StoredPoint, TenantScope, VectorError, VectorIndex, VectorPoint,
};
use uuid::Uuid;

/// One of the two implementations, so callers need not be generic.
#[derive(Debug, Clone)]
pub enum Vectors {
    /// The in-process engine (one owning process).
    Edge(EdgeStore),
    /// A Qdrant server (any number of processes).
    Server(QdrantServer),
}

impl Vectors {
    /// Proves the store answers.
    pub async fn health(&self) -> Result<(), VectorError> {
        match self {
            Vectors::Edge(e) => e.health().await.map(|_| ()),
            Vectors::Server(s) => s.health().await,
        }
    }

    /// The in-process engine, if that is what this is (optimization, disk figures).
    pub fn edge(&self) -> Option<&EdgeStore> {
        match self {
            Vectors::Edge(e) => Some(e),
            Vectors::Server(_) => None,
        }
    }
}

impl VectorIndex for Vectors {
    async fn upsert(&self, scope: TenantScope, points: Vec<VectorPoint>) -> Result<(), VectorError> {
        match self {
            Vectors::Edge(e) => e.upsert(scope, points).await,
            Vectors::Server(s) => s.upsert(scope, points).await,
        }
    }

    async fn search(
        &self,
        scope: TenantScope,
        query: Vec<f32>,
        limit: usize,
        document: Option<Uuid>,
    ) -> Result<Searched, VectorError> {
        match self {
            Vectors::Edge(e) => e.search(scope, query, limit, document).await,
            Vectors::Server(s) => s.search(scope, query, limit, document).await,
        }
    }

    async fn delete_document(&self, scope: TenantScope, document: Uuid) -> Result<(), VectorError> {
        match self {
            Vectors::Edge(e) => e.delete_document(scope, document).await,
            Vectors::Server(s) => s.delete_document(scope, document).await,
        }
    }

    async fn delete_tenant(&self, scope: TenantScope) -> Result<(), VectorError> {
        match self {
            Vectors::Edge(e) => e.delete_tenant(scope).await,
            Vectors::Server(s) => s.delete_tenant(scope).await,
        }
    }

    async fn count(&self, scope: TenantScope, document: Option<Uuid>) -> Result<usize, VectorError> {
        match self {
            Vectors::Edge(e) => e.count(scope, document).await,
            Vectors::Server(s) => s.count(scope, document).await,
        }
    }

    async fn scroll(
        &self,
        scope: TenantScope,
        offset: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<StoredPoint>, Option<Uuid>), VectorError> {
        match self {
            Vectors::Edge(e) => e.scroll(scope, offset, limit).await,
            Vectors::Server(s) => s.scroll(scope, offset, limit).await,
        }
    }
}
