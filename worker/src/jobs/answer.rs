//! `answer`: embed the question, retrieve (dense search of the tenant's placement fused
//! with its lexical search; tenant filter always, the query's documents if any), choose
//! the clauses to quote by meaning (`docket_rag::answer::select`), filter the citations (each must be one
//! of the retrieved chunks, of a document this tenant can see, inside the query's document
//! filter; anything else is dropped and audited as an isolation violation), then store the
//! result, charge the ledger by query id and announce completion, in one transaction. A
//! generative question goes through [`crate::generate`] with the tenant's own passages only
//! (a hit naming another tenant is dropped before any answerer sees it).

use crate::context::{Ctx, JobContext};
use crate::retrieve::{self, report_violations};
use apalis::prelude::{AbortError, Attempt, BoxDynError, Data};
use docket_platform::audit::{Actor, Event, Outcome};
use docket_platform::ids::DocumentId;
use docket_platform::placement;
use docket_platform::queries::job::{self, AnswerJob, Finished};
use docket_platform::queries::{AnswerMode, Citation, ResultMode};
use docket_rag::answer::select::Selecting;
use docket_rag::answer::{Answer, Answerer, NO_ANSWER, quoted};
use std::collections::HashMap;
use std::time::Duration;

/// Attempts before a query is failed.
const MAX_ATTEMPTS: i32 = 3;
/// Longest one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Time an attempt keeps after the language model's deadline to fall back and store the
/// answer.
const STORE_MARGIN: Duration = Duration::from_secs(5);

/// The apalis handler.
pub async fn handle(job: AnswerJob, ctx: Data<Ctx>, delivery: Attempt) -> Result<(), BoxDynError> {
    let ctx: Ctx = (*ctx).clone();
    let deadline = tokio::time::Instant::now() + ATTEMPT_TIMEOUT;
    let outcome = match tokio::time::timeout_at(deadline, run(&ctx, &job, deadline)).await {
        Ok(r) => r,
        Err(_) => Err("the attempt timed out".to_owned()),
    };
    match outcome {
        Ok(()) => Ok(()),
        // Every failure is worth a retry (database, queue, model); the attempt cap ends it.
        Err(m) => {
            tracing::warn!(query = %job.query_id, error = %m, "answer attempt failed");
            let attempts = attempts(&ctx, &job, &delivery).await;
            if attempts >= MAX_ATTEMPTS {
                fail(
                    &ctx,
                    &job,
                    "answer_failed",
                    "the question could not be answered; please retry",
                )
                .await?;
                return Err(AbortError::new(m).into());
            }
            tokio::time::sleep(Duration::from_millis(200 * attempts as u64)).await;
            Err(m.into())
        }
    }
}

fn transient(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Attempts made so far: the row's count (which includes attempts whose worker died), or,
/// when the database cannot be read, the queue's own count of this delivery — never 0,
/// which would retry a question forever while PostgreSQL is down.
async fn attempts(ctx: &JobContext, job: &AnswerJob, delivery: &Attempt) -> i32 {
    let read = async {
        let mut tx = ctx.db.begin_tenant(job.tenant_id).await?;
        let n: Option<i32> = sqlx::query_scalar("SELECT attempts FROM queries WHERE id = $1")
            .bind(job.query_id)
            .fetch_optional(tx.conn())
            .await?;
        tx.commit().await?;
        Ok::<_, docket_platform::db::DbError>(n.unwrap_or(MAX_ATTEMPTS))
    };
    let queue_count = (delivery.current() as i32).max(1);
    match read.await {
        Ok(n) => n.max(queue_count),
        Err(e) => {
            tracing::warn!(error = %e, query = %job.query_id, "attempts unreadable; counting the queue's deliveries");
            queue_count
        }
    }
}

async fn fail(ctx: &JobContext, job: &AnswerJob, code: &str, message: &str) -> Result<(), BoxDynError> {
    let mut tx = ctx.db.begin_tenant(job.tenant_id).await?;
    job::fail(&mut tx, job.query_id, code, message).await?;
    let ev = Event::new("queries.answer", Outcome::Failed, actor(job))
        .target(format!("query:{}", job.query_id))
        .reason(code);
    ctx.auditor.tenant(&mut tx, ev).await?;
    tx.commit().await?;
    Ok(())
}

fn actor(job: &AnswerJob) -> Actor {
    Actor::parse_label(&job.actor).unwrap_or(Actor::System)
}

async fn run(ctx: &Ctx, job: &AnswerJob, attempt_deadline: tokio::time::Instant) -> Result<(), String> {
    let t = job.tenant_id;
    // Claim and read where to search in one transaction: every round trip here is paid by
    // every question. A claim lost in a database crash is simply made again on redelivery,
    // so its commit need not wait for the disk.
    let mut tx = ctx.db.begin_tenant_redoable(t).await.map_err(transient)?;
    let claimed = job::claim(&mut tx, job.query_id).await.map_err(transient)?;
    // Already answered (a replayed job) or gone: nothing to do, nothing to charge.
    let Some(q) = claimed else {
        tx.commit().await.map_err(transient)?;
        return Ok(());
    };
    let place = placement::read(&mut tx).await.map_err(transient)?;
    tx.commit().await.map_err(transient)?;

    // Batched with the other questions in flight (one model call for all of them).
    let vector = ctx
        .question_embedder
        .embed(vec![q.question.clone()])
        .await
        .map_err(transient)?
        .pop()
        .ok_or_else(|| transient("the model returned no vector"))?;
    let store = ctx
        .vectors
        .as_ref()
        .ok_or_else(|| transient("this worker has no vector store"))?;
    let limit = q.top_k_applied.max(1) as usize;
    let filter: Vec<DocumentId> = q.document_ids.iter().map(|d| DocumentId(*d)).collect();
    let found = retrieve::hybrid(
        ctx,
        store,
        t,
        place.current,
        &q.question,
        vector,
        retrieve::POOL.max(limit),
        &filter,
    )
    .await
    .map_err(transient)?;
    // The selection model ranks the fused pool; the best `top_k` are what was retrieved.
    let selecting = Selecting::default();
    let (ranked, ranked_hits) = retrieve::best_passages(&selecting, found, limit);
    // Another tenant's hit (a search that ignored its filter) never reaches an answerer,
    // least of all a language model: dropped here and audited below.
    let (mut passages, mut hits, mut violations) = (Vec::new(), Vec::new(), Vec::new());
    for (p, h) in ranked.into_iter().zip(ranked_hits) {
        if h.tenant == t.as_uuid() {
            passages.push(p);
            hits.push(h);
        } else {
            violations.push(h);
        }
    }
    let extractive = selecting.answer(&q.question, &passages);
    let generation = match q.mode {
        AnswerMode::Extractive => None,
        AnswerMode::Generative => {
            let req = crate::generate::Request {
                llm: ctx.llm.as_ref(),
                tenant_name: &q.tenant_name,
                question: &q.question,
                allowed: q.generative_allowed(),
                // Time left in this attempt to fall back and store the answer.
                by: attempt_deadline - STORE_MARGIN,
            };
            let count = |s: &str| ctx.chunker.count_tokens(s);
            Some(crate::generate::generate(req, &passages, extractive.clone(), count).await)
        }
    };
    let answer = generation.as_ref().map_or(extractive, |g| g.answer.clone());
    let mut mode = generation.as_ref().map_or(ResultMode::Extractive, |g| g.mode);
    let mut fallback_code = generation.as_ref().and_then(|g| g.fallback_code);
    let mut notices = generation.as_ref().map(|g| g.notices.clone()).unwrap_or_default();

    // Opened only now: no pooled connection is held while the answer is worked out. One
    // transaction for the filenames, the result, the ledger, the audit event and the
    // announcement.
    let mut tx = ctx.db.begin_tenant(t).await.map_err(transient)?;
    let doc_ids: Vec<uuid::Uuid> = passages.iter().map(|p| p.document_id).collect();
    // Filenames through RLS: a document this tenant cannot see has no row here. Locked
    // (shared) until the answer is written: a deletion marks the document first, so either
    // it is seen here as no longer ready, or its sweep runs after this answer exists and
    // erases it.
    let names: HashMap<uuid::Uuid, (String, bool)> = sqlx::query_as::<_, (uuid::Uuid, String, bool)>(
        "SELECT id, filename, status = 'ready' FROM documents WHERE id = ANY($1) FOR SHARE",
    )
    .bind(&doc_ids)
    .fetch_all(tx.conn())
    .await
    .map_err(transient)?
    .into_iter()
    .map(|(id, name, ready)| (id, (name, ready)))
    .collect();
    let mut dropped = Vec::new();
    let (status, text, citations) = match answer {
        Answer::NoAnswer { message } => ("no_answer", message, Vec::new()),
        Answer::Answered { text, citations } => {
            let mut kept = Vec::new();
            let mut skipped = 0;
            for c in citations {
                let p = &passages[c.passage];
                let hit = &hits[c.passage];
                let in_filter = filter.is_empty() || filter.iter().any(|d| d.as_uuid() == p.document_id);
                match names.get(&p.document_id) {
                    // Being deleted since it was retrieved: not cited, and not a violation.
                    Some((_, false)) if hit.tenant == t.as_uuid() => skipped += 1,
                    Some((name, true)) if hit.tenant == t.as_uuid() && in_filter => kept.push(Citation {
                        document_id: DocumentId(p.document_id),
                        filename: name.clone(),
                        chunk_id: p.chunk_id,
                        page_start: p.page_start,
                        page_end: p.page_end,
                        quote: p.text[c.span.clone()].to_owned(),
                        score: c.score,
                    }),
                    // A document this tenant cannot see (no row through RLS) or outside the
                    // document filter: another tenant's hits were dropped above, so this is
                    // the last line of defence, reported as a violation.
                    _ => dropped.push(hit.clone()),
                }
            }
            let withdrawn = !dropped.is_empty() || skipped > 0;
            if withdrawn && mode == ResultMode::Generative {
                // What the model wrote leaned on passages that cannot be shown: the quotes
                // that can are the answer, and the result says so (its own notices, about
                // text no longer shown, go).
                mode = ResultMode::ExtractiveFallback;
                fallback_code = Some("citation_withdrawn");
                notices = vec![
                    "citation_withdrawn: a cited document was deleted or could not be shown while the answer was written; the answer quotes the remaining citations".into(),
                ];
            }
            if kept.is_empty() {
                ("no_answer", NO_ANSWER.to_owned(), kept)
            } else if !withdrawn {
                ("answered", text, kept)
            } else {
                // The text quoted (or was written from) the dropped or no longer ready
                // passages too: rebuild it from the quotes that are kept.
                let text = quoted(kept.iter().map(|c| c.quote.as_str()));
                ("answered", text, kept)
            }
        }
    };
    let tokens_out = if status == "answered" {
        ctx.chunker.count_tokens(&text)
    } else {
        0
    };
    let finished = Finished {
        status,
        answer: text,
        citations,
        question_tokens: ctx.chunker.count_tokens(&q.question) as i32,
        retrieved: passages
            .iter()
            .map(|p| (p.document_id, p.ordinal as i32))
            .collect(),
        tokens_out: tokens_out as i32,
        actor: job.actor.clone(),
        mode,
        fallback_code,
        notices,
        llm_tokens_in: generation.as_ref().map_or(0, |g| g.tokens_in as i32),
        llm_tokens_out: generation.as_ref().map_or(0, |g| g.tokens_out as i32),
        grounding: generation
            .as_ref()
            .and_then(|g| g.grounding)
            .and_then(|r| serde_json::to_value(r).ok()),
    };
    let latency = job::finish(&mut tx, job.query_id, &finished)
        .await
        .map_err(transient)?;
    if let Some(ms) = latency {
        let cited: Vec<String> = finished
            .citations
            .iter()
            .map(|c| c.document_id.to_string())
            .collect();
        let ev = Event::new("queries.answer", Outcome::Allowed, actor(job))
            .target(format!("query:{}", job.query_id))
            .reason(status)
            .detail("citations", finished.citations.len())
            .detail("documents", cited)
            .detail("latency_ms", ms)
            .detail("attempt", q.attempts)
            .detail("mode", finished.mode.as_str());
        let ev = match finished.fallback_code {
            Some(code) => ev.detail("fallback", code),
            None => ev,
        };
        let ev = match &job.request_id {
            Some(r) => ev.detail("request_id", r.clone()),
            None => ev,
        };
        ctx.auditor.tenant(&mut tx, ev).await.map_err(transient)?;
    }
    tx.commit().await.map_err(transient)?;
    violations.extend(dropped);
    if !violations.is_empty() {
        report_violations(ctx, t, &violations).await;
    }
    Ok(())
}
