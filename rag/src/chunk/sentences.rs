//! Splitting contract text into sentence-sized spans (byte ranges into the original text,
//! so a quote is always an exact substring). Contracts are full of abbreviations (`Inc.`,
//! `Sec.`, `U.S.`) and enumerations (`1.`, `(a)`), which must not end a sentence; very long
//! sentences are cut again at semicolons so a quote stays clause-sized.

use std::ops::Range;

/// Longest span before it is cut at a semicolon (bytes).
const MAX_SPAN: usize = 600;
/// Shortest span kept on its own (shorter ones join their neighbour).
const MIN_SPAN: usize = 25;

const ABBREVIATIONS: &[&str] = &[
    "inc", "ltd", "co", "corp", "no", "nos", "sec", "secs", "art", "mr", "mrs", "ms", "dr", "st", "e.g",
    "i.e", "u.s", "u.k", "vs", "etc", "approx", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sept",
    "sep", "oct", "nov", "dec", "para", "pp", "llc", "l.p", "n.a", "s.a", "b.v", "n.v", "ph", "fig",
];

fn ends_sentence(text: &str, dot: usize) -> bool {
    let before = &text[..dot];
    let word = before
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_lowercase();
    if word.is_empty() {
        return false;
    }
    // Enumerations ("1.", "12.3.", "(a).") and single letters ("A.") do not end anything.
    if word.chars().all(|c| c.is_ascii_digit() || c == '.') || word.chars().count() == 1 {
        return false;
    }
    !ABBREVIATIONS.contains(&word.trim_end_matches('.'))
}

/// Where sentences end, untrimmed: a `.`, `?` or `!` before whitespace (not after an
/// abbreviation or an enumeration), or a blank line.
fn ends(text: &str) -> Vec<Range<usize>> {
    let mut raw = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        let boundary = match c {
            '.' | '?' | '!' => {
                let next = bytes.get(end).copied();
                next.is_none_or(|b| b.is_ascii_whitespace()) && (c != '.' || ends_sentence(text, i))
            }
            // A blank line ends a heading or a list item.
            '\n' => text[end..].starts_with('\n') || text[end..].starts_with("\r\n"),
            _ => false,
        };
        if boundary {
            raw.push(start..end);
            start = end;
        }
    }
    raw.push(start..text.len());
    raw
}

/// Every sentence of `text` as written, trimmed: short ones (a heading, "Venue lies in
/// Newark.") stay on their own and long ones are not cut. For matching a sentence someone
/// wrote against the one a passage holds.
pub fn as_written(text: &str) -> Vec<Range<usize>> {
    ends(text).into_iter().filter_map(|r| trim(text, r)).collect()
}

/// Sentence spans of `text`, in order, trimmed of surrounding whitespace.
pub fn split(text: &str) -> Vec<Range<usize>> {
    let raw = ends(text);
    let mut out: Vec<Range<usize>> = Vec::new();
    // A short span (a heading, "1. Term.") joins the span after it.
    let mut pending: Option<Range<usize>> = None;
    for r in raw.into_iter().flat_map(|r| cut_long(text, r)) {
        let Some(r) = trim(text, r) else { continue };
        let merged = pending.take().map_or(r.start, |p| p.start)..r.end;
        if merged.len() < MIN_SPAN {
            pending = Some(merged);
        } else {
            out.push(merged);
        }
    }
    if let Some(p) = pending {
        match out.last_mut() {
            Some(last) => last.end = p.end,
            None => out.push(p),
        }
    }
    out
}

fn cut_long(text: &str, r: Range<usize>) -> Vec<Range<usize>> {
    if r.len() <= MAX_SPAN {
        return vec![r];
    }
    let mut out = Vec::new();
    let mut start = r.start;
    for (i, c) in text[r.clone()].char_indices() {
        let at = r.start + i;
        if c == ';' && at + 1 - start >= MIN_SPAN * 4 {
            out.push(start..at + 1);
            start = at + 1;
        }
    }
    out.push(start..r.end);
    out
}

/// `r` without surrounding whitespace, or `None` when nothing is left.
pub(crate) fn trim(text: &str, r: Range<usize>) -> Option<Range<usize>> {
    let s = &text[r.clone()];
    let lead = s.len() - s.trim_start().len();
    let tail = s.len() - s.trim_end().len();
    let t = r.start + lead..r.end - tail;
    (!t.is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> Vec<&str> {
        split(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn abbreviations_and_enumerations_do_not_split() {
        let t = "This Agreement is made by Acme Inc. and Foo Corp. under Sec. 2 of the U.S. code. \
                 1. Term. The term is five years. Either party may terminate it.";
        assert_eq!(
            parts(t),
            vec![
                "This Agreement is made by Acme Inc. and Foo Corp. under Sec. 2 of the U.S. code.",
                "1. Term. The term is five years.",
                "Either party may terminate it."
            ]
        );
    }

    #[test]
    fn spans_are_exact_substrings_and_long_ones_are_cut() {
        let long = format!(
            "{}; {}; {}.",
            "a clause ".repeat(30),
            "b clause ".repeat(30),
            "c clause ".repeat(30)
        );
        let spans = split(&long);
        assert!(spans.len() >= 2, "{spans:?}");
        for r in &spans {
            assert!(r.len() <= MAX_SPAN);
            assert!(long.contains(&long[r.clone()]));
        }
        assert!(split("   ").is_empty());
        assert_eq!(
            parts("Heading\n\nBody text that goes on for a while here."),
            vec!["Heading\n\nBody text that goes on for a while here."]
        );
    }
}
