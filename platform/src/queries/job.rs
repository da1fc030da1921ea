//! The `answer` job: its versioned envelope, its queue, and the record transitions the
//! worker makes (claim, store the result with its usage and the completion signal, fail).

use super::{Citation, DONE_CHANNEL};
use crate::db::{DbError, TenantTx};
use crate::ids::{QueryId, TenantId};
use crate::jobs::{JobQueue, QueueError};
use apalis_redis::Config;
use serde::{Deserialize, Serialize};

/// Current envelope version. Add fields only with `#[serde(default)]`.
pub const ANSWER_VERSION: u16 = 1;

/// What an `answer` job carries: the tenant (never optional) and the query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerJob {
    /// Envelope version.
    #[serde(default = "one")]
    pub v: u16,
    /// The tenant.
    pub tenant_id: TenantId,
    /// The query to answer.
    pub query_id: QueryId,
    /// The request that asked.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Who asked (`user:…`, `api_key:…`).
    #[serde(default)]
    pub actor: String,
}

fn one() -> u16 {
    1
}

/// The backend configuration producers and consumers of `answer` share.
pub fn config(queue: &JobQueue) -> Config {
    Config::default().queue(format!("{}queue:answer", queue.redis().prefix()))
}

/// Pushes an `answer` job (after the query's row is committed).
pub async fn push(queue: &JobQueue, job: &AnswerJob) -> Result<(), QueueError> {
    let id = crate::jobs::task_id("answer", job.query_id.as_uuid(), 0);
    queue.push_task(config(queue), job.clone(), id).await
}

/// What the worker needs to answer a claimed query.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    /// The question.
    pub question: String,
    /// Restriction to documents (empty: all).
    pub document_ids: Vec<uuid::Uuid>,
    /// How many chunks to retrieve.
    pub top_k_applied: i32,
    /// This attempt's number.
    pub attempts: i32,
    /// When it was asked (latency is measured from here).
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// How the question is to be answered.
    pub mode: super::AnswerMode,
    /// The tenant's display name (the generative prompt is bound to it).
    pub tenant_name: String,
    /// For a generative question: whether the plan includes `generative_answers` now.
    pub plan_generates: Option<bool>,
    /// For a generative question: whether the tenant consents to
    /// `external_llm_processing` now (its latest decision).
    pub llm_consent: Option<bool>,
}

impl Claimed {
    /// Whether the passages may go to a language model now: the API checked plan and
    /// consent when the question was asked, but a consent withdrawn (or a plan changed)
    /// while it waited in the queue applies to it too. `Err` carries the fallback code.
    pub fn generative_allowed(&self) -> Result<(), Withdrawn> {
        match (self.plan_generates, self.llm_consent) {
            (Some(true), Some(true)) => Ok(()),
            (Some(true), _) => Err(Withdrawn::Consent),
            _ => Err(Withdrawn::Feature),
        }
    }
}

/// What no longer allows a queued generative question to reach a language model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawn {
    /// The tenant withdrew its consent to `external_llm_processing`.
    Consent,
    /// The plan no longer includes `generative_answers`.
    Feature,
}

impl Withdrawn {
    /// The fallback code the answer carries.
    pub fn code(self) -> &'static str {
        match self {
            Self::Consent => "consent_withdrawn",
            Self::Feature => "feature_not_in_plan",
        }
    }

    /// Why, in a sentence's words.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Consent => {
                "the consent to external_llm_processing was withdrawn after the question was asked"
            }
            Self::Feature => "the plan no longer includes generative answers",
        }
    }
}

/// Claims the query for an attempt; `None` when it is already final (a replayed job does
/// nothing, so nothing is charged twice) or gone.
pub async fn claim(tx: &mut TenantTx, id: QueryId) -> Result<Option<Claimed>, DbError> {
    Ok(sqlx::query_as(
        "UPDATE queries SET status = 'running', attempts = attempts + 1
         WHERE id = $1 AND status IN ('queued', 'running')
         RETURNING question, document_ids, top_k_applied, attempts, created_at, mode,
                   (SELECT t.name FROM tenants t WHERE t.id = queries.tenant_id) AS tenant_name,
                   CASE WHEN mode = 'generative' THEN
                       (SELECT p.features ? 'generative_answers' FROM tenants t JOIN plans p ON p.id = t.plan_id
                        WHERE t.id = queries.tenant_id) END AS plan_generates,
                   CASE WHEN mode = 'generative' THEN
                       COALESCE((SELECT c.granted FROM consents c
                                 WHERE c.tenant_id = queries.tenant_id AND c.purpose = 'external_llm_processing'
                                 ORDER BY c.seq DESC LIMIT 1), false) END AS llm_consent",
    )
    .bind(id)
    .fetch_optional(tx.conn())
    .await?)
}

/// A finished answer.
#[derive(Debug, Clone)]
pub struct Finished {
    /// `answered` or `no_answer`.
    pub status: &'static str,
    /// Answer text or the no-answer message.
    pub answer: String,
    /// Filtered citations.
    pub citations: Vec<Citation>,
    /// The question's tokens.
    pub question_tokens: i32,
    /// The chunks retrieved, as (document, ordinal): their stored token counts are added to
    /// the question's in the database instead of tokenizing every passage again.
    pub retrieved: Vec<(uuid::Uuid, i32)>,
    /// Answer tokens.
    pub tokens_out: i32,
    /// Who asked (ledger actor).
    pub actor: String,
    /// What produced the answer.
    pub mode: super::ResultMode,
    /// Why a generative question was answered extractively.
    pub fallback_code: Option<&'static str>,
    /// Sentences about how the answer was made.
    pub notices: Vec<String>,
    /// The language model's prompt tokens (0 when none was asked).
    pub llm_tokens_in: i32,
    /// The language model's completion tokens.
    pub llm_tokens_out: i32,
    /// What the grounding filter kept and removed.
    pub grounding: Option<serde_json::Value>,
}

/// Stores the result, charges the ledger (idempotent by query id) and announces it; returns
/// the latency in ms. Only a query still `running` is finished. One statement: the update,
/// the ledger rows (retrieval tokens always; the language model's when it was asked) and
/// the announcement happen only if the update matched a row. The
/// announcement carries the id only: tenant data never travels on the shared channel, and
/// waiters read the result through row-level security.
pub async fn finish(tx: &mut TenantTx, id: QueryId, f: &Finished) -> Result<Option<i32>, DbError> {
    let tenant = tx.tenant_id();
    Ok(sqlx::query_scalar(
        "WITH retrieved AS (
             SELECT COALESCE(sum(c.token_count), 0)::int AS n
             FROM chunks c JOIN unnest($10::uuid[], $11::int[]) AS r (document_id, ordinal)
               ON c.document_id = r.document_id AND c.ordinal = r.ordinal),
         done AS (
             UPDATE queries SET status = $2, answer = $3, citations = $4,
                    tokens_in = $5 + (SELECT n FROM retrieved), tokens_out = $6,
                    finished_at = clock_timestamp(), error_code = NULL, error_message = NULL,
                    latency_ms = (extract(epoch FROM clock_timestamp() - created_at) * 1000)::int,
                    answer_mode = $12, fallback_code = $13, notices = $14 || notices,
                    llm_tokens_in = $15, llm_tokens_out = $16, grounding = $17
             WHERE id = $1 AND status = 'running'
             RETURNING latency_ms, tokens_in),
         charged AS (
             INSERT INTO usage_events (tenant_id, kind, quantity, actor, idempotency_key)
             SELECT $7, k.kind, k.quantity, $8, k.kind || ':' || $1::text
             FROM done, LATERAL (VALUES ('query_tokens_in', done.tokens_in::bigint), ('query_tokens_out', $6::bigint),
                                        ('llm_tokens_in', $15::bigint), ('llm_tokens_out', $16::bigint))
                 AS k (kind, quantity)
             WHERE k.kind LIKE 'query%' OR k.quantity > 0
             ON CONFLICT (tenant_id, idempotency_key) DO NOTHING),
         told AS (SELECT pg_notify($9, $1::text) FROM done)
         SELECT latency_ms FROM done, told",
    )
    .bind(id)
    .bind(f.status)
    .bind(&f.answer)
    .bind(sqlx::types::Json(&f.citations))
    .bind(f.question_tokens)
    .bind(f.tokens_out)
    .bind(tenant)
    .bind(&f.actor)
    .bind(DONE_CHANNEL)
    .bind(f.retrieved.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind(f.retrieved.iter().map(|r| r.1).collect::<Vec<_>>())
    .bind(f.mode)
    .bind(f.fallback_code)
    .bind(&f.notices)
    .bind(f.llm_tokens_in)
    .bind(f.llm_tokens_out)
    .bind(f.grounding.as_ref())
    .fetch_optional(tx.conn())
    .await?)
}

async fn announce(tx: &mut TenantTx, id: QueryId) -> Result<(), DbError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(DONE_CHANNEL)
        .bind(id.to_string())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Marks the query failed (and announces it, so waiters stop waiting).
pub async fn fail(tx: &mut TenantTx, id: QueryId, code: &str, message: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE queries SET status = 'failed', error_code = $2, error_message = $3, finished_at = clock_timestamp(),
                latency_ms = (extract(epoch FROM clock_timestamp() - created_at) * 1000)::int
         WHERE id = $1 AND status IN ('queued', 'running')",
    )
    .bind(id)
    .bind(code)
    .bind(message)
    .execute(tx.conn())
    .await?;
    announce(tx, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_old_ones_decode() {
        let j = AnswerJob {
            v: ANSWER_VERSION,
            tenant_id: TenantId::new_random(),
            query_id: QueryId::new_random(),
            request_id: Some("r".into()),
            actor: "user:x".into(),
        };
        let back: AnswerJob =
            serde_json::from_str(&serde_json::to_string(&j).expect("json")).expect("decodes");
        assert_eq!(back, j);
        let minimal = format!(r#"{{"tenant_id":"{}","query_id":"{}"}}"#, j.tenant_id, j.query_id);
        let old: AnswerJob = serde_json::from_str(&minimal).expect("decodes");
        assert_eq!((old.v, old.actor.as_str()), (1, ""));
    }
}
