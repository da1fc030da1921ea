//! Deciding a file's type from its bytes, never from its name: PDF, plain text or
//! Markdown are accepted; anything else is refused at upload.

/// What the first bytes of an upload say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// `%PDF-` header.
    Pdf,
    /// UTF-8 text without NUL bytes; Markdown when the name or content type says so.
    Text {
        /// Whether to treat it as Markdown.
        markdown: bool,
    },
    /// Anything else: binaries, images, archives, executables, other encodings.
    Unsupported,
}

impl Sniffed {
    /// The MIME type stored for accepted kinds.
    pub fn mime(&self) -> Option<&'static str> {
        match self {
            Sniffed::Pdf => Some("application/pdf"),
            Sniffed::Text { markdown: false } => Some("text/plain"),
            Sniffed::Text { markdown: true } => Some("text/markdown"),
            Sniffed::Unsupported => None,
        }
    }
}

/// How many leading bytes [`sniff`] wants.
pub const SNIFF_LEN: usize = 8192;

/// Classifies an upload from its first bytes (up to [`SNIFF_LEN`]). `complete` says the
/// prefix is the whole file (so a multi-byte character cut at the end is not an error).
pub fn sniff(prefix: &[u8], complete: bool, filename: &str, declared_type: Option<&str>) -> Sniffed {
    // PDF readers accept the header within the first 1024 bytes.
    if prefix.len() >= 5 && prefix[..prefix.len().min(1024)].windows(5).any(|w| w == b"%PDF-") {
        return Sniffed::Pdf;
    }
    if prefix.contains(&0) {
        return Sniffed::Unsupported;
    }
    let text_ok = match std::str::from_utf8(prefix) {
        Ok(_) => true,
        // A character cut by the prefix boundary is fine; real garbage is not.
        Err(e) => !complete && e.error_len().is_none() && prefix.len() - e.valid_up_to() < 4,
    };
    if !text_ok {
        return Sniffed::Unsupported;
    }
    let lower = filename.to_ascii_lowercase();
    let markdown = lower.ends_with(".md")
        || lower.ends_with(".markdown")
        || declared_type.is_some_and(|t| t.starts_with("text/markdown"));
    Sniffed::Text { markdown }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_content() {
        assert_eq!(sniff(b"%PDF-1.7\n...", true, "contract.txt", None), Sniffed::Pdf);
        assert_eq!(
            sniff(b"MZ\x90\x00\x03\x00", true, "contract.pdf", None),
            Sniffed::Unsupported
        );
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0", true, "scan.pdf", None),
            Sniffed::Unsupported
        );
        assert_eq!(
            sniff(b"PK\x03\x04\x14\0", true, "a.docx", None),
            Sniffed::Unsupported
        );
        assert_eq!(
            sniff(&[0xc3, 0x28, 0x41], true, "a.txt", None),
            Sniffed::Unsupported
        );
        assert_eq!(
            sniff("# Terms\nThe parties…".as_bytes(), true, "terms.md", None),
            Sniffed::Text { markdown: true }
        );
        assert_eq!(
            sniff(b"The parties agree", true, "terms", Some("text/markdown")),
            Sniffed::Text { markdown: true }
        );
        assert_eq!(
            sniff(b"The parties agree", true, "terms.txt", None),
            Sniffed::Text { markdown: false }
        );
        // "é" cut in half at the end of a partial prefix is still text.
        assert_eq!(
            sniff(&[b'a', 0xc3], false, "x.txt", None),
            Sniffed::Text { markdown: false }
        );
        assert_eq!(sniff(&[b'a', 0xc3], true, "x.txt", None), Sniffed::Unsupported);
    }
}
