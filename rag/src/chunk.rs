//! Chunking: page texts → chunks sized in the embedding model's tokens, with overlap.
//!
//! Sizes are counted with the model's own tokenizer (truncation and padding off, or a long
//! text would count as 128 tokens and come back as one chunk). Each chunk knows the pages it
//! spans, its token count and the SHA-256 of its text.

use sha2::{Digest, Sha256};
use std::path::Path;
use text_splitter::{ChunkConfig, TextSplitter};
use tokenizers::Tokenizer;
use uuid::Uuid;

/// Chunking settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSettings {
    /// Maximum tokens per chunk (≤ 254 leaves room for [CLS]/[SEP] in a 256-token model).
    pub max_tokens: usize,
    /// Tokens shared by consecutive chunks.
    pub overlap: usize,
}

impl Default for ChunkSettings {
    fn default() -> Self {
        Self {
            max_tokens: 254,
            overlap: 32,
        }
    }
}

/// Chunking could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// The tokenizer file is missing or unreadable.
    #[error("tokenizer {path}: {message}")]
    Tokenizer {
        /// Path.
        path: String,
        /// Cause.
        message: String,
    },
    /// Overlap not smaller than the size.
    #[error("chunk overlap ({overlap}) must be smaller than the chunk size ({max_tokens})")]
    Settings {
        /// Size.
        max_tokens: usize,
        /// Overlap.
        overlap: usize,
    },
}

/// One chunk of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Position in the document, from 0.
    pub ordinal: u32,
    /// The text.
    pub text: String,
    /// First page (1-based).
    pub page_start: u32,
    /// Last page (1-based).
    pub page_end: u32,
    /// Tokens in the model's tokenizer.
    pub token_count: u32,
    /// Hex SHA-256 of `text`.
    pub sha256: String,
}

/// Splits text with the model's tokenizer. Build once per process; cheap to share.
pub struct Chunker {
    splitter: TextSplitter<Tokenizer>,
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunker").finish_non_exhaustive()
    }
}

/// Separator between pages in the text that is split (two newlines: a paragraph break).
const PAGE_BREAK: &str = "\n\n";

impl Chunker {
    /// Loads `tokenizer.json` (truncation and padding switched off for sizing).
    pub fn new(tokenizer_path: &Path, settings: ChunkSettings) -> Result<Self, ChunkError> {
        let err = |message: String| ChunkError::Tokenizer {
            path: tokenizer_path.display().to_string(),
            message,
        };
        let mut tokenizer = Tokenizer::from_file(tokenizer_path).map_err(|e| err(e.to_string()))?;
        tokenizer.with_truncation(None).map_err(|e| err(e.to_string()))?;
        tokenizer.with_padding(None);
        let config = ChunkConfig::new(settings.max_tokens)
            .with_overlap(settings.overlap)
            .map_err(|_| ChunkError::Settings {
                max_tokens: settings.max_tokens,
                overlap: settings.overlap,
            })?
            .with_sizer(tokenizer.clone());
        Ok(Self {
            splitter: TextSplitter::new(config),
            tokenizer,
        })
    }

    /// Tokens of `text` (without special tokens).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer.encode(text, false).map(|e| e.len()).unwrap_or(0)
    }

    /// Chunks of a document's pages. CPU-bound: call from a blocking thread.
    pub fn chunk(&self, pages: &[String]) -> Vec<Chunk> {
        let mut text = String::new();
        let mut starts = Vec::with_capacity(pages.len()); // byte offset where each page begins
        for (i, p) in pages.iter().enumerate() {
            if i > 0 {
                text.push_str(PAGE_BREAK);
            }
            starts.push(text.len());
            text.push_str(p);
        }
        let page_of = |offset: usize| -> u32 { starts.partition_point(|s| *s <= offset).max(1) as u32 };
        self.splitter
            .chunk_indices(&text)
            .enumerate()
            .map(|(i, (offset, chunk))| Chunk {
                ordinal: i as u32,
                text: chunk.to_owned(),
                page_start: page_of(offset),
                page_end: page_of(offset + chunk.len().saturating_sub(1)),
                token_count: self.count_tokens(chunk) as u32,
                sha256: hex::encode(Sha256::digest(chunk.as_bytes())),
            })
            .collect()
    }
}

/// Namespace of chunk and point ids.
const CHUNK_NAMESPACE: Uuid = Uuid::from_u128(0x6d0c_6b3e_9a4f_4c1e_8e0a_d0c4_e700_0001);

/// Deterministic id of a chunk (and of its vector point): UUIDv5 of tenant, document and
/// ordinal, so a re-run replaces instead of duplicating.
pub fn chunk_id(tenant: Uuid, document: Uuid, ordinal: u32) -> Uuid {
    Uuid::new_v5(
        &CHUNK_NAMESPACE,
        format!("{tenant}/{document}/{ordinal}").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_ids_are_deterministic_and_distinct() {
        let (t, d) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(chunk_id(t, d, 3), chunk_id(t, d, 3));
        assert_ne!(chunk_id(t, d, 3), chunk_id(t, d, 4));
        assert_ne!(chunk_id(t, d, 3), chunk_id(Uuid::new_v4(), d, 3));
    }
}
