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
use super::reading::{
    TURNING_WORDS, is_function_word, is_list_marker, is_number_word, sentences, strip_citations, words,
};
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

/// The byte range of the passage's sentence (as written, trimmed) sharing most words with
/// `content`, and the share of `content` it holds.
fn closest_sentence(text: &str, content: &[String]) -> (std::ops::Range<usize>, f32) {
    let mut best: Option<(std::ops::Range<usize>, f32)> = None;
    for range in crate::chunk::sentences::as_written(text) {
        let have: HashSet<String> = words(&text[range.clone()]).into_iter().collect();
        let share = content.iter().filter(|w| have.contains(*w)).count() as f32 / content.len().max(1) as f32;
        if best.as_ref().is_none_or(|b| share > b.1) {
            best = Some((range, share));
        }
    }
    // A passage is never blank (chunks hold text); the whole text is the fallback all the same.
    best.unwrap_or((0..text.len(), 0.0))
}

/// `sentence` with its citation marks before its final punctuation: `… Jersey [1].`
fn with_marks(sentence: &str, marks: &[usize]) -> String {
    let tags: String = marks.iter().map(|m| format!(" [{m}]")).collect();
    match sentence.char_indices().last() {
        Some((i, c)) if matches!(c, '.' | '!' | '?') => format!("{}{}{}", &sentence[..i], tags, c),
        _ => format!("{sentence}{tags}."),
    }
}

#[cfg(test)]
mod tests {
    use super::super::reading::complete_sentences;
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
            dense_rank: None,
            lexical_rank: None,
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
}
