//! What every job handler may use. Built once per worker process.

use docket_platform::audit::Auditor;
use docket_platform::blobs::BlobStore;
use docket_platform::config::Config;
use docket_platform::db::Db;
use docket_platform::jobs::JobQueue;
use docket_rag::chunk::Chunker;
use std::sync::Arc;
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
    /// Configuration.
    pub config: Config,
    /// Longest a single attempt may run.
    pub job_timeout: Duration,
}

/// Cheap-to-clone handle for apalis `Data`.
pub type Ctx = Arc<JobContext>;
