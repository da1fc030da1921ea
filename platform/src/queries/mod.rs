//! Questions and their answers (`queries`, migration 0012): the record the API creates and
//! reports, the `answer` job that fills it, and the completion signal API processes wait on.

pub mod job;

use crate::db::{DbError, TenantTx};
use crate::ids::{DocumentId, QueryId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The PostgreSQL channel a finished query is announced on (payload: the query id). The
/// notification is sent in the transaction that stores the result, so a waiter woken by it
/// always reads the stored answer.
pub const DONE_CHANNEL: &str = "docket_query_done";

/// How a question asks to be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnswerMode {
    /// Quoted from the retrieved passages (no model beyond the embedder).
    #[default]
    Extractive,
    /// Written by a language model from the retrieved passages, then grounded.
    Generative,
}

impl AnswerMode {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Extractive => "extractive",
            Self::Generative => "generative",
        }
    }

    /// From the stored name.
    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "extractive" => Some(Self::Extractive),
            "generative" => Some(Self::Generative),
            _ => None,
        }
    }
}

/// What produced an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResultMode {
    /// Quoted clauses, as asked.
    Extractive,
    /// The language model's grounded answer.
    Generative,
    /// A generative question answered with quoted clauses instead: the model failed or
    /// declined, too little of what it wrote was grounded, a cited document vanished, or
    /// plan or consent changed meanwhile (`fallback_code` says which).
    ExtractiveFallback,
}

impl ResultMode {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Extractive => "extractive",
            Self::Generative => "generative",
            Self::ExtractiveFallback => "extractive_fallback",
        }
    }

    /// From the stored name.
    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "extractive" => Some(Self::Extractive),
            "generative" => Some(Self::Generative),
            "extractive_fallback" => Some(Self::ExtractiveFallback),
            _ => None,
        }
    }
}

/// Columns of these enums are `text` (with a CHECK of the names): read and bound as their
/// stored names, so rows and parameters carry the enum, never a string.
macro_rules! stored_as_text {
    ($($t:ty),*) => {$(
        impl sqlx::Type<sqlx::Postgres> for $t {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $t {
            fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
                <$t>::from_stored(s).ok_or_else(|| format!("unknown {} {s:?}", stringify!($t)).into())
            }
        }

        impl sqlx::Encode<'_, sqlx::Postgres> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Postgres>>::encode_by_ref(&self.as_str(), buf)
            }
        }
    )*};
}

stored_as_text!(AnswerMode, ResultMode);

/// One citation as stored and returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Citation {
    /// Cited document.
    pub document_id: DocumentId,
    /// Its file name.
    pub filename: String,
    /// Cited chunk.
    pub chunk_id: uuid::Uuid,
    /// First page of the chunk.
    pub page_start: u32,
    /// Last page of the chunk.
    pub page_end: u32,
    /// The exact quoted text.
    pub quote: String,
    /// How well the quote answers the question (0..1).
    pub score: f32,
}

/// A query as the API reports it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Query {
    /// Id.
    #[sqlx(rename = "id")]
    pub query_id: QueryId,
    /// `queued`, `running`, `answered`, `no_answer` or `failed`.
    pub status: String,
    /// The question.
    pub question: String,
    /// Documents the question was restricted to (empty: all).
    pub document_ids: Vec<uuid::Uuid>,
    /// The answer text (or the no-answer message).
    pub answer: Option<String>,
    /// Citations.
    #[sqlx(json)]
    pub citations: Vec<Citation>,
    /// The mode asked for: the request's, else the tenant's default when the plan, the
    /// consent and the deployment allow it, else `extractive` (stored as `mode`).
    #[serde(rename = "requested_mode")]
    pub mode: AnswerMode,
    /// What produced the answer (stored as `answer_mode`; `None` until it is answered, and
    /// for a failed question).
    #[serde(rename = "mode")]
    pub answer_mode: Option<ResultMode>,
    /// Why a generative question was answered extractively (`generator_unreachable`, …).
    pub fallback_code: Option<String>,
    /// Sentences about how the answer was made (each starts with its code).
    pub notices: Vec<String>,
    /// What the grounding filter kept and removed of a generated answer.
    pub grounding: Option<serde_json::Value>,
    /// Token usage.
    #[sqlx(skip)]
    pub usage: Option<Usage>,
    #[serde(skip)]
    tokens_in: Option<i32>,
    #[serde(skip)]
    tokens_out: Option<i32>,
    #[serde(skip)]
    llm_tokens_in: Option<i32>,
    #[serde(skip)]
    llm_tokens_out: Option<i32>,
    /// Time from asking to the stored answer.
    pub latency_ms: Option<i32>,
    /// `top_k` used for retrieval.
    pub top_k_applied: i32,
    /// Whether the requested `top_k` was lowered to the plan's maximum.
    pub top_k_clamped: bool,
    /// Failure code, if failed.
    pub error_code: Option<String>,
    /// Who asked (a user), if a user asked.
    pub asked_by: Option<UserId>,
    /// When asked.
    pub created_at: DateTime<Utc>,
    /// When finished.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Tokens a query counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = QueryUsage)]
pub struct Usage {
    /// Question plus retrieved passages.
    pub tokens_in: i32,
    /// The answer.
    pub tokens_out: i32,
    /// What the language model read (its own count; 0 when no model was asked).
    pub llm_tokens_in: i32,
    /// What the language model wrote (its own count).
    pub llm_tokens_out: i32,
}

impl Query {
    fn finish_usage(mut self) -> Self {
        if let (Some(i), Some(o)) = (self.tokens_in, self.tokens_out) {
            self.usage = Some(Usage {
                tokens_in: i,
                tokens_out: o,
                llm_tokens_in: self.llm_tokens_in.unwrap_or(0),
                llm_tokens_out: self.llm_tokens_out.unwrap_or(0),
            });
        }
        self
    }

    /// Whether the query has reached a final state.
    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "answered" | "no_answer" | "failed")
    }
}

const COLS: &str = "id, status, question, document_ids, answer, citations, tokens_in, tokens_out, latency_ms,
                    top_k_applied, top_k_clamped, error_code, asked_by, created_at, finished_at,
                    mode, answer_mode, fallback_code, notices, grounding, llm_tokens_in, llm_tokens_out";

/// What the API records when a question is accepted.
#[derive(Debug, Clone)]
pub struct NewQuery<'a> {
    /// Id (also the job's idempotency key).
    pub id: QueryId,
    /// The user asking, if a user.
    pub asked_by: Option<UserId>,
    /// `user:…` or `api_key:…`.
    pub actor: &'a str,
    /// The question.
    pub question: &'a str,
    /// Restriction to documents (empty: all).
    pub document_ids: &'a [DocumentId],
    /// `top_k` after the plan's maximum.
    pub top_k: u32,
    /// Whether it was lowered.
    pub clamped: bool,
    /// How it is to be answered.
    pub mode: AnswerMode,
    /// Notices of the request (a lowered `top_k`, an unavailable default mode), kept with
    /// the answer.
    pub notices: &'a [String],
    /// Safety flags raised by the question.
    pub flags: &'a [&'a str],
    /// Request id.
    pub request_id: Option<&'a str>,
}

/// Records a new query (status `queued`).
pub async fn insert(tx: &mut TenantTx, q: &NewQuery<'_>) -> Result<(), DbError> {
    let tenant = tx.tenant_id();
    let docs: Vec<uuid::Uuid> = q.document_ids.iter().map(|d| d.as_uuid()).collect();
    let flags: Vec<&str> = q.flags.to_vec();
    sqlx::query(
        "INSERT INTO queries (id, tenant_id, asked_by, actor, question, document_ids, top_k_applied, top_k_clamped, flags, request_id, mode, notices)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(q.id)
    .bind(tenant)
    .bind(q.asked_by)
    .bind(q.actor)
    .bind(q.question)
    .bind(&docs)
    .bind(q.top_k as i32)
    .bind(q.clamped)
    .bind(&flags)
    .bind(q.request_id)
    .bind(q.mode)
    .bind(q.notices)
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// One query of the tenant; with `only_actor`, only if that principal asked it.
pub async fn get(tx: &mut TenantTx, id: QueryId, only_actor: Option<&str>) -> Result<Option<Query>, DbError> {
    let sql = format!("SELECT {COLS} FROM queries WHERE id = $1 AND ($2::text IS NULL OR actor = $2)");
    let q: Option<Query> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(only_actor)
        .fetch_optional(tx.conn())
        .await?;
    Ok(q.map(Query::finish_usage))
}

/// A page of the tenant's queries, newest first, after the cursor `(created_at, id)`;
/// with `only_actor`, only that principal's.
pub async fn list(
    tx: &mut TenantTx,
    only_actor: Option<&str>,
    after: Option<(DateTime<Utc>, QueryId)>,
    limit: i64,
) -> Result<Vec<Query>, DbError> {
    let sql = format!(
        "SELECT {COLS} FROM queries
         WHERE ($1::text IS NULL OR actor = $1)
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4"
    );
    let rows: Vec<Query> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(only_actor)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit)
        .fetch_all(tx.conn())
        .await?;
    Ok(rows.into_iter().map(Query::finish_usage).collect())
}

/// Every `fallback_code` an answer can carry (`/metrics` reports each, 0 included).
pub const FALLBACK_CODES: &[&str] = &[
    "generator_unreachable",
    "generator_timeout",
    "generator_unauthorized",
    "generator_rate_limited",
    "generator_context_too_long",
    "generator_error",
    "generator_bad_response",
    "generator_busy",
    "generator_declined",
    "generator_not_configured",
    "grounding_insufficient",
    "citation_withdrawn",
    "consent_withdrawn",
    "feature_not_in_plan",
];

/// Answers that fell back from generative to extractive, by code, over every tenant (the
/// control role; `/metrics`).
pub async fn fallbacks_by_code(control: &crate::db::ControlDb) -> Result<Vec<(String, i64)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT fallback_code, count(*) FROM queries WHERE fallback_code IS NOT NULL GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(control.pool())
    .await?)
}
