//! The grounding filter: what a language model wrote is kept only where the tenant's own
//! passages support it. The model is told to cite passages as `[n]`; it may still invent,
//! cite a passage it was not given, or cite the wrong one. Each sentence of its answer is
//! checked on its own:
//!
//! - a citation of a number that was not a passage (`[7]` of four) removes the sentence;
//! - every number (`60`, `1,000`, `2.5`, `ninety`), every capitalised name (the first word
//!   too, unless it is a function word) and every word that turns a clause's meaning
//!   (`not`, `no`, `never`, `without`, `unless`, `except`, `only`, `before`, `after`,
//!   `within`, `until`) must occur in the supporting passages: an invented figure or party,
//!   or a `not` the clause does not have, is removed even when the rest of the sentence is a
//!   faithful paraphrase;
//! - at least [`MIN_COVERAGE`] of the sentence's content words (function words aside) must
//!   occur in the supporting passages.
//!
//! The supporting passages are the ones it cites; when they do not support it (or it cites
//! none), the retrieved passage that supports it best is cited instead, if any does. The
//! checks are lexical on purpose: they can be explained to an auditor sentence by sentence,
//! they cannot be talked around by the model, and they are strict — a paraphrase in other
//! words is dropped rather than a fabrication kept. Every citation that survives quotes the
//! passage sentence closest to what was written, an exact substring of the chunk.

use super::super::{Cited, Passage};
use serde::Serialize;
use std::collections::HashSet;

/// Share of a sentence's content words that must occur in its supporting passages.
pub const MIN_COVERAGE: f32 = 0.6;

/// What the filter did, sentence by sentence (stored with the answer and summed by the
/// benchmark).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GroundingReport {
    /// Sentences the model wrote (those with at least one content word; list numbers and
    /// repeats aside).
    pub sentences: u32,
    /// Sentences kept.
    pub kept: u32,
    /// Kept sentences whose citation was supplied or corrected by the filter.
    pub attributed: u32,
    /// Removed: cited a passage number that was not given.
    pub invalid_citation: u32,
    /// Removed: a number, name or meaning-turning word (`not`, `only`, …) that no
    /// supporting passage holds.
    pub unverified_fact: u32,
    /// Removed: too few of its words in any passage.
    pub unsupported: u32,
    /// Dropped without counting as a sentence: the same words as a sentence already kept
    /// (small models repeat themselves).
    pub repeated: u32,
}

impl GroundingReport {
    /// Sentences removed.
    pub fn removed(&self) -> u32 {
        self.invalid_citation + self.unverified_fact + self.unsupported
    }

    /// Whether enough survived to answer with: at least one sentence, and at least half.
    pub fn enough(&self) -> bool {
        self.kept > 0 && self.kept * 2 >= self.sentences
    }
}

/// The filtered answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Grounded {
    /// The kept sentences, each followed by its citations' numbers (`[1]`, `[2]` …, in the
    /// order of [`Grounded::citations`]).
    pub text: String,
    /// One quote per (passage, sentence of the passage) cited, in order of first use.
    pub citations: Vec<Cited>,
    /// What was kept and removed.
    pub report: GroundingReport,
}

/// Filters `generated` against `passages` (numbered `[1]`…`[n]` in the prompt, in this
/// order).
pub fn ground(generated: &str, passages: &[Passage]) -> Grounded {
    let vocab: Vec<HashSet<String>> = passages
        .iter()
        .map(|p| words(&p.text).into_iter().collect())
        .collect();
    let mut report = GroundingReport::default();
    let mut citations: Vec<Cited> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    let mut said: HashSet<Vec<String>> = HashSet::new();
    for raw in sentences(generated) {
        let (cites, clean) = strip_citations(raw);
        let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
        let claim = Claim::of(&clean);
        if claim.content.is_empty() || is_list_marker(&clean) {
            continue;
        }
        if said.contains(&claim.content) {
            report.repeated += 1;
            continue;
        }
        report.sentences += 1;
        if cites.iter().any(|&n| n == 0 || n > passages.len()) {
            report.invalid_citation += 1;
            continue;
        }
        let cited: Vec<usize> = cites.iter().map(|n| n - 1).collect();
        let support = if cited.is_empty() {
            None
        } else {
            Some(claim.check(cited.iter().map(|&i| &vocab[i])))
        };
        let (sources, attributed) = match support {
            Some(Check::Supported(_)) => (cited, false),
            _ => match best_single(&claim, &vocab) {
                Some(i) => (vec![i], true),
                None => {
                    // Count why: against what it cited, else against every passage.
                    let why = support.unwrap_or_else(|| claim.check(vocab.iter()));
                    match why {
                        Check::UnverifiedFact => report.unverified_fact += 1,
                        _ => report.unsupported += 1,
                    }
                    continue;
                }
            },
        };
        report.kept += 1;
        said.insert(claim.content.clone());
        if attributed {
            report.attributed += 1;
        }
        let mut marks = Vec::new();
        for i in sources {
            let (span, score) = closest_sentence(&passages[i].text, &claim.content);
            let at = match citations.iter().position(|c| c.passage == i && c.span == span) {
                Some(at) => at,
                None => {
                    citations.push(Cited {
                        passage: i,
                        span,
                        score,
                    });
                    citations.len() - 1
                }
            };
            if !marks.contains(&(at + 1)) {
                marks.push(at + 1);
            }
        }
        parts.push(with_marks(&clean, &marks));
    }
    Grounded {
        text: parts.join(" "),
        citations,
        report,
    }
}

/// The content of one generated sentence.
struct Claim {
    /// Content words (lowercase), function words aside.
    content: Vec<String>,
    /// Numbers and names, each of which must be found.
    facts: Vec<String>,
}

enum Check {
    /// Supported, with its coverage.
    Supported(f32),
    /// A number or name is missing.
    UnverifiedFact,
    /// Too few words found.
    Unsupported,
}

impl Claim {
    fn of(sentence: &str) -> Self {
        let content: Vec<String> = words(sentence)
            .into_iter()
            .filter(|w| !is_function_word(w))
            .collect();
        let mut facts: Vec<String> = content
            .iter()
            .filter(|w| w.chars().any(|c| c.is_ascii_digit()) || is_number_word(w))
            .cloned()
            .collect();
        // Words that turn a clause's meaning are not filler: "may not" is not "may".
        facts.extend(
            words(sentence)
                .into_iter()
                .filter(|w| TURNING_WORDS.contains(&w.as_str())),
        );
        // Capitalised words: names of parties, places, laws (a sentence's first word too —
        // "Globex may end it" — unless it is a function word such as "The").
        for w in sentence.split_whitespace() {
            let w = w.trim_matches(|c: char| !c.is_alphanumeric());
            if w.chars().next().is_some_and(char::is_uppercase) {
                facts.extend(words(w).into_iter().filter(|x| !is_function_word(x)));
            }
        }
        facts.sort();
        facts.dedup();
        Self { content, facts }
    }

    fn check<'a>(&self, sources: impl Iterator<Item = &'a HashSet<String>> + Clone) -> Check {
        let found = |w: &String| sources.clone().any(|s| s.contains(w));
        if !self.facts.iter().all(found) {
            return Check::UnverifiedFact;
        }
        let covered = self.content.iter().filter(|w| found(w)).count() as f32 / self.content.len() as f32;
        if covered >= MIN_COVERAGE {
            Check::Supported(covered)
        } else {
            Check::Unsupported
        }
    }
}

/// The single passage that supports `claim` best, if any does.
fn best_single(claim: &Claim, vocab: &[HashSet<String>]) -> Option<usize> {
    vocab
        .iter()
        .enumerate()
        .filter_map(|(i, v)| match claim.check(std::iter::once(v)) {
            Check::Supported(c) => Some((i, c)),
            _ => None,
        })
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i)
}

/// The byte range of the passage's sentence sharing most words with `content`, trimmed,
/// and the share of `content` it holds.
fn closest_sentence(text: &str, content: &[String]) -> (std::ops::Range<usize>, f32) {
    let mut best = (0..text.len(), -1.0f32);
    for range in sentence_ranges(text) {
        let have: HashSet<String> = words(&text[range.clone()]).into_iter().collect();
        let share = content.iter().filter(|w| have.contains(*w)).count() as f32 / content.len().max(1) as f32;
        if share > best.1 {
            best = (range, share);
        }
    }
    let (range, share) = best;
    let slice = &text[range.clone()];
    let start = range.start + (slice.len() - slice.trim_start().len());
    let end = range.end - (slice.len() - slice.trim_end().len());
    if start >= end {
        let t = text.trim();
        let s = text.len() - text.trim_start().len();
        return (s..s + t.len(), share.max(0.0));
    }
    (start..end, share.max(0.0))
}

/// "1.", "2)", "(a)": the number of a list item the sentence splitter cut off.
fn is_list_marker(s: &str) -> bool {
    let core = s.trim_matches(|c: char| matches!(c, '.' | ')' | '(' | ':'));
    !core.is_empty()
        && core.len() <= 3
        && core.chars().all(|c| c.is_ascii_alphanumeric())
        && s.len() <= 5
        && (core.chars().all(|c| c.is_ascii_digit()) || s.contains('(') || s.contains(')'))
}

/// The text up to the end of its last complete sentence (a terminal `.`, `!` or `?`, with
/// the citation group after it): what is kept of an answer the model was cut off in.
pub fn complete_sentences(text: &str) -> &str {
    let Some(last) = sentences(text).into_iter().rev().find(|s| {
        let (_, clean) = strip_citations(s);
        clean.trim_end().ends_with(['.', '!', '?'])
    }) else {
        return "";
    };
    // `sentences` returns sub-slices of `text`: the end of `last` is an offset in it.
    let end = last.as_ptr() as usize - text.as_ptr() as usize + last.len();
    &text[..end]
}

/// `sentence` with its citation marks before its final punctuation: `… Jersey [1].`
fn with_marks(sentence: &str, marks: &[usize]) -> String {
    let tags: String = marks.iter().map(|m| format!(" [{m}]")).collect();
    match sentence.char_indices().last() {
        Some((i, c)) if matches!(c, '.' | '!' | '?') => format!("{}{}{}", &sentence[..i], tags, c),
        _ => format!("{sentence}{tags}."),
    }
}

/// Byte ranges of the sentences of a passage: ends at `.`, `!`, `?` or `;` before
/// whitespace, and at line breaks between blank-line-separated blocks.
pub(crate) fn sentence_ranges(text: &str) -> Vec<std::ops::Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..b.len() {
        let end = match b[i] {
            b'.' | b'!' | b'?' | b';' => b.get(i + 1).is_none_or(u8::is_ascii_whitespace),
            b'\n' => b.get(i + 1) == Some(&b'\n'),
            _ => false,
        };
        if end && i + 1 > start {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < b.len() {
        out.push(start..b.len());
    }
    out.retain(|r| !text[r.clone()].trim().is_empty());
    out
}

/// The sentences of generated text; a citation group after the final punctuation
/// (`… Jersey. [1]`) belongs to the sentence before it.
fn sentences(text: &str) -> Vec<&str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        let end = match b[i] {
            b'\n' => true,
            b'.' | b'!' | b'?' => b.get(i + 1).is_none_or(u8::is_ascii_whitespace),
            _ => false,
        };
        if !end {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        loop {
            let k = j + text[j..].len() - text[j..].trim_start_matches([' ', '\t']).len();
            match citation_group(&text[k..]) {
                Some((len, _)) => j = k + len,
                None => break,
            }
        }
        out.push(&text[start..j]);
        start = j;
        i = j;
    }
    if start < b.len() {
        out.push(&text[start..]);
    }
    out
}

/// A citation group at the start of `s`: `[1]`, `[1, 3]`, `[2-3]`, `[Passage 2]`; its
/// length in bytes and the numbers it names.
fn citation_group(s: &str) -> Option<(usize, Vec<usize>)> {
    let close = s.strip_prefix('[')?.find(']')? + 1;
    let inner = s[1..close].trim().to_ascii_lowercase();
    let inner = inner
        .strip_prefix("passages")
        .or_else(|| inner.strip_prefix("passage"))
        .unwrap_or(&inner);
    let mut numbers = Vec::new();
    for tok in inner
        .replace(" and ", ",")
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|t| !t.is_empty())
    {
        if let Some((a, b)) = tok.split_once('-') {
            let (a, b) = (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?);
            if b < a || b - a > 20 {
                return None;
            }
            numbers.extend(a..=b);
        } else {
            numbers.push(tok.parse::<usize>().ok()?);
        }
    }
    (!numbers.is_empty()).then_some((close + 1, numbers))
}

/// The citation numbers of a sentence and its text without them.
fn strip_citations(sentence: &str) -> (Vec<usize>, String) {
    let mut cites = Vec::new();
    let mut clean = String::with_capacity(sentence.len());
    let mut rest = sentence;
    while let Some(at) = rest.find('[') {
        clean.push_str(&rest[..at]);
        match citation_group(&rest[at..]) {
            Some((len, numbers)) => {
                cites.extend(numbers);
                rest = &rest[at + len..];
            }
            None => {
                clean.push('[');
                rest = &rest[at + 1..];
            }
        }
    }
    clean.push_str(rest);
    let clean = prose_references(&clean, &mut cites);
    cites.sort_unstable();
    cites.dedup();
    // "… Jersey ." after removing a mark: no space before punctuation.
    let clean = clean.replace(" .", ".").replace(" ,", ",");
    (cites, clean)
}

/// "According to passage 2, …", "passages 1 and 3 say …": the numbers are citations (the
/// prompt's numbering, which the answer renumbers), not facts to check; the words become
/// "the cited passage(s)".
fn prose_references(text: &str, cites: &mut Vec<usize>) -> String {
    let tokens: Vec<&str> = text.split(' ').collect();
    let number = |t: &str| {
        t.trim_end_matches([',', '.', ';', ':', ')'])
            .parse::<usize>()
            .ok()
    };
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let word = tokens[i].to_ascii_lowercase();
        let plural = word == "passages";
        if (word == "passage" || plural) && tokens.get(i + 1).is_some_and(|t| number(t).is_some()) {
            let mut j = i + 1;
            let mut last = tokens[i];
            while let Some(t) = tokens.get(j) {
                if let Some(n) = number(t) {
                    cites.push(n);
                    last = t;
                    j += 1;
                } else if matches!(*t, "and" | "or" | "&")
                    && tokens.get(j + 1).is_some_and(|t| number(t).is_some())
                {
                    j += 1;
                } else {
                    break;
                }
            }
            // Keep the punctuation that ended the reference ("passage 2, the term …").
            let tail = last.trim_start_matches(|c: char| c.is_ascii_digit());
            let capital = tokens[i].starts_with(['P']);
            let phrase = match (capital, plural) {
                (true, true) => "The cited passages",
                (true, false) => "The cited passage",
                (false, true) => "the cited passages",
                (false, false) => "the cited passage",
            };
            out.push(format!("{phrase}{tail}"));
            i = j;
        } else {
            out.push(tokens[i].to_owned());
            i += 1;
        }
    }
    out.join(" ")
}

/// Lowercase words: letters and digits; a `,` or `.` between digits stays inside a number
/// (`1,000` → `1000`, `2.5` → `2.5`); a possessive `'s` is dropped; a contracted negation
/// is a `not` (`can't` → `ca`, `not`), so it is checked like one.
pub(crate) fn words(text: &str) -> Vec<String> {
    let text = text
        .replace("n't", " not")
        .replace("n’t", " not")
        .replace("N'T", " NOT");
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let between_digits = |c: char| {
            (c == ',' || c == '.')
                && i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(char::is_ascii_digit)
        };
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        } else if between_digits(c) {
            if c == '.' {
                cur.push('.');
            }
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            // "Seller's" → "seller".
            if (c == '\'' || c == '’')
                && chars.get(i + 1) == Some(&'s')
                && !chars.get(i + 2).is_some_and(|c| c.is_alphanumeric())
            {
                continue;
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.retain(|w| !(w == "s" || w.is_empty()));
    out
}

/// Numbers written as words beyond those headings use (`chunk::structure`): checked like
/// digits ("ninety days" against "thirty days").
const MORE_NUMBER_WORDS: &[&str] = &[
    "zero", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand",
    "million", "billion", "first", "second", "third", "half", "twice", "once",
];

/// Whether `w` (lowercase) is a number written as a word.
fn is_number_word(w: &str) -> bool {
    crate::chunk::structure::NUMBER_WORDS.contains(&w) || MORE_NUMBER_WORDS.contains(&w)
}

/// English words that negate, except or bound a statement: a sentence that has one must
/// find it in its supporting passages.
const TURNING_WORDS: &[&str] = &[
    "not", "no", "nor", "never", "neither", "none", "without", "unless", "except", "only", "before", "after",
    "within", "until", "cannot",
];

/// English function words and the phrases a model uses to refer to its sources: they carry
/// no claim about the contract, so they are neither required nor counted.
fn is_function_word(w: &str) -> bool {
    const WORDS: &[&str] = &[
        "a",
        "about",
        "above",
        "all",
        "also",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "each",
        "either",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "here",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "may",
        "might",
        "more",
        "most",
        "must",
        "my",
        "of",
        "on",
        "or",
        "other",
        "our",
        "out",
        "over",
        "shall",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "under",
        "up",
        "upon",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "whether",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yes",
        // How a model refers to its sources.
        "according",
        "passage",
        "passages",
        "document",
        "documents",
        "text",
        "provided",
        "given",
        "states",
        "stated",
        "says",
        "say",
        "said",
        "cited",
        "mentions",
        "mentioned",
        "indicates",
        "answer",
    ];
    WORDS.contains(&w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(text: &str) -> Passage {
        Passage {
            chunk_id: uuid::Uuid::new_v4(),
            document_id: uuid::Uuid::nil(),
            text: text.into(),
            page_start: 1,
            page_end: 1,
            ordinal: 0,
            similarity: 0.5,
            fused: 0.5,
        }
    }

    fn contract() -> Vec<Passage> {
        vec![
            passage(
                "9.07 Governing Law. This Agreement shall be construed and interpreted in accordance with the laws of the State of New Jersey. Venue lies in Newark.",
            ),
            passage(
                "12.1 Term. This Agreement shall remain in force for five (5) years from the Effective Date, and either party may end it on 60 days' notice.",
            ),
        ]
    }

    #[test]
    fn function_words_are_neither_required_nor_counted() {
        assert!(is_function_word("the") && is_function_word("according") && !is_function_word("law"));
    }

    #[test]
    fn a_supported_cited_sentence_is_kept_with_an_exact_quote() {
        let p = contract();
        let g = ground(
            "This Agreement is governed by the laws of the State of New Jersey [1].",
            &p,
        );
        assert_eq!(g.report.kept, 1, "{:?}", g.report);
        assert_eq!(
            g.text,
            "This Agreement is governed by the laws of the State of New Jersey [1]."
        );
        let c = &g.citations[0];
        assert_eq!(c.passage, 0);
        assert!(p[0].text[c.span.clone()].starts_with("This Agreement shall be construed"));
        assert!(p[0].text[c.span.clone()].ends_with("New Jersey."));
    }

    #[test]
    fn invented_numbers_and_names_are_removed_even_in_a_faithful_sentence() {
        let p = contract();
        let g = ground(
            "Either party may end this Agreement on 120 days' notice [2]. It is governed by the Federal Trade Commission Act [1].",
            &p,
        );
        assert_eq!(g.report.sentences, 2);
        assert_eq!(g.report.kept, 0);
        assert_eq!(g.report.unverified_fact, 2, "{:?}", g.report);
        assert!(g.citations.is_empty() && g.text.is_empty());
        assert!(!g.report.enough());
    }

    #[test]
    fn a_negation_a_number_in_words_or_an_invented_first_word_is_not_supported() {
        let p = contract();
        for bad in [
            "Either party may not end it on 60 days' notice [2].",
            "This Agreement shall remain in force for ninety years [2].",
            "Globex may end it on 60 days' notice [2].",
            "The Agreement is never governed by the laws of New Jersey [1].",
        ] {
            let g = ground(bad, &p);
            assert_eq!(
                (g.report.kept, g.report.unverified_fact),
                (0, 1),
                "{bad}: {:?}",
                g.report
            );
        }
        let good = ground("Either party may end it on 60 days' notice [2].", &p);
        assert_eq!(good.report.kept, 1, "{:?}", good.report);
    }

    #[test]
    fn list_numbers_are_not_sentences_and_a_cut_off_answer_keeps_its_complete_sentences() {
        let g = ground(
            "1. The term is five years [2].\n2. Venue lies in Newark.",
            &contract(),
        );
        assert_eq!((g.report.sentences, g.report.kept), (2, 2), "{:?}", g.report);
        assert_eq!(
            complete_sentences("The term is five years. [2] Venue lies in"),
            "The term is five years. [2]"
        );
        assert_eq!(complete_sentences("Venue lies in"), "");
        assert_eq!(
            complete_sentences("It is five years [2]."),
            "It is five years [2]."
        );
    }

    #[test]
    fn contracted_negations_are_negations_and_prose_references_are_citations() {
        let p = contract();
        let g = ground("Either party can't end it on 60 days' notice [2].", &p);
        assert_eq!(
            (g.report.kept, g.report.unverified_fact),
            (0, 1),
            "{:?}",
            g.report
        );
        let g = ground("According to passage 2, the term is five years.", &p);
        assert_eq!(g.report.kept, 1, "{:?}", g.report);
        assert_eq!(
            g.text,
            "According to the cited passage, the term is five years [1]."
        );
        assert_eq!(g.citations[0].passage, 1);
        let g = ground(
            "Passages 1 and 2 say the Agreement is governed by New Jersey law.",
            &p,
        );
        assert_eq!(g.report.kept, 1, "{:?}", g.report);
        assert!(g.text.starts_with("The cited passages say"), "{}", g.text);
        let g = ground("According to passage 7, the term is five years.", &p);
        assert_eq!(g.report.invalid_citation, 1, "{:?}", g.report);
    }

    #[test]
    fn a_repeated_sentence_is_kept_once() {
        let g = ground(
            "The term is five years [2]. The term is five years [2]. The term is five years.",
            &contract(),
        );
        assert_eq!(
            (g.report.sentences, g.report.kept, g.report.repeated),
            (1, 1, 2),
            "{:?}",
            g.report
        );
        assert_eq!(g.text, "The term is five years [1].");
    }

    #[test]
    fn citing_a_passage_that_was_not_given_removes_the_sentence() {
        let g = ground(
            "The laws of New Jersey govern [7]. The term is five years [2].",
            &contract(),
        );
        assert_eq!(
            (g.report.invalid_citation, g.report.kept),
            (1, 1),
            "{:?}",
            g.report
        );
        assert_eq!(g.text, "The term is five years [1].");
        assert_eq!(g.citations[0].passage, 1, "renumbered: the only citation is [1]");
    }

    #[test]
    fn an_uncited_or_miscited_sentence_is_attributed_to_the_passage_that_supports_it() {
        let p = contract();
        let g = ground(
            "Venue lies in Newark. The Agreement remains in force for five years [1].",
            &p,
        );
        assert_eq!((g.report.kept, g.report.attributed), (2, 2), "{:?}", g.report);
        assert_eq!(
            g.citations.iter().map(|c| c.passage).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(&p[0].text[g.citations[0].span.clone()], "Venue lies in Newark.");
    }

    #[test]
    fn a_sentence_in_other_words_is_unsupported_and_too_little_falls_back() {
        let g = ground(
            "Disputes will be handled by arbitration in London under ICC rules. The laws of New Jersey apply [1].",
            &contract(),
        );
        assert_eq!(g.report.sentences, 2);
        assert_eq!(g.report.kept, 1);
        assert!(g.report.enough(), "half survived");
        let none = ground("the weather was pleasant all week long.", &contract());
        assert_eq!(
            (none.report.unsupported, none.report.kept),
            (1, 0),
            "{:?}",
            none.report
        );
        assert!(!none.report.enough());
    }

    #[test]
    fn citation_groups_and_sentence_ends_are_read_in_the_usual_shapes() {
        assert_eq!(citation_group("[1, 3] x").map(|g| g.1), Some(vec![1, 3]));
        assert_eq!(citation_group("[2-3]").map(|g| g.1), Some(vec![2, 3]));
        assert_eq!(citation_group("[Passage 2]").map(|g| g.1), Some(vec![2]));
        assert_eq!(citation_group("[see above]"), None);
        assert_eq!(
            sentences("It is five years. [2] Then more."),
            vec!["It is five years. [2]", " Then more."]
        );
        assert_eq!(
            words("Seller's fee is 1,000 or 2.5%."),
            vec!["seller", "fee", "is", "1000", "or", "2.5"]
        );
    }
}
