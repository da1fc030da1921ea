//! PDF → text by page.

use super::ParseError;
use std::panic::{AssertUnwindSafe, catch_unwind};

fn extract(bytes: &[u8]) -> Result<Vec<String>, String> {
    // pdf-extract can panic on corrupt files; a panic must fail this document only.
    match catch_unwind(AssertUnwindSafe(|| {
        pdf_extract::extract_text_from_mem_by_pages(bytes)
    })) {
        Ok(Ok(pages)) => Ok(pages),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the PDF parser crashed on this file".into()),
    }
}

fn declares_encryption(bytes: &[u8]) -> bool {
    bytes.windows(8).any(|w| w == b"/Encrypt")
}

/// Text of each page.
pub(super) fn pages(bytes: &[u8]) -> Result<Vec<String>, ParseError> {
    let loaded = lopdf::Document::load_mem(bytes);
    match &loaded {
        Ok(doc) if doc.was_encrypted() || doc.is_encrypted() => return Err(ParseError::Encrypted),
        Err(_) if declares_encryption(bytes) => return Err(ParseError::Encrypted),
        _ => {}
    }
    let first = match extract(bytes) {
        Ok(pages) => return Ok(pages),
        Err(e) => e,
    };
    // Second chance: lopdf repairs what it can (broken xref, truncated tail), then
    // pdf-extract reads the rewritten file.
    let mut doc = loaded.map_err(|e| ParseError::Corrupt(format!("{first}; repair failed: {e}")))?;
    let mut repaired = Vec::new();
    doc.save_to(&mut repaired)
        .map_err(|e| ParseError::Corrupt(format!("{first}; repair failed: {e}")))?;
    let pages = extract(&repaired).map_err(|e| ParseError::Corrupt(format!("{first}; after repair: {e}")))?;
    // A file that only "parses" after repair and then holds no text was damaged, not
    // scanned: say so.
    if pages.iter().all(|p| p.trim().is_empty()) {
        return Err(ParseError::Corrupt(format!(
            "{first}; nothing readable survived repair"
        )));
    }
    Ok(pages)
}
