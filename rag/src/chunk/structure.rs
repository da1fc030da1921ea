//! A contract's structure: the headings that open its sections and clauses.
//!
//! Contracts number what they say: "ARTICLE 12 – TERMINATION", "9.07 Governing Law.",
//! "Section 4(b)", "(iii)", a title line in capitals. A heading is recognised only where a
//! line starts (after a newline, or after the wide gaps PDF extraction leaves between
//! blocks) and only when the text before it ended a sentence or a title: "as set forth in
//! Section 4.2" wrapped onto a new line is a reference, not a heading. Nothing here knows
//! what any clause is about; it reads numbering and layout only.

use std::ops::Range;

/// Depth of an enumerated sub-clause ("(a)", "(iii)"): below every numbered level.
pub const SUB_CLAUSE: u8 = 8;

/// Longest title carried along (words); a longer run is body text, not a title.
const TITLE_WORDS: usize = 12;

/// Words that introduce a numbered heading ("Article 5", "Schedule B", "Item Two").
const KEYWORDS: &[&str] = &[
    "article",
    "section",
    "clause",
    "schedule",
    "exhibit",
    "appendix",
    "annex",
    "attachment",
    "part",
    "chapter",
    "item",
    "term",
    "paragraph",
];

/// Numbers written out, as some contracts number their articles ("Item Two"); the
/// grounding filter checks them too.
pub(crate) const NUMBER_WORDS: &[&str] = &[
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// One heading found in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heading {
    /// Byte offset where the heading (and its section) starts.
    pub at: usize,
    /// Nesting: 0 for articles and title lines, 1 for "9.", 2 for "9.07", …,
    /// [`SUB_CLAUSE`] for "(a)".
    pub depth: u8,
    /// Byte range of the heading's own words ("9.07 Governing Law."), to carry into the
    /// pieces of a long section.
    pub title: Range<usize>,
}

/// Headings of `text`, in order.
pub fn headings(text: &str) -> Vec<Heading> {
    let mut out: Vec<Heading> = Vec::new();
    for at in line_starts(text) {
        if out.last().is_some_and(|h| h.at == at) {
            continue;
        }
        if let Some(h) = heading_at(text, at) {
            out.push(h);
        }
    }
    // A line repeated on many pages ("CONFIDENTIAL TREATMENT REQUESTED", a running title)
    // is page furniture, not the start of a section.
    let key = |h: &Heading| {
        text[h.title.clone()]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for h in &out {
        *seen.entry(key(h)).or_default() += 1;
    }
    out.retain(|h| h.depth == SUB_CLAUSE || seen.get(&key(h)).is_none_or(|n| *n < REPEATED));
    out
}

/// A heading text seen this often is a running header or footer.
const REPEATED: usize = 3;

/// Offsets where a line (or a block separated by a wide gap) starts, past its indentation.
/// PDF text separates words with no-break spaces as often as with spaces: every kind of
/// blank counts.
fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![skip_blanks(text, 0)];
    let mut run = 0;
    for (i, c) in text.char_indices() {
        if c == '\n' {
            starts.push(skip_blanks(text, i + 1));
            run = 0;
        } else if blank(c) {
            run += 1;
            if run == 3 {
                starts.push(skip_blanks(text, i));
            }
        } else {
            run = 0;
        }
    }
    starts.retain(|s| *s < text.len());
    starts.sort_unstable();
    starts.dedup();
    starts
}

/// A blank inside a line: any whitespace but a line break.
fn blank(c: char) -> bool {
    c.is_whitespace() && c != '\n'
}

fn skip_blanks(text: &str, from: usize) -> usize {
    from + text[from..]
        .char_indices()
        .find(|(_, c)| !c.is_whitespace())
        .map_or(text.len() - from, |(i, _)| i)
}

/// Length of the run of blanks at the start of `s`, in bytes.
fn gap(s: &str) -> usize {
    s.len() - s.trim_start_matches(blank).len()
}

/// Whether the text before `at` ended a sentence or a title line: a line that wrapped
/// mid-sentence ends in a lowercase word or a comma.
fn after_a_break(text: &str, at: usize) -> bool {
    let before = text[..at].trim_end();
    let Some(last) = before.chars().last() else {
        return true;
    };
    if !(last.is_lowercase() || last == ',') {
        return true;
    }
    // A previous line that is a title ("ARTICLE 9\nMiscellaneous\n9.01 …"): short, and
    // every longer word capitalised.
    let line = before.rsplit('\n').next().unwrap_or(before).trim();
    line.chars().count() <= 40
        && line
            .split_whitespace()
            .filter(|w| w.chars().count() >= 4)
            .all(|w| w.chars().next().is_some_and(char::is_uppercase))
}

fn heading_at(text: &str, at: usize) -> Option<Heading> {
    let rest = &text[at..];
    if let Some(h) = sub_clause(rest, at) {
        return Some(h);
    }
    if !after_a_break(text, at) {
        return None;
    }
    keyword_heading(rest, at)
        .or_else(|| decimal_heading(rest, at))
        .or_else(|| capital_line(text, at))
}

/// "(a) ", "(iv) ", "(12) ".
fn sub_clause(rest: &str, at: usize) -> Option<Heading> {
    let inner = rest.strip_prefix('(')?;
    let close = inner.find(')')?;
    let label = &inner[..close];
    let ok = (1..=2).contains(&label.len()) && label.chars().all(|c| c.is_ascii_lowercase())
        || (1..=5).contains(&label.len()) && label.chars().all(|c| "ivxl".contains(c))
        || (1..=2).contains(&label.len()) && label.chars().all(|c| c.is_ascii_digit())
        || label.len() == 1 && label.chars().all(|c| c.is_ascii_uppercase());
    let after = inner[close + 1..].chars().next()?;
    (ok && after.is_whitespace()).then(|| Heading {
        at,
        depth: SUB_CLAUSE,
        title: at..at + close + 2,
    })
}

/// "ARTICLE 12 – TERMINATION", "Section 4(b).", "Schedule B", "Item Two".
fn keyword_heading(rest: &str, at: usize) -> Option<Heading> {
    let word_end = rest.find(|c: char| !c.is_alphabetic())?;
    let word = rest[..word_end].to_lowercase();
    if !KEYWORDS.contains(&word.as_str()) {
        return None;
    }
    let gap = gap(&rest[word_end..]);
    if gap == 0 {
        return None;
    }
    let label_start = word_end + gap;
    let label_len = rest[label_start..]
        .find(|c: char| c.is_whitespace() || c == ':' || c == '–' || c == '—')
        .unwrap_or(rest.len() - label_start);
    let label = rest[label_start..label_start + label_len].trim_end_matches(['.', ',', ';']);
    let lower = label.to_lowercase();
    let numbered = !label.is_empty()
        && (label.chars().next().is_some_and(|c| c.is_ascii_digit())
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "().-".contains(c))
            || lower.chars().all(|c| "ivxlc".contains(c)) && label.len() <= 6
            || label.len() == 1 && label.chars().all(|c| c.is_ascii_uppercase())
            || NUMBER_WORDS.contains(&lower.as_str()));
    if !numbered {
        return None;
    }
    let depth = match word.as_str() {
        "section" | "clause" | "paragraph" => 1 + label.matches('.').count() as u8,
        _ => 0,
    };
    let label_end = label_start + label_len;
    // "Section 4(b). Payment is due…": the full stop closed the heading, unless a title in
    // capitals follows ("ARTICLE V. TERM").
    let next_word = rest[label_end..].split_whitespace().next().unwrap_or("");
    let closed = rest[..label_end].ends_with('.') && next_word.chars().any(char::is_lowercase);
    Some(Heading {
        at,
        depth,
        title: at..at
            + if closed {
                label_end
            } else {
                title_len(rest, label_end)
            },
    })
}

/// "9.07 Governing Law.", "12. TERMINATION", "3) Fees": a number of at most two digits
/// (three after a dot), then a capital letter or an opening parenthesis.
fn decimal_heading(rest: &str, at: usize) -> Option<Heading> {
    let bytes = rest.as_bytes();
    let mut i = 0;
    let mut parts = 0u8;
    loop {
        let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        let max = if parts == 0 { 2 } else { 3 };
        if digits == 0 || digits > max {
            return None;
        }
        i += digits;
        parts += 1;
        if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
            continue;
        }
        break;
    }
    if matches!(bytes.get(i), Some(b'.') | Some(b')')) {
        i += 1;
    }
    let gap = gap(&rest[i..]);
    let next = rest[i + gap..].chars().next()?;
    if gap == 0 || !(next.is_uppercase() || next == '(' || next == '"' || next == '“') {
        return None;
    }
    Some(Heading {
        at,
        depth: parts,
        title: at..at + title_len(rest, i),
    })
}

/// A line of capitals ("GOVERNING LAW", "MISCELLANEOUS PROVISIONS"): a title on its own.
/// Not the last line of a paragraph written in capitals (a disclaimer's "PARTICULAR
/// PURPOSE WHATSOEVER OF THE PRODUCTS."), which would otherwise be carried into every
/// chunk after it, and not a line of a script without capitals.
fn capital_line(text: &str, at: usize) -> Option<Heading> {
    if at > 0 && !text[..at].trim_end_matches(blank).ends_with('\n') {
        return None;
    }
    let line = text[at..].split('\n').next()?.trim_end();
    let letters = line.chars().filter(|c| c.is_alphabetic()).count();
    let uppercase = line.chars().filter(|c| c.is_uppercase()).count();
    let words = line.split_whitespace().count();
    let capitals = line.chars().all(|c| !c.is_lowercase()) && uppercase * 2 >= letters;
    if wrapped_capitals(&text[..at]) {
        return None;
    }
    (capitals && letters >= 4 && words <= TITLE_WORDS && line.len() <= 100).then(|| Heading {
        at,
        depth: 0,
        title: at..at + line.len(),
    })
}

/// Whether `before` ends with a long line whose last word is in capitals and that runs on
/// (no full stop, colon or semicolon at its end): the next line continues that paragraph.
/// Titles are short; a line of a paragraph set in capitals is as wide as the page.
fn wrapped_capitals(before: &str) -> bool {
    let line = before.trim_end().rsplit('\n').next().unwrap_or("").trim();
    let long = line.split_whitespace().count() > TITLE_WORDS / 2 || line.chars().count() > 60;
    let runs_on = !line.ends_with(['.', ':', ';']);
    let last_word = line.split_whitespace().last().unwrap_or("");
    long && runs_on && last_word.chars().any(char::is_uppercase) && !last_word.chars().any(char::is_lowercase)
}

/// Length of a heading's title from the end of its label: the words up to a full stop,
/// colon or line end, when they are few enough to be a title; otherwise the label alone.
fn title_len(rest: &str, label_end: usize) -> usize {
    let tail = &rest[label_end..];
    let mut words = 0;
    let mut in_word = false;
    for (i, c) in tail.char_indices() {
        match c {
            '\n' => return label_end + i,
            '.' | ':' if tail[i + 1..].chars().next().is_none_or(char::is_whitespace) => {
                return label_end + i + 1;
            }
            c if c.is_whitespace() => in_word = false,
            _ => {
                if !in_word {
                    words += 1;
                    in_word = true;
                    if words > TITLE_WORDS {
                        break;
                    }
                }
            }
        }
    }
    if words <= TITLE_WORDS {
        return rest.trim_end().len();
    }
    label_end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(u8, &str)> {
        headings(text)
            .into_iter()
            .map(|h| (h.depth, &text[h.title]))
            .collect()
    }

    #[test]
    fn numbered_headings_are_found_with_their_titles() {
        let t = "ARTICLE 9 – MISCELLANEOUS\n9.06 Notices. All notices shall be in writing.\n\
                 9.07 Governing Law. This Agreement shall be construed and interpreted in accordance with\n\
                 the laws of that State.\nSection 4(b). Payment is due in 30 days.\n(a) first; and\n(ii) second.";
        assert_eq!(
            found(t),
            vec![
                (0, "ARTICLE 9 – MISCELLANEOUS"),
                (2, "9.06 Notices."),
                (2, "9.07 Governing Law."),
                (1, "Section 4(b)."),
                (SUB_CLAUSE, "(a)"),
                (SUB_CLAUSE, "(ii)"),
            ]
        );
    }

    #[test]
    fn references_and_numbers_inside_sentences_are_not_headings() {
        // A wrapped line that starts with a reference, an amount or a year.
        let t = "The fee is set forth in\nSection 4.2 hereof and is due within\n30 Days of the invoice dated\n2019 and later.";
        assert!(found(t).is_empty(), "{:?}", found(t));
        // Body text after a long number run is not a title.
        let long = "3. Party A is responsible for the investment in the construction and operation of the whole system.";
        assert_eq!(found(long), vec![(1, "3.")]);
    }

    #[test]
    fn running_headers_are_not_sections() {
        let page = "CONFIDENTIAL TREATMENT REQUESTED\nThe text goes on.\n";
        let t = format!("{page}{page}{page}1. Term. It lasts.");
        assert_eq!(found(&t), vec![(1, "1. Term.")]);
    }

    #[test]
    fn capital_lines_and_wide_gaps_open_sections() {
        let t =
            "GOVERNING LAW\nThis Agreement is governed by Delaware law.   Item Two, Operation of the Project";
        assert_eq!(
            found(t),
            vec![(0, "GOVERNING LAW"), (0, "Item Two, Operation of the Project")]
        );
    }

    #[test]
    fn the_last_line_of_a_paragraph_in_capitals_is_not_a_title() {
        let t = "Supplier warrants the goods.\nEXCEPT AS SET FORTH HEREIN, SUPPLIER MAKES NO WARRANTY OF MERCHANTABILITY OR FITNESS FOR A\nPARTICULAR PURPOSE WHATSOEVER OF THE PRODUCTS.\nThe buyer inspects the goods.";
        assert!(found(t).is_empty(), "{:?}", found(t));
        let opened_in_a_numbered_clause = "10.5 Disclaimer. EXCEPT FOR THE EXPRESS WARRANTIES CONTAINED IN\nTHIS AGREEMENT, NEITHER PARTY MAKES ANY WARRANTY\nOR NON-INFRINGEMENT.";
        assert_eq!(found(opened_in_a_numbered_clause), vec![(2, "10.5 Disclaimer.")]);
        // A short title line above another still makes two titles.
        let stacked = "Recitals end here.\nARTICLE 9\nMISCELLANEOUS\nThe parties agree.";
        assert_eq!(found(stacked), vec![(0, "ARTICLE 9"), (0, "MISCELLANEOUS")]);
    }

    #[test]
    fn lines_of_a_script_without_capitals_are_not_titles() {
        let t = "The station is named below.\n广播电台);\nIt broadcasts daily.";
        assert!(found(t).is_empty(), "{:?}", found(t));
    }
}
