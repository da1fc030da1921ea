//! Pushing jobs onto their apalis-redis queues.

use super::{ENVELOPE_VERSION, JobEnvelope, JobKind, record};
use crate::db::{DbError, TenantTx};
use crate::ids::DocumentId;
use crate::redis_conn::{Redis, RedisError};
use apalis::prelude::TaskSink;
use apalis_redis::{Config, RedisStorage};

/// Pushing a job failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis unreachable.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The backend refused the push.
    #[error("could not push the job: {0}")]
    Push(String),
    /// Recording the job failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The job queues of this deployment (queue names carry the Redis prefix).
#[derive(Debug, Clone)]
pub struct JobQueue {
    redis: Redis,
    max_attempts: i32,
}

impl JobQueue {
    /// Queues on `redis`; jobs get `max_attempts` attempts (crashes included).
    pub fn new(redis: Redis, max_attempts: u32) -> Self {
        Self {
            redis,
            max_attempts: max_attempts as i32,
        }
    }

    /// The queue name of a kind.
    pub fn queue_name(&self, kind: JobKind) -> String {
        format!("{}queue:{}", self.redis.prefix(), kind.as_str())
    }

    /// The backend configuration every producer and consumer of `kind` shares.
    pub fn config(&self, kind: JobKind) -> Config {
        Config::default().queue(self.queue_name(kind))
    }

    /// The Redis handle.
    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// Records the job (inside the caller's tenant transaction) and returns its envelope.
    /// Push it with [`JobQueue::push`] after the transaction commits, so a worker never
    /// sees a job whose row is not visible yet.
    pub async fn prepare(
        &self,
        tx: &mut TenantTx,
        kind: JobKind,
        document: DocumentId,
        request_id: Option<String>,
        actor: &str,
    ) -> Result<JobEnvelope, DbError> {
        let job_id = record::enqueue_row(
            tx,
            kind.as_str(),
            document,
            request_id.as_deref(),
            actor,
            self.max_attempts,
        )
        .await?;
        Ok(JobEnvelope {
            v: ENVELOPE_VERSION,
            tenant_id: tx.tenant_id(),
            job_id,
            document_id: document,
            request_id,
            actor: actor.to_owned(),
            kind,
        })
    }

    /// Pushes a prepared job onto its kind's queue.
    pub async fn push(&self, env: &JobEnvelope) -> Result<(), QueueError> {
        let conn = self.redis.conn().await?;
        let mut storage = RedisStorage::<JobEnvelope>::new(conn).with_config(self.config(env.kind));
        storage
            .push(env.clone())
            .await
            .map_err(|e| QueueError::Push(e.to_string()))
    }
}
