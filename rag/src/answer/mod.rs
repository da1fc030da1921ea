//! Answering a question from retrieved passages. The [`Answerer`] trait is the seam of the
//! extractive path: [`select::Selecting`] quotes the tenant's own clauses chosen by meaning.
//! [`generative`] holds the model-independent half of generative answers (the prompt and the
//! grounding filter); its answers come back as the same [`Answer`] with [`Cited`] quotes, so
//! everything after the answerer (the tenant output filter, storage, metering) is shared.
//! [`fusion`] merges the dense and lexical rankings that retrieval produces.

pub mod fusion;
pub mod generative;
pub mod select;

use uuid::Uuid;

/// A retrieved chunk, as the answerer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// Chunk (point) id.
    pub chunk_id: Uuid,
    /// Its document.
    pub document_id: Uuid,
    /// Chunk text (an exact substring of the document).
    pub text: String,
    /// First page.
    pub page_start: u32,
    /// Last page.
    pub page_end: u32,
    /// Position of the chunk in its document.
    pub ordinal: u32,
    /// Similarity in meaning of the chunk (its carried heading included) to the question:
    /// the embedding model's cosine.
    pub similarity: f32,
    /// Place in the dense ranking (from 1), when dense search returned the chunk.
    pub dense_rank: Option<u32>,
    /// Place in the lexical ranking (from 1), when lexical search returned the chunk.
    pub lexical_rank: Option<u32>,
}

/// One cited span: an exact substring of a passage.
#[derive(Debug, Clone, PartialEq)]
pub struct Cited {
    /// Index into the passages the answerer was given.
    pub passage: usize,
    /// Byte range of the quote in the passage's text.
    pub span: std::ops::Range<usize>,
    /// How well the span answers the question (the selection score).
    pub score: f32,
}

/// What an answerer produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// An answer with its citations, numbered in order (`[1]`, `[2]`, …).
    Answered {
        /// Readable answer text referring to the citations by number.
        text: String,
        /// The cited spans.
        citations: Vec<Cited>,
    },
    /// Nothing retrieved answers the question well enough.
    NoAnswer {
        /// A helpful sentence for the user.
        message: String,
    },
}

/// What a user reads when nothing in their documents answers the question.
pub const NO_ANSWER: &str = "Your documents do not appear to answer this question. Try naming the clause or \
                             term you are looking for, or ask about a specific document.";

/// Turns a question and retrieved passages into an answer.
pub trait Answerer: Send + Sync {
    /// Answers `question` from `passages` only.
    fn answer(&self, question: &str, passages: &[Passage]) -> Answer;
}

/// The answer text for quoted spans: each quote on its own line, whitespace runs of the PDF
/// squashed, numbered as its citation.
pub fn quoted<'a>(quotes: impl IntoIterator<Item = &'a str>) -> String {
    quotes
        .into_iter()
        .enumerate()
        .map(|(i, q)| {
            format!(
                "{} [{}]",
                q.split_whitespace().collect::<Vec<_>>().join(" "),
                i + 1
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
