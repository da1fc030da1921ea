//! What every job handler may use. Built once per worker process.

use docket_platform::audit::Auditor;
use docket_platform::blobs::BlobStore;
use docket_platform::config::Config;
use docket_platform::db::Db;
use docket_platform::jobs::JobQueue;
use docket_rag::chunk::Chunker;
use docket_rag::embed::Embedder;
use docket_rag::vectors::Vectors;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Shared state of job handlers.
#[derive(Debug)]
pub struct JobContext {
    /// Service-role database.
    pub db: Db,
    /// Encrypted object storage.
    pub blobs: BlobStore,
    /// Queues (for chaining).
    pub queue: JobQueue,
    /// Audit writer.
    pub auditor: Auditor,
    /// The model's chunker (tokenizer loaded once).
    pub chunker: Chunker,
    /// The embedding model for ingestion batches (loaded once per process).
    pub embedder: Embedder,
    /// The same model in a session for single questions (see `Embedder::load_interactive`).
    pub question_embedder: Embedder,
    /// The vector store: with the in-process engine only in the one process that owns it;
    /// with a Qdrant server in every process. Present ⇔ this process runs `index`.
    pub vectors: Option<Vectors>,
    /// Per-tenant locks serializing indexing with tier moves in this process.
    pub tenant_locks: Mutex<HashMap<uuid::Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// Configuration.
    pub config: Config,
    /// Longest a single attempt may run.
    pub job_timeout: Duration,
}

/// Cheap-to-clone handle for apalis `Data`.
pub type Ctx = Arc<JobContext>;

impl JobContext {
    /// The lock that indexing and tier moves of `tenant` take (so a move never races an
    /// index job writing to the placement it is leaving).
    pub fn tenant_lock(&self, tenant: uuid::Uuid) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.tenant_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(tenant).or_default().clone()
    }
}
