//! Docket's background worker: runs the job queues (one apalis worker per job kind) and,
//! with the in-process vector engine, owns the vector directory and reports its health in
//! the process heartbeat.

pub mod consume;
pub mod context;
pub mod generate;
pub mod jobs;
pub mod retrieve;
pub mod tier_move;
pub mod vector_upkeep;

use consume::Consumption;
use context::{Ctx, JobContext};
use docket_platform::audit::Auditor;
use docket_platform::blobs::{BlobError, BlobStore};
use docket_platform::config::Config;
use docket_platform::db::{Db, DbError};
use docket_platform::heartbeat;
use docket_platform::jobs::JobQueue;
use docket_platform::redis_conn::{Redis, RedisError};
use docket_rag::batcher::Batcher;
use docket_rag::chunk::{ChunkError, ChunkSettings, Chunker};
use docket_rag::embed::{EmbedError, EmbedSettings, Embedder};
use docket_rag::vectors::{EdgeStore, QdrantServer, ServerConfig, VectorError, Vectors};
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The worker could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Vector store (e.g. another process owns the directory).
    #[error(transparent)]
    Vectors(#[from] VectorError),
    /// Object storage.
    #[error(transparent)]
    Blobs(#[from] BlobError),
    /// Redis URL.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The model's tokenizer is missing.
    #[error(transparent)]
    Model(#[from] ChunkError),
    /// The embedding model or runtime is missing.
    #[error(transparent)]
    Embedder(#[from] EmbedError),
    /// The PDF parser executable is missing.
    #[error(
        "the PDF parser {0} is missing: build it (`cargo build --workspace --bins`) or set DOCKET_PARSER_BIN"
    )]
    ParserMissing(String),
    /// The job consumption loop ended although no shutdown was asked for.
    #[error("the job queues stopped being consumed; exiting so that a supervisor restarts the worker")]
    ConsumptionStopped,
}

/// A started worker: owns the vector store until dropped.
#[derive(Debug)]
pub struct Worker {
    ctx: Ctx,
    redis: Redis,
    /// Present in the one process that owns the vector directory.
    vectors: Option<Vectors>,
}

/// Most chunks of concurrent bulk jobs embedded in one model call.
const BULK_BATCH_TEXTS: usize = 64;

/// Longest one job attempt may run before it is retried.
const JOB_TIMEOUT: Duration = Duration::from_secs(600);
/// Connections holding tenants' vector locks at once (each an index job or a move).
const LOCK_CONNECTIONS: u32 = 4;
/// How long the first heartbeat waits for the queues to connect (or fail to).
const FIRST_STATE_WAIT: Duration = Duration::from_secs(5);
/// How long shutdown waits for in-flight jobs before leaving them to be re-delivered.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(60);

impl Worker {
    /// Opens the stores and loads the tokenizer. Fails at once, with a clear message, if
    /// another process owns the vector directory or the model files are missing.
    pub async fn start(config: Config) -> Result<Self, WorkerError> {
        // Checked now, not at the first PDF: a missing parser would fail every document.
        if !config.ingest.parse.program.is_file() {
            return Err(WorkerError::ParserMissing(
                config.ingest.parse.program.display().to_string(),
            ));
        }
        let db = Db::connect_lazy(&config.database.app_url, config.database.max_connections)?;
        let vectors = match (&config.qdrant, config.owns_vectors) {
            (Some(q), _) => Some(Vectors::Server(QdrantServer::connect(&ServerConfig {
                url: q.url.clone(),
                api_key: q.api_key.as_ref().map(|k| k.expose().clone()),
                collection_prefix: q.collection_prefix.clone(),
                isolated: q
                    .isolated
                    .iter()
                    .map(|(t, (u, k))| (*t, (u.clone(), k.as_ref().map(|k| k.expose().clone()))))
                    .collect(),
            })?)),
            (None, true) => Some(Vectors::Edge(
                EdgeStore::open(&config.vector_dir, &config.worker_name).await?,
            )),
            (None, false) => None,
        };
        let settings = ChunkSettings {
            max_tokens: config.ingest.chunk_max_tokens,
            overlap: config.ingest.chunk_overlap,
        };
        let chunker = Chunker::new(&config.ingest.model_dir.join("tokenizer.json"), settings)?;
        let settings = EmbedSettings {
            model_dir: config.ingest.model_dir.clone(),
            library: config.ingest.ort_library.clone(),
            threads: config.ingest.embed_threads,
            batch: config.ingest.embed_batch,
        };
        let embedder = Embedder::load(&settings)?;
        let bulk_embedder = Batcher::spawn(Embedder::load(&settings)?, BULK_BATCH_TEXTS, "embed-bulk")?;
        let question_sessions = (0..config.ingest.question_sessions)
            .map(|_| Embedder::load_interactive(&settings))
            .collect::<Result<Vec<_>, _>>()?;
        let question_embedder =
            Batcher::spawn_pool(question_sessions, config.ingest.question_batch, "embed-questions")?;
        let redis = Redis::new(&config.redis.url, &config.redis.prefix)?;
        let ctx =
            Arc::new(JobContext {
                embedder,
                bulk_embedder,
                question_embedder,
                db,
                blobs: BlobStore::from_config(&config.objects)?,
                queue: JobQueue::new(redis.clone(), config.ingest.job_max_attempts),
                auditor: Auditor::new(config.master_key.clone()),
                chunker,
                vectors: vectors.clone(),
                tenant_locks: Default::default(),
                lock_pool: sqlx::postgres::PgPoolOptions::new()
                    .max_connections(LOCK_CONNECTIONS)
                    .connect_lazy(config.database.app_url.expose())
                    .map_err(DbError::from)?,
                job_timeout: JOB_TIMEOUT,
                interactive_running: Default::default(),
                interactive_ended_ms: Default::default(),
                stripe: config.billing.stripe.as_ref().map(|s| {
                    docket_platform::billing::stripe::Stripe::new(&s.api_base, s.secret_key.clone())
                }),
                llm: config.llm.clone().map(docket_platform::llm::Llm::new),
                config,
            });
        tracing::info!(worker = %ctx.config.worker_name, vector_dir = %ctx.config.vector_dir.display(), "worker started");
        Ok(Self { ctx, redis, vectors })
    }

    /// The shared job context (tests and tools run handlers' building blocks with it).
    pub fn context(&self) -> Ctx {
        self.ctx.clone()
    }

    /// The vector store, if this process owns it.
    pub fn vectors(&self) -> Option<Vectors> {
        self.vectors.clone()
    }

    /// Runs the job queues and heartbeats until `shutdown` resolves; then stops fetching,
    /// lets in-flight jobs finish (up to a grace period) and deregisters.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let upkeep = self.vectors.clone().map(|v| {
            let moves = tokio::spawn(tier_move::listen(self.ctx.clone(), v.clone(), stop_rx.clone()));
            (
                tokio::spawn(vector_upkeep::run(self.ctx.clone(), v, stop_rx.clone())),
                moves,
            )
        });
        let (state_tx, mut state) = tokio::sync::watch::channel(Consumption::Starting);
        let mut jobs = tokio::spawn(consume::run(
            self.ctx.clone(),
            self.redis.clone(),
            state_tx,
            stop_rx,
        ));
        // The first beat says whether the queues are consumed, not merely that we started.
        let first = tokio::time::timeout(FIRST_STATE_WAIT, state.wait_for(|s| *s != Consumption::Starting));
        drop(first.await);
        let mut tick = tokio::time::interval(self.ctx.config.heartbeat_interval);
        tokio::pin!(shutdown);
        let mut stopped = false;
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {
                    let now = *state.borrow();
                    self.beat(now).await
                }
                // A change is reported at once, not at the next tick.
                Ok(()) = state.changed() => {
                    let now = *state.borrow_and_update();
                    self.beat(now).await
                }
                _ = &mut jobs => {
                    // Only a shutdown ends the loop; anything else (a panic) is a dead worker.
                    tracing::error!("the job consumption loop ended without a shutdown");
                    self.beat(Consumption::Stopped).await;
                    stopped = true;
                    break;
                }
            }
        }
        let _ = stop_tx.send(true);
        if !stopped && tokio::time::timeout(SHUTDOWN_GRACE, &mut jobs).await.is_err() {
            tracing::warn!("in-flight jobs did not finish in time; they will be re-delivered");
        }
        if let Some((upkeep, moves)) = upkeep {
            upkeep.abort();
            // Let a move in progress finish its switch and purge; if it cannot, it resumes
            // (idempotently) at the next start.
            if tokio::time::timeout(SHUTDOWN_GRACE, moves).await.is_err() {
                tracing::warn!("a tier move did not finish before shutdown; it resumes at the next start");
            }
        }
        if stopped {
            // The heartbeat stays (saying "stopped") until it goes stale.
            return Err(WorkerError::ConsumptionStopped);
        }
        if let Err(e) = heartbeat::remove(&self.ctx.db, &self.ctx.config.worker_name).await {
            tracing::warn!(error = %e, "could not remove heartbeat on shutdown");
        }
        tracing::info!(worker = %self.ctx.config.worker_name, "worker stopped");
        Ok(())
    }

    async fn beat(&self, consumption: Consumption) {
        let mut components = match &self.vectors {
            Some(v) => {
                let violations = retrieve::ISOLATION_VIOLATIONS.load(std::sync::atomic::Ordering::Relaxed);
                match v.health().await {
                    Ok(_) => json!({"vector_store": "ok", "isolation_violations": violations}),
                    Err(e) => {
                        json!({"vector_store": format!("error: {e}"), "isolation_violations": violations})
                    }
                }
            }
            None => json!({}),
        };
        components["job_queues"] = json!(consumption.as_str());
        if let Err(e) =
            heartbeat::beat(&self.ctx.db, &self.ctx.config.worker_name, "worker", &components).await
        {
            tracing::warn!(error = %e, "heartbeat failed");
        }
    }
}
