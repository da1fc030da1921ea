//! Answering a question from retrieved passages. The [`Answerer`] trait is the seam: today
//! the only implementation is [`extractive::Extractive`], which quotes the tenant's own
//! text; a generative answerer (an OpenAI-compatible endpoint, gated by plan and consent)
//! can be added behind it without touching retrieval or governance.

pub mod extractive;
pub mod sentences;
pub mod terms;
pub mod types;

use uuid::Uuid;

/// A retrieved chunk, as the answerer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// Chunk (point) id.
    pub chunk_id: Uuid,
    /// Its document.
    pub document_id: Uuid,
    /// Chunk text.
    pub text: String,
    /// First page.
    pub page_start: u32,
    /// Last page.
    pub page_end: u32,
    /// Position of the chunk in its document (0: the opening, where contracts name their
    /// parties and date).
    pub ordinal: u32,
    /// Similarity of the chunk to the question (cosine).
    pub score: f32,
}

/// One cited span: an exact substring of a passage.
#[derive(Debug, Clone, PartialEq)]
pub struct Cited {
    /// Index into the passages the answerer was given.
    pub passage: usize,
    /// Byte range of the quote in the passage's text.
    pub span: std::ops::Range<usize>,
    /// How well the span answers the question (0..1).
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

/// Turns a question and retrieved passages into an answer.
pub trait Answerer: Send + Sync {
    /// Answers `question` from `passages` only.
    fn answer(&self, question: &str, passages: &[Passage]) -> Answer;
}
