//! What every job handler may use. Built once per worker process.

use docket_platform::audit::Auditor;
use docket_platform::blobs::BlobStore;
use docket_platform::config::Config;
use docket_platform::db::Db;
use docket_platform::jobs::JobQueue;
use docket_rag::batcher::Batcher;
use docket_rag::chunk::Chunker;
use docket_rag::embed::Embedder;
use docket_rag::vectors::Vectors;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    /// The embedding model for interactive uploads (loaded once per process).
    pub embedder: Embedder,
    /// The same model in its own session for imported documents, batching the chunks of
    /// concurrent bulk jobs into one call (an import's documents are often one chunk each);
    /// an interactive upload never waits for a bulk batch to release its session.
    pub bulk_embedder: Batcher,
    /// The same model in a session for questions (see `Embedder::load_interactive`),
    /// batching the questions in flight.
    pub question_embedder: Batcher,
    /// The vector store: with the in-process engine only in the one process that owns it;
    /// with a Qdrant server in every process. Present ⇔ this process runs `index`.
    pub vectors: Option<Vectors>,
    /// Per-tenant locks serializing indexing with tier moves in this process (waiters here
    /// hold no database connection; the holder takes the deployment-wide lock below).
    pub tenant_locks: Mutex<HashMap<uuid::Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// Connections that only hold PostgreSQL advisory locks (apart from the job pool, so a
    /// lock holder can always get the connection its work needs).
    pub lock_pool: sqlx::PgPool,
    /// Configuration.
    pub config: Config,
    /// Longest a single attempt may run.
    pub job_timeout: Duration,
    /// Interactive-lane jobs running in this process right now (bulk jobs yield to them).
    pub interactive_running: AtomicUsize,
    /// When the last interactive job ended (ms since the Unix epoch): the next stage of the
    /// same document is usually picked up within one poll, so bulk jobs wait past the gap.
    pub interactive_ended_ms: AtomicU64,
    /// Stripe, when configured: `invoice` jobs push their invoices there.
    pub stripe: Option<docket_platform::billing::stripe::Stripe>,
    /// The language model for generative answers, when configured (its permits limit the
    /// requests this process has in flight).
    pub llm: Option<docket_platform::llm::Llm>,
}

/// Cheap-to-clone handle for apalis `Data`.
pub type Ctx = Arc<JobContext>;

/// Longest a bulk job waits for interactive ones before it runs anyway (no starvation).
const MAX_YIELD: Duration = Duration::from_secs(5);

/// How long after an interactive job a bulk job still waits (the poll gap between stages).
const STAGE_GAP_MS: u64 = 150;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Counts an interactive job as running until dropped.
#[derive(Debug)]
pub struct InteractiveGuard<'a>(&'a JobContext);

impl Drop for InteractiveGuard<'_> {
    fn drop(&mut self) {
        self.0.interactive_ended_ms.store(now_ms(), Ordering::Relaxed);
        self.0.interactive_running.fetch_sub(1, Ordering::Relaxed);
    }
}

impl JobContext {
    /// Marks an interactive job as running (bulk jobs starting meanwhile wait for it).
    pub fn interactive_started(&self) -> InteractiveGuard<'_> {
        self.interactive_running.fetch_add(1, Ordering::Relaxed);
        InteractiveGuard(self)
    }

    /// Lets interactive jobs of this process go first: a bulk job starts once none is
    /// running, or after [`MAX_YIELD`]. The two cores are shared, and a single upload's
    /// latency is what a person waits for; an import's throughput barely notices.
    pub async fn yield_to_interactive(&self) {
        let started = std::time::Instant::now();
        let busy = || {
            self.interactive_running.load(Ordering::Relaxed) > 0
                || now_ms().saturating_sub(self.interactive_ended_ms.load(Ordering::Relaxed)) < STAGE_GAP_MS
        };
        while busy() && started.elapsed() < MAX_YIELD {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The lock that indexing and tier moves of `tenant` take, across every worker process
    /// of the deployment (so a move never races an index job writing to the placement it
    /// is leaving, in this process or another): the in-process mutex first, then a
    /// PostgreSQL advisory lock held by a transaction on [`JobContext::lock_pool`] until
    /// the guard is dropped.
    pub async fn lock_tenant_vectors(&self, tenant: uuid::Uuid) -> Result<TenantVectorLock, sqlx::Error> {
        let local = {
            let mut locks = self.tenant_locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(tenant).or_default().clone()
        };
        let local = local.lock_owned().await;
        let mut tx = self.lock_pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(docket_platform::placement::vector_lock_key(tenant))
            .execute(&mut *tx)
            .await?;
        Ok(TenantVectorLock {
            _tx: tx,
            _local: local,
        })
    }
}

/// Held while a tenant's vectors are written or moved; released on drop (the transaction
/// rolls back, which releases the advisory lock).
#[derive(Debug)]
pub struct TenantVectorLock {
    _tx: sqlx::Transaction<'static, sqlx::Postgres>,
    _local: tokio::sync::OwnedMutexGuard<()>,
}
