//! The lexical half of hybrid retrieval: BM25 over the tenant's chunk lexemes in
//! PostgreSQL (`chunks.lexemes`, English stemming and stop words, GIN-indexed by tenant).
//!
//! Term weights are inverse document frequencies counted over **this tenant's** chunks
//! only, so one tenant's documents never shape another's ranking (a shared-corpus IDF would
//! leak which words a competitor's contracts use). Term frequency is counted as presence:
//! clauses are short, and a word repeated in one clause says little more than once.
//! Length normalisation is BM25's (k1 = 1.2, b = 0.75) over distinct lexemes.
//!
//! Every query runs in a tenant transaction (RLS) and names the tenant again in its
//! predicates; rows come back with their tenant so the caller re-checks them like dense
//! hits. Only chunks of `ready` documents are searched.

use crate::db::{DbError, TenantTx};

/// One lexical hit.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LexicalHit {
    /// Tenant of the row (re-checked by the caller).
    pub tenant_id: uuid::Uuid,
    /// Its document.
    pub document_id: uuid::Uuid,
    /// Chunk position.
    pub ordinal: i32,
    /// First page.
    pub page_start: i32,
    /// Last page.
    pub page_end: i32,
    /// Chunk text.
    pub text: String,
    /// BM25 score (only comparable within one question).
    pub score: f64,
}

/// Average distinct lexemes of a clause-sized chunk (BM25's average length; a constant, so
/// no question pays for a pass over the tenant's chunks to measure it).
const AVERAGE_LEXEMES: f64 = 60.0;

/// The `limit` best chunks of the tenant for `question` by BM25, within `documents` when
/// any are given.
pub async fn search(
    tx: &mut TenantTx,
    question: &str,
    documents: &[uuid::Uuid],
    limit: i64,
) -> Result<Vec<LexicalHit>, DbError> {
    let tenant = tx.tenant_id();
    // Lexemes are quoted for tsquery input (quotes doubled, backslashes escaped), so any
    // question, however odd its characters, is a valid query.
    let hits = sqlx::query_as::<_, LexicalHit>(
        r"WITH terms AS (
            SELECT lit, lit::tsquery AS tq FROM (
              SELECT DISTINCT '''' || replace(replace(u.lexeme, '\', '\\'), '''', '''''') || '''' AS lit
              FROM unnest(to_tsvector('english', $2)) AS u
            ) l
          ),
          total AS (SELECT count(*)::float8 AS n FROM chunks WHERE tenant_id = $1),
          weights AS (
            SELECT t.tq, ln(1 + (total.n - df.n + 0.5) / (df.n + 0.5)) AS idf
            FROM terms t CROSS JOIN total
            CROSS JOIN LATERAL (
              SELECT count(*)::float8 AS n FROM chunks c WHERE c.tenant_id = $1 AND c.lexemes @@ t.tq
            ) df
          ),
          q AS (SELECT string_agg(lit, ' | ')::tsquery AS any FROM terms)
        SELECT c.tenant_id, c.document_id, c.ordinal, c.page_start, c.page_end, c.text,
               (SELECT coalesce(sum(w.idf), 0) FROM weights w WHERE c.lexemes @@ w.tq)
                 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * length(c.lexemes) / $5)) AS score
        FROM chunks c CROSS JOIN q
        WHERE c.tenant_id = $1 AND c.lexemes @@ q.any
          AND (cardinality($3::uuid[]) = 0 OR c.document_id = ANY($3))
          AND EXISTS (SELECT 1 FROM documents d WHERE d.id = c.document_id AND d.tenant_id = $1 AND d.status = 'ready')
        ORDER BY score DESC, c.document_id, c.ordinal
        LIMIT $4",
    )
    .bind(tenant)
    .bind(question)
    .bind(documents)
    .bind(limit)
    .bind(AVERAGE_LEXEMES)
    .fetch_all(tx.conn())
    .await?;
    Ok(hits)
}
