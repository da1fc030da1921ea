//! Docket's RAG core: parse, chunk, embed, vector index, answer.
//!
//! This crate knows nothing of plans, money or HTTP, and never depends on
//! `docket-platform`. Every call that touches tenant data takes the tenant explicitly.

pub mod answer;
pub mod batcher;
pub mod chunk;
pub mod embed;
pub mod parse;
pub mod vectors;
