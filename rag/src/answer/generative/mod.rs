//! Generative answers: a language model writes the answer from the retrieved passages, and
//! only what those passages support is kept. This module is the model-independent half —
//! the prompt ([`prompt`]) and the grounding filter ([`grounding`]); the call to the model
//! (any OpenAI-compatible endpoint) is the platform's `llm` client, and the worker's answer
//! job puts the two together with the extractive answer as the fallback.
//!
//! Guarantees, whatever the model writes: every citation is an exact quote of a passage
//! this tenant's retrieval returned (the model never sees another tenant's text, and a
//! citation of anything but its numbered passages is removed); a sentence with a number or
//! name no supporting passage holds is removed; if too little survives, the extractive
//! answer is given instead and the result says so.

pub mod grounding;
pub mod prompt;
mod reading;

pub use grounding::{Grounded, GroundingReport, ground};
pub use reading::complete_sentences;

/// What the model is told to write when the passages do not answer the question.
pub const DECLINE: &str = "NOT_IN_DOCUMENTS";

/// Whether the model said the passages do not answer the question.
pub fn declined(text: &str) -> bool {
    text.contains(DECLINE)
}
