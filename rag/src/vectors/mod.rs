//! The vector index: one [`VectorIndex`] trait whose every method takes the tenant scope
//! explicitly, implemented on the in-process Qdrant engine ([`EdgeStore`], the
//! single-machine default; exactly one process may own its directory) and on a Qdrant
//! server ([`QdrantServer`], for production and scale-out).
//!
//! Isolation is layered: placement by tier keeps tenants apart physically where they pay for
//! it, every search, count, scroll and delete also carries the tenant filter (even where the
//! placement holds one tenant only), and every hit's payload tenant is checked again after
//! the search ([`retain_tenant`]).

mod edge;
mod either;
mod owner_lock;
mod server;
mod shard;

pub use edge::EdgeStore;
pub use either::Vectors;
pub use owner_lock::OwnerLock;
pub use server::{QdrantServer, ServerConfig};

use std::future::Future;
use uuid::Uuid;

/// Dimension of the embedding model's vectors (all-MiniLM-L6-v2).
pub const DIMENSION: usize = 384;

/// Namespace of point ids (UUIDv5 of tenant, document and chunk ordinal).
const POINT_NAMESPACE: Uuid = Uuid::from_u128(0x6f2d_1c3a_9e4b_4d7e_8a15_0b9c_3e7d_5a21);

/// Where a tenant's vectors live, by its isolation tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    /// One collection shared by many tenants, partitioned by the `tenant_id` payload index.
    Shared,
    /// A collection of the tenant's own.
    Dedicated,
    /// A deployment of the tenant's own (with the in-process engine: its own engine
    /// instance in its own directory; with a server: its own URL and key).
    Isolated,
}

impl Placement {
    /// Parses a tier name as stored in `tenants.isolation_tier`.
    pub fn parse(tier: &str) -> Option<Self> {
        match tier {
            "shared" => Some(Self::Shared),
            "dedicated" => Some(Self::Dedicated),
            "isolated" => Some(Self::Isolated),
            _ => None,
        }
    }

    /// The tier name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Dedicated => "dedicated",
            Self::Isolated => "isolated",
        }
    }
}

/// One tenant at one placement: the argument every index operation requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TenantScope {
    tenant: Uuid,
    placement: Placement,
}

impl TenantScope {
    /// The scope of `tenant`'s vectors at `placement`.
    pub fn new(tenant: Uuid, placement: Placement) -> Self {
        Self { tenant, placement }
    }

    /// The tenant.
    pub fn tenant(&self) -> Uuid {
        self.tenant
    }

    /// The placement.
    pub fn placement(&self) -> Placement {
        self.placement
    }
}

/// A chunk's vector and payload, ready to index.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorPoint {
    /// Document the chunk belongs to.
    pub document: Uuid,
    /// The chunk's ordinal within the document.
    pub ordinal: u32,
    /// First page of the chunk (1-based).
    pub page_start: u32,
    /// Last page of the chunk.
    pub page_end: u32,
    /// The chunk's text (what answers cite).
    pub text: String,
    /// Its embedding.
    pub vector: Vec<f32>,
}

/// A stored point read back (for exports and tier moves).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPoint {
    /// Point id.
    pub id: Uuid,
    /// The tenant its payload names.
    pub tenant: Uuid,
    /// Payload and vector.
    pub point: VectorPoint,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Point id.
    pub id: Uuid,
    /// Cosine similarity.
    pub score: f32,
    /// The tenant its payload names.
    pub tenant: Uuid,
    /// Document.
    pub document: Uuid,
    /// Chunk ordinal.
    pub ordinal: u32,
    /// First page.
    pub page_start: u32,
    /// Last page.
    pub page_end: u32,
    /// Chunk text.
    pub text: String,
}

/// What a search returned, after the tenant re-check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Searched {
    /// Hits that belong to the scope's tenant, best first.
    pub hits: Vec<Hit>,
    /// Hits whose payload named another tenant: dropped; the caller counts and audits them.
    pub violations: Vec<Hit>,
}

/// A vector-store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// Another process owns the directory.
    #[error(
        "vector directory {dir} is already owned by another worker process ({holder}); \
         only one process may run the vector queues with the in-process engine"
    )]
    DirectoryOwned {
        /// The directory.
        dir: String,
        /// What the lock file says about its holder.
        holder: String,
    },
    /// Filesystem trouble.
    #[error("vector directory {dir}: {source}")]
    Io {
        /// The directory.
        dir: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A vector of the wrong size.
    #[error("vector of dimension {got}, expected {DIMENSION}")]
    Dimension {
        /// What was given.
        got: usize,
    },
    /// The engine refused or failed.
    #[error("vector engine: {0}")]
    Engine(String),
}

/// The tenant-partitioned vector index. Every method takes the tenant scope; none can be
/// called for "all tenants".
pub trait VectorIndex: Send + Sync {
    /// Inserts or replaces points (ids from [`point_id`], so re-indexing is idempotent).
    /// Durable when it returns: the job that called it may be acknowledged.
    fn upsert(
        &self,
        scope: TenantScope,
        points: Vec<VectorPoint>,
    ) -> impl Future<Output = Result<(), VectorError>> + Send;

    /// The `limit` nearest chunks of the scope's tenant, optionally within one document,
    /// re-checked by [`retain_tenant`].
    fn search(
        &self,
        scope: TenantScope,
        query: Vec<f32>,
        limit: usize,
        document: Option<Uuid>,
    ) -> impl Future<Output = Result<Searched, VectorError>> + Send;

    /// Removes one document's points.
    fn delete_document(
        &self,
        scope: TenantScope,
        document: Uuid,
    ) -> impl Future<Output = Result<(), VectorError>> + Send;

    /// Removes every point of the tenant at this placement.
    fn delete_tenant(&self, scope: TenantScope) -> impl Future<Output = Result<(), VectorError>> + Send;

    /// Exact number of the tenant's points, optionally of one document.
    fn count(
        &self,
        scope: TenantScope,
        document: Option<Uuid>,
    ) -> impl Future<Output = Result<usize, VectorError>> + Send;

    /// A page of the tenant's points with vectors, after `offset` (for exports and moves).
    /// Returns the page and the offset of the next one.
    fn scroll(
        &self,
        scope: TenantScope,
        offset: Option<Uuid>,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<StoredPoint>, Option<Uuid>), VectorError>> + Send;
}

/// The point id of a tenant's document chunk: stable, so re-indexing replaces.
pub fn point_id(tenant: Uuid, document: Uuid, ordinal: u32) -> Uuid {
    let mut name = Vec::with_capacity(36);
    name.extend_from_slice(tenant.as_bytes());
    name.extend_from_slice(document.as_bytes());
    name.extend_from_slice(&ordinal.to_be_bytes());
    Uuid::new_v5(&POINT_NAMESPACE, &name)
}

/// The payload stored with a point (both implementations store the same fields).
fn payload(tenant: Uuid, p: &VectorPoint) -> serde_json::Value {
    serde_json::json!({
        "tenant_id": tenant.to_string(),
        "document_id": p.document.to_string(),
        "ordinal": p.ordinal,
        "page_start": p.page_start,
        "page_end": p.page_end,
        "text": p.text,
    })
}

/// A point's tenant and content back from its payload; `None` if a field is missing.
fn from_payload(
    payload: &serde_json::Map<String, serde_json::Value>,
    vector: Vec<f32>,
) -> Option<(Uuid, VectorPoint)> {
    let uuid = |k: &str| payload.get(k)?.as_str()?.parse::<Uuid>().ok();
    let num = |k: &str| payload.get(k)?.as_u64().and_then(|n| u32::try_from(n).ok());
    Some((
        uuid("tenant_id")?,
        VectorPoint {
            document: uuid("document_id")?,
            ordinal: num("ordinal")?,
            page_start: num("page_start").unwrap_or(0),
            page_end: num("page_end").unwrap_or(0),
            text: payload.get("text")?.as_str()?.to_owned(),
            vector,
        },
    ))
}

impl Hit {
    fn new(id: Uuid, score: f32, tenant: Uuid, p: VectorPoint) -> Self {
        Self {
            id,
            score,
            tenant,
            document: p.document,
            ordinal: p.ordinal,
            page_start: p.page_start,
            page_end: p.page_end,
            text: p.text,
        }
    }
}

/// Refuses a vector of the wrong size before it reaches an engine.
fn check_dimension(v: &[f32]) -> Result<(), VectorError> {
    match v.len() {
        DIMENSION => Ok(()),
        got => Err(VectorError::Dimension { got }),
    }
}

/// Splits raw hits into the scope tenant's and the others (the last line of defence: a
/// filter bug, a mis-tagged point or a placement mix-up must never reach an answer).
pub fn retain_tenant(scope: TenantScope, raw: Vec<Hit>) -> Searched {
    let (hits, violations) = raw.into_iter().partition(|h| h.tenant == scope.tenant);
    Searched { hits, violations }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(tenant: Uuid) -> Hit {
        Hit {
            id: Uuid::new_v4(),
            score: 0.5,
            tenant,
            document: Uuid::new_v4(),
            ordinal: 0,
            page_start: 1,
            page_end: 1,
            text: "x".into(),
        }
    }

    #[test]
    fn hits_of_another_tenant_are_dropped_as_violations() {
        let (mine, theirs) = (Uuid::new_v4(), Uuid::new_v4());
        let scope = TenantScope::new(mine, Placement::Shared);
        let out = retain_tenant(scope, vec![hit(mine), hit(theirs), hit(mine)]);
        assert_eq!(out.hits.len(), 2);
        assert!(out.hits.iter().all(|h| h.tenant == mine));
        assert_eq!(out.violations.len(), 1);
        assert_eq!(out.violations[0].tenant, theirs);
    }

    #[test]
    fn point_ids_are_stable_and_distinct() {
        let (t, d) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(point_id(t, d, 3), point_id(t, d, 3));
        assert_ne!(point_id(t, d, 3), point_id(t, d, 4));
        assert_ne!(point_id(t, d, 3), point_id(Uuid::new_v4(), d, 3));
        assert_eq!(point_id(t, d, 3).get_version_num(), 5);
    }

    #[test]
    fn tiers_round_trip() {
        for p in [Placement::Shared, Placement::Dedicated, Placement::Isolated] {
            assert_eq!(Placement::parse(p.as_str()), Some(p));
        }
        assert_eq!(Placement::parse("public"), None);
    }
}
