//! Chunking: a document's pages → chunks along its structure, sized in the embedding
//! model's tokens.
//!
//! A contract is numbered sections and clauses, and a question is about one of them, so a
//! chunk starts where a section does ([`structure`]) and holds that section: "9.07
//! Governing Law. …" is one chunk, not the tail of one and the head of the next. A section
//! too long for one chunk is cut between sentences ([`sentences`]) and every piece carries
//! the heading it belongs to (and the headings above it) in [`Chunk::heading`], which is
//! embedded with the text; a heading alone, or a section of a few words, joins the section
//! after it. The chunk text itself is always an exact substring of the document, so a quote
//! taken from it is too.
//!
//! Sizes are counted with the model's own tokenizer (truncation and padding off, or a long
//! text would count as 128 tokens). Each chunk knows the pages it spans, its token count and
//! the SHA-256 of what is embedded.

pub mod sentences;
pub mod structure;

use sha2::{Digest, Sha256};
use std::ops::Range;
use std::path::Path;
use structure::{Heading, SUB_CLAUSE};
use text_splitter::{ChunkConfig, TextSplitter};
use tokenizers::Tokenizer;
use uuid::Uuid;

/// Chunking settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSettings {
    /// Maximum tokens per chunk, carried heading included (≤ 254 leaves room for
    /// [CLS]/[SEP] in a 256-token model).
    pub max_tokens: usize,
    /// Tokens shared by consecutive pieces of a single sentence too long for one chunk
    /// (pieces cut between sentences share nothing: the heading carries the context).
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
    /// Overlap not smaller than a piece (four fifths of the size: a fifth is kept for the
    /// carried heading).
    #[error("chunk overlap ({overlap}) must be smaller than four fifths of the chunk size ({max_tokens})")]
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
    /// The text: an exact substring of the document.
    pub text: String,
    /// Headings the text belongs to but does not itself start with ("ARTICLE 9 –
    /// MISCELLANEOUS › 9.07 Governing Law."); empty when the text opens its section.
    pub heading: String,
    /// First page (1-based).
    pub page_start: u32,
    /// Last page (1-based).
    pub page_end: u32,
    /// Tokens of [`Chunk::embedded`] in the model's tokenizer.
    pub token_count: u32,
    /// Hex SHA-256 of [`Chunk::embedded`].
    pub sha256: String,
}

impl Chunk {
    /// What the model embeds: the carried heading, then the text.
    pub fn embedded(&self) -> String {
        embedded(&self.heading, &self.text)
    }
}

/// The text the model embeds for a chunk with `heading` carried before `text`.
pub fn embedded(heading: &str, text: &str) -> String {
    if heading.is_empty() {
        text.to_owned()
    } else {
        format!("{heading}\n{text}")
    }
}

/// Splits text with the model's tokenizer. Build once per process; cheap to share.
pub struct Chunker {
    splitter: TextSplitter<Tokenizer>,
    tokenizer: Tokenizer,
    max_tokens: usize,
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunker").finish_non_exhaustive()
    }
}

/// Separator between pages in the text that is split (two newlines: a paragraph break).
const PAGE_BREAK: &str = "\n\n";
/// Separator between carried headings.
const HEADING_SEPARATOR: &str = " › ";

/// A contiguous run of the document that becomes (part of) one chunk.
#[derive(Debug, Clone)]
struct Unit {
    span: Range<usize>,
    /// Headings carried before it.
    heading: String,
    /// Depth of the heading that opens it (`None`: a continuation piece).
    opens: Option<u8>,
    tokens: usize,
}

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
        let bad = ChunkError::Settings {
            max_tokens: settings.max_tokens,
            overlap: settings.overlap,
        };
        // Pieces of an over-long sentence leave room for the heading carried before them.
        let piece = settings.max_tokens - settings.max_tokens / 5;
        if settings.overlap >= piece {
            return Err(bad);
        }
        let config = ChunkConfig::new(piece)
            .with_overlap(settings.overlap)
            .map_err(|_| bad)?
            .with_sizer(tokenizer.clone());
        Ok(Self {
            splitter: TextSplitter::new(config),
            tokenizer,
            max_tokens: settings.max_tokens,
        })
    }

    /// Tokens of `text` (without special tokens).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer.encode(text, false).map(|e| e.len()).unwrap_or(0)
    }

    /// Sections sized to read well on their own: below this a section joins the next one.
    fn min_tokens(&self) -> usize {
        self.max_tokens / 8
    }

    /// Sub-clauses are gathered up to this size (a clause with its items reads as one).
    fn target_tokens(&self) -> usize {
        self.max_tokens * 2 / 3
    }

    /// Most tokens a carried heading may take.
    fn heading_budget(&self) -> usize {
        self.max_tokens / 5
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
        let units = self.units(&text);
        self.pack(&text, units)
            .into_iter()
            .enumerate()
            .map(|(i, (span, heading))| {
                let body = &text[span.clone()];
                let embedded = embedded(&heading, body);
                Chunk {
                    ordinal: i as u32,
                    text: body.to_owned(),
                    page_start: page_of(span.start),
                    page_end: page_of(span.end.saturating_sub(1)),
                    token_count: self.count_tokens(&embedded) as u32,
                    sha256: hex::encode(Sha256::digest(embedded.as_bytes())),
                    heading,
                }
            })
            .collect()
    }

    /// The document as sections (a preamble, then one per heading), long ones cut into
    /// pieces that carry their headings.
    fn units(&self, text: &str) -> Vec<Unit> {
        let heads = structure::headings(text);
        let mut bounds: Vec<(usize, Option<&Heading>)> = Vec::with_capacity(heads.len() + 1);
        if heads.first().is_none_or(|h| h.at > 0) {
            bounds.push((0, None));
        }
        bounds.extend(heads.iter().map(|h| (h.at, Some(h))));
        // Open headings above the current one: (depth, title).
        let mut open: Vec<(u8, String)> = Vec::new();
        let mut units = Vec::new();
        for (i, (at, head)) in bounds.iter().enumerate() {
            let end = bounds.get(i + 1).map_or(text.len(), |b| b.0);
            let Some(span) = sentences::trim(text, *at..end) else {
                continue;
            };
            if let Some(h) = head {
                while open.last().is_some_and(|(d, _)| *d >= h.depth) {
                    open.pop();
                }
            }
            let above = self.carried(open.iter().map(|(_, t)| t.as_str()));
            if let Some(h) = head
                && h.depth < SUB_CLAUSE
            {
                open.push((h.depth, squash(&text[h.title.clone()])));
            }
            let own = self.carried(open.iter().map(|(_, t)| t.as_str()));
            self.section(text, span, above, own, head.map(|h| h.depth), &mut units);
        }
        units
    }

    /// Carried headings joined, the outermost dropped first while they exceed the budget.
    fn carried<'a>(&self, titles: impl Iterator<Item = &'a str>) -> String {
        let titles: Vec<&str> = titles.collect();
        for skip in 0..titles.len() {
            let joined = titles[skip..].join(HEADING_SEPARATOR);
            if self.count_tokens(&joined) <= self.heading_budget() {
                return joined;
            }
        }
        String::new()
    }

    /// One section: whole when it fits, else pieces cut between sentences.
    fn section(
        &self,
        text: &str,
        span: Range<usize>,
        above: String,
        own: String,
        depth: Option<u8>,
        units: &mut Vec<Unit>,
    ) {
        let room =
            |heading: &str| self.max_tokens - self.count_tokens(heading).min(self.heading_budget()) - 1;
        let tokens = self.count_tokens(&text[span.clone()]);
        if tokens <= room(&above) {
            units.push(Unit {
                span,
                heading: above,
                opens: depth,
                tokens,
            });
            return;
        }
        // The first piece starts with the heading itself; the rest carry it.
        let budget = self.target_tokens().min(room(&own));
        let mut piece: Option<Range<usize>> = None;
        let mut first = true;
        let mut emit = |r: Range<usize>, units: &mut Vec<Unit>| {
            units.push(Unit {
                tokens: self.count_tokens(&text[r.clone()]),
                span: r,
                heading: if first { above.clone() } else { own.clone() },
                opens: if first { depth } else { None },
            });
            first = false;
        };
        for s in sentences::split(&text[span.clone()]) {
            let s = span.start + s.start..span.start + s.end;
            let joined = piece.as_ref().map_or(s.clone(), |p| p.start..s.end);
            if self.count_tokens(&text[joined.clone()]) <= budget {
                piece = Some(joined);
                continue;
            }
            if let Some(p) = piece.take() {
                emit(p, units);
            }
            if self.count_tokens(&text[s.clone()]) <= budget {
                piece = Some(s);
            } else {
                // One sentence longer than a chunk: cut it by the model's tokens.
                for (off, part) in self.splitter.chunk_indices(&text[s.clone()]) {
                    emit(s.start + off..s.start + off + part.len(), units);
                }
            }
        }
        if let Some(p) = piece {
            emit(p, units);
        }
    }

    /// Consecutive units joined into chunks: a heading alone or a tiny section joins what
    /// follows; sub-clauses gather up to the target size; nothing exceeds the maximum.
    fn pack(&self, text: &str, units: Vec<Unit>) -> Vec<(Range<usize>, String)> {
        let mut out: Vec<(Range<usize>, String)> = Vec::new();
        let mut cur: Option<Unit> = None;
        for u in units {
            let Some(c) = cur.as_mut() else {
                cur = Some(u);
                continue;
            };
            let joined = c.span.start..u.span.end;
            let join_wanted = c.tokens < self.min_tokens()
                || u.opens.is_some_and(|d| d >= SUB_CLAUSE) && c.tokens + u.tokens <= self.target_tokens();
            let fits = || {
                let n = self.count_tokens(&embedded(&c.heading, &text[joined.clone()]));
                (n <= self.max_tokens).then_some(n)
            };
            match join_wanted.then(fits).flatten() {
                Some(n) => {
                    c.span = joined;
                    c.tokens = n;
                }
                None => {
                    if let Some(done) = cur.replace(u) {
                        out.push((done.span, done.heading));
                    }
                }
            }
        }
        if let Some(done) = cur {
            out.push((done.span, done.heading));
        }
        out
    }
}

/// Whitespace runs (line breaks of the PDF) as single spaces.
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
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
