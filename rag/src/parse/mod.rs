//! Parsing: an original file's bytes → text by page.
//!
//! PDF goes through pdf-extract (the only extractor that decodes the fonts real filings use,
//! mean bag-of-words F1 0.9997 on CUAD), on the calling thread inside `catch_unwind`
//! because it can panic on corrupt input; if it fails, lopdf (which loads and repairs
//! damaged files and never panicked in our trials) repairs the document and pdf-extract gets
//! a second try. Callers run [`parse`] on a blocking thread, or — for PDFs from users,
//! whose parse can take unbounded time and memory — [`bounded::parse`] in a child process
//! with CPU, wall-time and memory limits.

pub mod bounded;
mod pdf;

use serde::{Deserialize, Serialize};

/// What kind of content a document holds (decided from its bytes at upload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentKind {
    /// `application/pdf`
    Pdf,
    /// `text/plain`
    Text,
    /// `text/markdown`
    Markdown,
}

impl ContentKind {
    /// The MIME type.
    pub fn mime(&self) -> &'static str {
        match self {
            ContentKind::Pdf => "application/pdf",
            ContentKind::Text => "text/plain",
            ContentKind::Markdown => "text/markdown",
        }
    }

    /// From a MIME type as stored.
    pub fn from_mime(m: &str) -> Option<Self> {
        match m {
            "application/pdf" => Some(Self::Pdf),
            "text/plain" => Some(Self::Text),
            "text/markdown" => Some(Self::Markdown),
            _ => None,
        }
    }
}

/// A parsed document: text per page (1-based page n is `pages[n - 1]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parsed {
    /// Page texts.
    pub pages: Vec<String>,
}

impl Parsed {
    /// Total characters of text.
    pub fn chars(&self) -> usize {
        self.pages.iter().map(|p| p.chars().count()).sum()
    }
}

/// Why a document cannot be parsed. Every variant is permanent: retrying will not help.
/// Serializable: the bounded parser's child process reports it on stdout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ParseError {
    /// The PDF is encrypted.
    #[error("the PDF is encrypted; upload an unencrypted copy")]
    Encrypted,
    /// No text at all (a scanned or image-only document).
    #[error(
        "the document contains no extractable text (scanned or image-only documents need OCR, which Docket does not do yet)"
    )]
    NoText,
    /// The file is damaged beyond repair.
    #[error("the file is damaged and could not be read: {0}")]
    Corrupt(String),
    /// Text content that is not UTF-8.
    #[error("the text is not valid UTF-8")]
    NotUtf8,
    /// The parse ran out of its time budget (CPU or wall time, in seconds).
    #[error("the document took longer than {0} s to parse and was stopped")]
    TimedOut(u64),
    /// The parser process died (a crash, or its memory limit).
    #[error("the parser crashed on this file or exceeded its memory limit")]
    Crashed,
}

impl ParseError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Encrypted => "pdf_encrypted",
            ParseError::NoText => "no_extractable_text",
            ParseError::Corrupt(_) => "corrupt_file",
            ParseError::NotUtf8 => "invalid_encoding",
            ParseError::TimedOut(_) => "parse_timeout",
            ParseError::Crashed => "corrupt_file",
        }
    }
}

/// Parses `bytes` of `kind`. CPU-bound: call from a blocking thread.
pub fn parse(kind: ContentKind, bytes: &[u8]) -> Result<Parsed, ParseError> {
    let pages = match kind {
        ContentKind::Pdf => pdf::pages(bytes)?,
        ContentKind::Text | ContentKind::Markdown => {
            let text = std::str::from_utf8(bytes).map_err(|_| ParseError::NotUtf8)?;
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            // A form feed is the page break of plain-text exports.
            text.split('\u{c}').map(str::to_owned).collect()
        }
    };
    if pages.iter().all(|p| p.trim().is_empty()) {
        return Err(ParseError::NoText);
    }
    Ok(Parsed { pages })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_pages_split_on_form_feeds() {
        let p = parse(ContentKind::Text, "\u{feff}one\u{c}two".as_bytes()).expect("parse");
        assert_eq!(p.pages, vec!["one", "two"]);
        assert_eq!(parse(ContentKind::Text, b"  \n "), Err(ParseError::NoText));
        assert_eq!(
            parse(ContentKind::Markdown, &[0xff, 0xfe, 0x00]),
            Err(ParseError::NotUtf8)
        );
    }
}
