//! Pushing jobs onto their apalis-redis queues.

use super::{ENVELOPE_VERSION, JobEnvelope, JobKind, Lane, record};
use crate::db::{DbError, TenantTx};
use crate::ids::DocumentId;
use crate::redis_conn::{Redis, RedisError};
use apalis::prelude::{TaskBuilder, TaskId, TaskSink};
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

    /// The queue name of a kind in a lane (the interactive lane keeps the names queues had
    /// before lanes existed, so jobs queued by an older build are still consumed).
    pub fn queue_name(&self, kind: JobKind, lane: Lane) -> String {
        match lane {
            Lane::Interactive => format!("{}queue:{}", self.redis.prefix(), kind.as_str()),
            Lane::Bulk => format!("{}queue:{}:bulk", self.redis.prefix(), kind.as_str()),
        }
    }

    /// The backend configuration every producer and consumer of `kind` in `lane` shares.
    pub fn config(&self, kind: JobKind, lane: Lane) -> Config {
        Config::default().queue(self.queue_name(kind, lane))
    }

    /// The Redis handle.
    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// Records the job (inside the caller's tenant transaction) and returns its envelope.
    /// Push it with [`JobQueue::push`] after the transaction commits, so a worker never
    /// sees a job whose row is not visible yet.
    #[allow(clippy::too_many_arguments)]
    pub async fn prepare(
        &self,
        tx: &mut TenantTx,
        lane: Lane,
        kind: JobKind,
        document: DocumentId,
        request_id: Option<String>,
        actor: &str,
    ) -> Result<JobEnvelope, DbError> {
        let (job_id, generation) = record::enqueue_row(
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
            lane,
            reindex: false,
            generation,
        })
    }

    /// Records the next stage of `env`'s document, in the same lane, for the same request.
    pub async fn prepare_next(
        &self,
        tx: &mut TenantTx,
        env: &JobEnvelope,
        kind: JobKind,
    ) -> Result<JobEnvelope, DbError> {
        let (request, actor) = (env.request_id.clone(), env.actor.as_str());
        let next = self
            .prepare(tx, env.lane, kind, env.document_id, request, actor)
            .await?;
        Ok(JobEnvelope {
            reindex: env.reindex,
            ..next
        })
    }

    /// Pushes a prepared job onto its kind's queue, under its derived task id.
    pub async fn push(&self, env: &JobEnvelope) -> Result<(), QueueError> {
        let id = super::task_id(env.kind.as_str(), env.job_id.as_uuid(), env.generation);
        self.push_task(self.config(env.kind, env.lane), env.clone(), id)
            .await
    }

    /// Pushes any job payload onto the queue `config` names under task id `id` (the stage
    /// envelopes above, and the `answer` and `import` jobs with envelopes of their own). A
    /// task id the queue already holds is not pushed again.
    pub async fn push_task<T>(&self, config: Config, task: T, id: TaskId) -> Result<(), QueueError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + Unpin + 'static,
    {
        let conn = self.redis.conn().await?;
        let mut storage = RedisStorage::<T>::new(conn).with_config(config);
        storage
            .push_task(TaskBuilder::new(task).task_id(id).build())
            .await
            .map_err(|e| QueueError::Push(e.to_string()))
    }

    /// Whether the queue `config` names still holds task `id` (queued, scheduled for a
    /// retry, in flight, or finished and not yet vacuumed): what the reaper asks before it
    /// pushes a job again.
    pub async fn holds(&self, config: &Config, id: &TaskId) -> Result<bool, QueueError> {
        let mut conn = self.redis.conn().await?;
        redis::cmd("HEXISTS")
            .arg(config.job_data_hash())
            .arg(id.to_string())
            .query_async(&mut conn)
            .await
            .map_err(|e| QueueError::Push(e.to_string()))
    }

    /// How many tasks of the queue `config` names are due or waiting for a retry: what a
    /// producer of many jobs keeps bounded (apalis-redis fails past ~8,000 due tasks).
    pub async fn depth(&self, config: &Config) -> Result<u64, QueueError> {
        let mut conn = self.redis.conn().await?;
        let (active, scheduled): (u64, u64) = redis::pipe()
            .cmd("LLEN")
            .arg(config.active_jobs_list())
            .cmd("ZCARD")
            .arg(config.scheduled_jobs_set())
            .query_async(&mut conn)
            .await
            .map_err(|e| QueueError::Push(e.to_string()))?;
        Ok(active + scheduled)
    }
}
