//! The generative half of the `answer` job: the tenant's own retrieved passages go to the
//! language model (`platform::llm`), its answer goes through the grounding filter
//! (`rag::answer::generative`), and whenever that does not yield a grounded answer the
//! extractive one is given instead, with the reason as a code. Never silent: every
//! fallback is recorded on the query (`fallback_code`, a notice) and counted in `/metrics`.

use docket_platform::llm::{Llm, Message};
use docket_platform::queries::ResultMode;
use docket_platform::queries::job::Withdrawn;
use docket_rag::answer::generative::{self, GroundingReport, prompt};
use docket_rag::answer::{Answer, Passage};
use tokio::time::Instant;

/// What the generative path produced.
#[derive(Debug, Clone)]
pub struct Generation {
    /// The answer to store.
    pub answer: Answer,
    /// What produced it.
    pub mode: ResultMode,
    /// Why it fell back, if it did.
    pub fallback_code: Option<&'static str>,
    /// Sentences for the user, each starting with its code.
    pub notices: Vec<String>,
    /// The model's prompt tokens (0 when it was not asked or not reached).
    pub tokens_in: u32,
    /// The model's completion tokens.
    pub tokens_out: u32,
    /// What the grounding filter did, when the model answered.
    pub grounding: Option<GroundingReport>,
}

impl Generation {
    fn fallback(extractive: Answer, code: &'static str, why: String) -> Self {
        Self {
            answer: extractive,
            mode: ResultMode::ExtractiveFallback,
            fallback_code: Some(code),
            notices: vec![format!("{code}: {why}; the answer quotes your documents instead")],
            tokens_in: 0,
            tokens_out: 0,
            grounding: None,
        }
    }
}

/// What a generative answer needs besides the passages.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The model, if this worker has one.
    pub llm: Option<&'a Llm>,
    /// The tenant's display name (the system prompt is bound to it).
    pub tenant_name: &'a str,
    /// The question.
    pub question: &'a str,
    /// Whether the tenant's plan and current consent still allow sending its passages out,
    /// read when the job claimed the question (consent can be withdrawn after asking):
    /// `Err` falls back without calling the model.
    pub allowed: Result<(), Withdrawn>,
    /// When the answer must be stored by (the job attempt's deadline, less a margin).
    pub by: Instant,
}

/// Answers the question from `passages` (this tenant's, best first) with the model; the
/// `extractive` answer of the same passages is the fallback. When nothing retrieved is
/// relevant (the extractive answer is `NoAnswer`), the model is not asked: no retrieval,
/// no answer, whatever a model might make up. `count` estimates tokens (the embedding
/// model's tokenizer) for an endpoint that reports none.
pub async fn generate(
    req: Request<'_>,
    passages: &[Passage],
    extractive: Answer,
    count: impl Fn(&str) -> usize,
) -> Generation {
    if let Err(w) = req.allowed {
        return Generation::fallback(extractive, w.code(), w.reason().into());
    }
    let Some(llm) = req.llm else {
        return Generation::fallback(
            extractive,
            "generator_not_configured",
            "this worker has no language model configured".into(),
        );
    };
    if matches!(extractive, Answer::NoAnswer { .. }) {
        return Generation {
            answer: extractive,
            mode: ResultMode::Generative,
            fallback_code: None,
            notices: vec![],
            tokens_in: 0,
            tokens_out: 0,
            grounding: None,
        };
    }
    let given = &passages[..passages.len().min(llm.config().max_passages)];
    let messages = [
        Message::system(prompt::system(req.tenant_name)),
        Message::user(prompt::user(req.question, given)),
    ];
    let mut completion = match llm.complete(&messages, Some(req.by)).await {
        Ok(c) => c,
        Err(e) => {
            // The endpoint's own words go to the log only.
            tracing::warn!(error = %e, code = e.code(), "generative answer fell back");
            return Generation::fallback(extractive, e.code(), e.public_message().into());
        }
    };
    if !completion.usage_reported {
        // Metered all the same: the embedding model's count of what was sent and written.
        tracing::warn!("the language model reported no token usage; estimating it");
        completion.tokens_in = messages.iter().map(|m| count(&m.content)).sum::<usize>() as u32;
        completion.tokens_out = count(&completion.text) as u32;
    }
    let used = |mut g: Generation, grounding: Option<GroundingReport>| {
        g.tokens_in = completion.tokens_in;
        g.tokens_out = completion.tokens_out;
        g.grounding = grounding;
        g
    };
    if generative::declined(&completion.text) {
        let g = Generation::fallback(
            extractive,
            "generator_declined",
            "the language model found no answer in the passages retrieved".into(),
        );
        return used(g, None);
    }
    // Cut off by the token limit: its unfinished last sentence is not judged (a missing
    // "not" may be what was cut).
    let written = if completion.truncated() {
        generative::complete_sentences(&completion.text)
    } else {
        &completion.text
    };
    let grounded = generative::ground(written, given);
    let report = grounded.report;
    if !report.enough() {
        let g = Generation::fallback(
            extractive,
            "grounding_insufficient",
            format!(
                "only {} of the {} sentences the language model wrote are supported by your documents",
                report.kept, report.sentences
            ),
        );
        return used(g, Some(report));
    }
    let mut notices = Vec::new();
    if report.removed() > 0 {
        notices.push(format!(
            "grounding_removed: {} of {} sentences the language model wrote were removed because your documents do not support them",
            report.removed(),
            report.sentences
        ));
    }
    let g = Generation {
        answer: Answer::Answered {
            text: grounded.text,
            citations: grounded.citations,
        },
        mode: ResultMode::Generative,
        fallback_code: None,
        notices,
        tokens_in: 0,
        tokens_out: 0,
        grounding: None,
    };
    used(g, Some(report))
}
