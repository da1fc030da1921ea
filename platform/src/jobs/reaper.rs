//! The reaper: work whose queue entry vanished is found from PostgreSQL and pushed again.
//!
//! Redis is only the queue (and may restart without persistence); the job rows, questions
//! and imports in PostgreSQL say what is still owed. A round (one scheduler at a time: an
//! advisory lock) looks at what has been `queued` or `running` past its deadline and asks
//! the queue whether it still holds the task ([`JobQueue::holds`], by the derived task id
//! every push uses). If it does, the work is merely slow and its row is marked as checked;
//! if not, it is pushed again under the same task id — a no-op should the original come
//! back — or, once the attempts or re-pushes are spent, failed with a sentence that says
//! what to do. Nothing runs twice: a job is only ever in the queue under one id, and the
//! guard around every handler refuses a job its row says is finished.

use super::{ENVELOPE_VERSION, JobEnvelope, JobKind, JobQueue, Lane, QueueError, record, task_id};
use crate::db::{ControlDb, Db, DbError};
use crate::ids::{DocumentId, ImportId, JobId, QueryId, TenantId};
use std::time::Duration;

/// When work counts as lost, and how often it is pushed again.
#[derive(Debug, Clone)]
pub struct ReaperSettings {
    /// Pause between rounds.
    pub interval: Duration,
    /// A stage job (or an unpacking import) `queued` this long without a queue entry.
    pub queued_after: Duration,
    /// A stage job `running` this long (beyond any attempt's timeout) without one.
    pub running_after: Duration,
    /// A question unfinished this long (its attempts time out after a minute each).
    pub question_after: Duration,
    /// Re-pushes of one lost job before it is failed.
    pub max_repushes: i32,
}

impl Default for ReaperSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15),
            queued_after: Duration::from_secs(120),
            // The worker's attempt timeout is 600 s: a live worker is done or dead by then.
            running_after: Duration::from_secs(900),
            question_after: Duration::from_secs(300),
            max_repushes: 3,
        }
    }
}

/// A round failed (the next one starts over from the database).
#[derive(Debug, thiserror::Error)]
pub enum ReapError {
    /// Database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Redis.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<sqlx::Error> for ReapError {
    fn from(e: sqlx::Error) -> Self {
        ReapError::Db(e.into())
    }
}

/// What a round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Lost entries pushed again.
    pub repushed: usize,
    /// Lost work given up (failed with `job_lost`, `answer_lost` or `import_lost`).
    pub failed: usize,
    /// Overdue work the queue still held (slow, not lost).
    pub alive: usize,
    /// Another scheduler holds the lock.
    pub skipped: bool,
}

/// Rows looked at per round and kind, oldest first.
const BATCH: i64 = 500;

/// One round; see the module documentation.
pub async fn round(
    control: &ControlDb,
    db: &Db,
    queue: &JobQueue,
    s: &ReaperSettings,
) -> Result<Reaped, ReapError> {
    let mut lock = control.pool().begin().await?;
    let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext('docket:reaper'))")
        .fetch_one(&mut *lock)
        .await?;
    if !leader {
        return Ok(Reaped {
            skipped: true,
            ..Default::default()
        });
    }
    let mut done = Reaped::default();
    stage_jobs(control, db, queue, s, &mut done).await?;
    questions(control, db, queue, s, &mut done).await?;
    imports(control, db, queue, s, &mut done).await?;
    lock.commit().await?;
    Ok(done)
}

#[derive(sqlx::FromRow)]
struct OverdueJob {
    tenant_id: TenantId,
    id: JobId,
    kind: String,
    status: String,
    target_id: DocumentId,
    request_id: Option<String>,
    actor: Option<String>,
    generation: i32,
    attempts: i32,
    max_attempts: i32,
    repushes: i32,
    document_status: String,
    imported: bool,
}

fn kind_of(s: &str) -> Option<JobKind> {
    [JobKind::Parse, JobKind::Chunk, JobKind::Embed, JobKind::Index]
        .into_iter()
        .find(|k| k.as_str() == s)
}

async fn stage_jobs(
    control: &ControlDb,
    db: &Db,
    queue: &JobQueue,
    s: &ReaperSettings,
    done: &mut Reaped,
) -> Result<(), ReapError> {
    let rows: Vec<OverdueJob> = sqlx::query_as(
        "SELECT j.tenant_id, j.id, j.kind, j.status, j.target_id, j.request_id, j.actor, j.generation, j.attempts,
                j.max_attempts, j.repushes, d.status AS document_status, d.feed_state IS NOT NULL AS imported
         FROM jobs j JOIN documents d ON d.id = j.target_id AND d.tenant_id = j.tenant_id
         WHERE j.status IN ('queued', 'running') AND j.kind IN ('parse', 'chunk', 'embed', 'index')
           AND d.status IN ('queued', 'processing', 'ready')
           AND j.updated_at < now() - make_interval(secs => CASE WHEN j.status = 'queued' THEN $1 ELSE $2 END)
         ORDER BY j.updated_at LIMIT $3",
    )
    .bind(s.queued_after.as_secs_f64())
    .bind(s.running_after.as_secs_f64())
    .bind(BATCH)
    .fetch_all(control.pool())
    .await?;
    for r in rows {
        let Some(kind) = kind_of(&r.kind) else { continue };
        // A queued job on a ready document is a re-index (it runs in the bulk lane and
        // leaves the document as it is if it fails); imported documents travel in bulk too.
        let reindex = r.document_status == "ready";
        let lane = if reindex || r.imported {
            Lane::Bulk
        } else {
            Lane::Interactive
        };
        let id = task_id(kind.as_str(), r.id.as_uuid(), r.generation);
        let mut tx = db.begin_tenant(r.tenant_id).await?;
        if queue.holds(&queue.config(kind, lane), &id).await? {
            // A queued job waiting its turn is marked checked; a running one is left alone
            // (its `updated_at` is what the stalled-job figures measure).
            if r.status == "queued" {
                touch(&mut tx, "jobs", r.id.as_uuid()).await?;
            }
            tx.commit().await?;
            done.alive += 1;
            continue;
        }
        if r.attempts >= r.max_attempts || r.repushes >= s.max_repushes {
            let msg = format!(
                "the {} job was lost from the queue {} times and was given up; retry the document",
                kind.as_str(),
                r.repushes + 1
            );
            if !reindex {
                crate::documents::fail(&mut tx, r.target_id, "job_lost", &msg).await?;
            }
            record::fail(&mut tx, r.id, "job_lost", &msg, true).await?;
            tx.commit().await?;
            tracing::warn!(job = %r.id, kind = kind.as_str(), "lost job given up");
            done.failed += 1;
            continue;
        }
        sqlx::query("UPDATE jobs SET repushes = repushes + 1, updated_at = now() WHERE id = $1")
            .bind(r.id)
            .execute(tx.conn())
            .await
            .map_err(DbError::from)?;
        tx.commit().await?;
        let env = JobEnvelope {
            v: ENVELOPE_VERSION,
            tenant_id: r.tenant_id,
            job_id: r.id,
            document_id: r.target_id,
            request_id: r.request_id,
            actor: r.actor.unwrap_or_else(|| "system".into()),
            kind,
            lane,
            reindex,
            generation: r.generation,
        };
        queue.push(&env).await?;
        tracing::warn!(job = %r.id, kind = kind.as_str(), "lost job pushed again");
        done.repushed += 1;
    }
    Ok(())
}

/// Marks overdue work the queue still holds as checked (so the next round looks further).
async fn touch(tx: &mut crate::db::TenantTx, table: &str, id: uuid::Uuid) -> Result<(), DbError> {
    let sql = format!("UPDATE {table} SET updated_at = now() WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct OverdueQuestion {
    tenant_id: TenantId,
    id: QueryId,
    request_id: Option<String>,
    actor: String,
    repushes: i32,
}

async fn questions(
    control: &ControlDb,
    db: &Db,
    queue: &JobQueue,
    s: &ReaperSettings,
    done: &mut Reaped,
) -> Result<(), ReapError> {
    let rows: Vec<OverdueQuestion> = sqlx::query_as(
        "SELECT tenant_id, id, request_id, actor, repushes FROM queries
         WHERE status IN ('queued', 'running') AND created_at < now() - make_interval(secs => $1)
         ORDER BY created_at LIMIT $2",
    )
    .bind(s.question_after.as_secs_f64())
    .bind(BATCH)
    .fetch_all(control.pool())
    .await?;
    let config = crate::queries::job::config(queue);
    for r in rows {
        if queue
            .holds(&config, &task_id("answer", r.id.as_uuid(), 0))
            .await?
        {
            done.alive += 1;
            continue;
        }
        let mut tx = db.begin_tenant(r.tenant_id).await?;
        if r.repushes >= s.max_repushes {
            crate::queries::job::fail(
                &mut tx,
                r.id,
                "answer_lost",
                "the question was lost from the queue and could not be answered; please ask again",
            )
            .await?;
            tx.commit().await?;
            done.failed += 1;
            continue;
        }
        sqlx::query("UPDATE queries SET repushes = repushes + 1 WHERE id = $1")
            .bind(r.id)
            .execute(tx.conn())
            .await
            .map_err(DbError::from)?;
        tx.commit().await?;
        let job = crate::queries::job::AnswerJob {
            v: crate::queries::job::ANSWER_VERSION,
            tenant_id: r.tenant_id,
            query_id: r.id,
            request_id: r.request_id,
            actor: r.actor,
        };
        crate::queries::job::push(queue, &job).await?;
        tracing::warn!(query = %r.id, "lost question pushed again");
        done.repushed += 1;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct OverdueImport {
    tenant_id: TenantId,
    id: ImportId,
    repushes: i32,
}

async fn imports(
    control: &ControlDb,
    db: &Db,
    queue: &JobQueue,
    s: &ReaperSettings,
    done: &mut Reaped,
) -> Result<(), ReapError> {
    let rows: Vec<OverdueImport> = sqlx::query_as(
        "SELECT tenant_id, id, repushes FROM imports
         WHERE status = 'unpacking' AND updated_at < now() - make_interval(secs => $1)
         ORDER BY updated_at LIMIT $2",
    )
    .bind(s.queued_after.as_secs_f64())
    .bind(BATCH)
    .fetch_all(control.pool())
    .await?;
    let config = crate::imports::job::config(queue);
    for r in rows {
        let mut tx = db.begin_tenant(r.tenant_id).await?;
        if queue
            .holds(&config, &task_id("import", r.id.as_uuid(), 0))
            .await?
        {
            touch(&mut tx, "imports", r.id.as_uuid()).await?;
            tx.commit().await?;
            done.alive += 1;
            continue;
        }
        if r.repushes >= s.max_repushes {
            let msg = "the import was lost from the queue and could not be resumed; start it again";
            crate::imports::fail(&mut tx, r.id, "import_lost", msg).await?;
            tx.commit().await?;
            done.failed += 1;
            continue;
        }
        sqlx::query("UPDATE imports SET repushes = repushes + 1, updated_at = now() WHERE id = $1")
            .bind(r.id)
            .execute(tx.conn())
            .await
            .map_err(DbError::from)?;
        tx.commit().await?;
        let job = crate::imports::job::ImportJob {
            v: crate::imports::job::IMPORT_VERSION,
            tenant_id: r.tenant_id,
            import_id: r.id,
        };
        crate::imports::job::push(queue, &job).await?;
        tracing::warn!(import = %r.id, "lost import pushed again");
        done.repushed += 1;
    }
    Ok(())
}

/// Runs rounds until `stop` resolves. Errors are logged and the next round starts over.
pub async fn run(
    control: ControlDb,
    db: Db,
    queue: JobQueue,
    settings: ReaperSettings,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                match round(&control, &db, &queue, &settings).await {
                    Ok(r) if r.repushed + r.failed > 0 => {
                        tracing::info!(repushed = r.repushed, failed = r.failed, alive = r.alive, "reaper round");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "reaper round failed; retrying"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_are_stable_per_job_and_generation() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(task_id("parse", id, 0), task_id("parse", id, 0));
        assert_ne!(task_id("parse", id, 0), task_id("parse", id, 1));
        assert_ne!(task_id("parse", id, 0), task_id("chunk", id, 0));
    }

    #[test]
    fn every_stage_kind_is_known() {
        for k in [JobKind::Parse, JobKind::Chunk, JobKind::Embed, JobKind::Index] {
            assert_eq!(kind_of(k.as_str()), Some(k));
        }
        assert_eq!(kind_of("answer"), None);
    }
}
