//! The extractive answerer: scores every sentence of the retrieved passages by how much of
//! the question it covers (question terms weighted by how rare they are among the
//! candidates, thesaurus matches at a discount) and by how similar its passage is to the
//! question, then quotes the best few. It never writes a word that is not in the passages;
//! when nothing covers the question well enough it says so instead.

use super::terms::{self, related, terms};
use super::{Answer, Answerer, Cited, Passage};
use super::{sentences, types};
use std::collections::HashSet;

/// Tuning of the extractive answerer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Extractive {
    /// Least weighted share of the question a sentence must cover.
    pub min_coverage: f32,
    /// Least cosine similarity of the sentence's passage to the question.
    pub min_similarity: f32,
    /// Largest weighted share of the question that may be absent from every candidate.
    pub max_unknown: f32,
    /// Most citations in one answer.
    pub max_citations: usize,
    /// A further citation must score at least this share of the best one.
    pub runner_up: f32,
}

impl Default for Extractive {
    fn default() -> Self {
        Self {
            min_coverage: 0.4,
            max_unknown: 0.45,
            min_similarity: 0.15,
            max_citations: 3,
            runner_up: 0.6,
        }
    }
}

/// Weight of a thesaurus match relative to the word itself.
const RELATED: f32 = 0.6;
/// Share of a sentence's score that comes from its passage's similarity.
const SIMILARITY_SHARE: f32 = 0.3;
/// Added to a sentence holding the kind of thing the question asks for.
const TYPE_BONUS: f32 = 0.2;
/// Added, for "who" and "when" questions, to a typed sentence in a contract's opening.
const OPENING_BONUS: f32 = 0.5;

struct Candidate {
    passage: usize,
    span: std::ops::Range<usize>,
    stems: HashSet<String>,
}

/// Why there is no answer, for the user.
pub const NO_ANSWER: &str = "None of your documents answers this closely enough. Try rephrasing the question, \
     or check that the contract you have in mind is uploaded and ready.";

impl Answerer for Extractive {
    fn answer(&self, question: &str, passages: &[Passage]) -> Answer {
        self.answer_with(question, passages, &|w| w.chars().any(|c| c.is_ascii_digit()))
    }
}

impl Extractive {
    /// Answers, treating the question words `specific` says are specific (names, codes,
    /// words outside the model's vocabulary) as required: if one of them appears nowhere in
    /// the retrieved passages, the documents do not answer this question.
    pub fn answer_with(
        &self,
        question: &str,
        passages: &[Passage],
        specific: &dyn Fn(&str) -> bool,
    ) -> Answer {
        let no = || Answer::NoAnswer {
            message: NO_ANSWER.into(),
        };
        let mut asked: Vec<String> = terms(question);
        asked.sort_unstable();
        asked.dedup();
        if asked.is_empty() || passages.is_empty() {
            return no();
        }
        let candidates: Vec<Candidate> = passages
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                sentences::split(&p.text).into_iter().map(move |span| Candidate {
                    passage: i,
                    stems: terms(&p.text[span.clone()]).into_iter().collect(),
                    span,
                })
            })
            .collect();
        let n = candidates.len() as f32;
        // Rare terms decide: "agreement" is in every sentence, "Delaware" in one.
        let weights: Vec<f32> = asked
            .iter()
            .map(|t| {
                let df = candidates.iter().filter(|c| c.stems.contains(t)).count() as f32;
                (1.0 + (n + 1.0) / (df + 1.0)).ln()
            })
            .collect();
        let total: f32 = weights.iter().sum();
        let related: Vec<Vec<&str>> = asked.iter().map(|t| related(t)).collect();
        // Question words found nowhere in what was retrieved, not even as a synonym (a name,
        // a code, a term these documents never use): when they carry much of the question,
        // the documents do not answer it, however well the rest matches.
        let unknown: f32 = asked
            .iter()
            .zip(&weights)
            .zip(&related)
            .filter(|((t, _), rel)| {
                !candidates
                    .iter()
                    .any(|c| c.stems.contains(*t) || rel.iter().any(|r| c.stems.contains(*r)))
            })
            .map(|((_, w), _)| *w)
            .sum();
        let specific_missing = terms::words(question).iter().filter(|w| specific(w)).any(|w| {
            let t = terms::stem(w);
            let rel = terms::related(&t);
            !candidates
                .iter()
                .any(|c| c.stems.contains(&t) || rel.iter().any(|r| c.stems.contains(*r)))
        });
        if specific_missing || unknown / total > self.max_unknown {
            return no();
        }
        let best_similarity = passages
            .iter()
            .map(|p| p.score)
            .fold(f32::MIN, f32::max)
            .max(1e-6);

        // When the question asks for a kind of thing (a party, a date, a period), sentences
        // holding one are preferred.
        let wanted = types::of_question(question);
        let typed: Vec<bool> = candidates
            .iter()
            .map(|c| wanted.is_some_and(|t| types::has(&passages[c.passage].text[c.span.clone()], t)))
            .collect();
        // (lexical score, coverage, candidate)
        let mut lexical: Vec<(f32, f32, usize)> = Vec::new();
        for (ci, c) in candidates.iter().enumerate() {
            let covered: f32 = asked
                .iter()
                .zip(&weights)
                .zip(&related)
                .map(|((t, w), rel)| {
                    let m = if c.stems.contains(t) {
                        1.0
                    } else if rel.iter().any(|r| c.stems.contains(*r)) {
                        RELATED
                    } else {
                        0.0
                    };
                    w * m
                })
                .sum();
            let coverage = covered / total;
            let sim = passages[c.passage].score;
            if sim < self.min_similarity {
                continue;
            }
            let mut score = (1.0 - SIMILARITY_SHARE) * coverage
                + SIMILARITY_SHARE * (sim / best_similarity).clamp(0.0, 1.0);
            if typed[ci] {
                score += TYPE_BONUS;
                // Contracts name their parties and date in the opening.
                if matches!(wanted, Some(types::AnswerType::Party | types::AnswerType::Time))
                    && passages[c.passage].ordinal == 0
                {
                    score += OPENING_BONUS;
                }
            }
            lexical.push((score, coverage, ci));
        }
        lexical.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.2.cmp(&b.2)));
        let mut scored: Vec<(f32, usize)> = lexical
            .iter()
            .filter(|(_, cov, _)| *cov >= self.min_coverage)
            .map(|(s, _, ci)| (*s, *ci))
            .collect();
        if scored.is_empty() {
            return no();
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let top = scored[0].0;
        let mut citations: Vec<Cited> = Vec::new();
        let mut quoted: HashSet<String> = HashSet::new();
        for (score, ci) in scored {
            if citations.len() == self.max_citations || score < top * self.runner_up {
                break;
            }
            let c = &candidates[ci];
            let quote = &passages[c.passage].text[c.span.clone()];
            // Overlapping chunks repeat sentences: quote each once.
            if !quoted.insert(quote.split_whitespace().collect::<Vec<_>>().join(" ")) {
                continue;
            }
            citations.push(Cited {
                passage: c.passage,
                span: c.span.clone(),
                score,
            });
        }
        let text = citations
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let quote = passages[c.passage].text[c.span.clone()]
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                format!("{quote} [{}]", i + 1)
            })
            .collect::<Vec<_>>()
            .join("\n");
        Answer::Answered { text, citations }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn passage(text: &str, score: f32) -> Passage {
        Passage {
            chunk_id: Uuid::new_v4(),
            document_id: Uuid::new_v4(),
            text: text.into(),
            page_start: 1,
            page_end: 1,
            ordinal: 0,
            score,
        }
    }

    #[test]
    fn quotes_the_sentence_that_answers() {
        let ps = [
            passage(
                "The Supplier shall deliver the Products monthly. This Agreement shall be governed by the laws of \
                 the State of Delaware. Notices go to the addresses above.",
                0.62,
            ),
            passage(
                "Payment is due within thirty days of invoice. Late payments bear interest.",
                0.31,
            ),
        ];
        let Answer::Answered { text, citations } =
            Extractive::default().answer("Which law governs this agreement?", &ps)
        else {
            panic!("expected an answer");
        };
        let c = &citations[0];
        let quote = &ps[c.passage].text[c.span.clone()];
        assert_eq!(
            quote,
            "This Agreement shall be governed by the laws of the State of Delaware."
        );
        assert!(text.starts_with("This Agreement shall be governed") && text.contains("[1]"));
        for c in &citations {
            assert!(ps[c.passage].text.get(c.span.clone()).is_some());
        }
    }

    #[test]
    fn unrelated_questions_get_no_answer() {
        let ps = [passage(
            "Payment is due within thirty days of invoice. Late payments bear interest.",
            0.12,
        )];
        let a = Extractive::default().answer("What is the ZEBRA-7731 canary code?", &ps);
        assert!(matches!(a, Answer::NoAnswer { .. }), "{a:?}");
        // Most of the question is covered, but not its one specific word.
        let vocabulary = |w: &str| w == "quillfeather";
        let a = Extractive::default().answer_with("When are Quillfeather payments due?", &ps, &vocabulary);
        assert!(matches!(a, Answer::NoAnswer { .. }), "{a:?}");
        assert!(matches!(
            Extractive::default().answer("the of and", &ps),
            Answer::NoAnswer { .. }
        ));
        assert!(matches!(
            Extractive::default().answer("payment", &[]),
            Answer::NoAnswer { .. }
        ));
    }

    #[test]
    fn thesaurus_matches_count_at_a_discount() {
        let ps = [passage(
            "The term of this Agreement ends on December 31, 2020 unless renewed.",
            0.5,
        )];
        let a = Extractive::default().answer("When does it expire?", &ps);
        assert!(matches!(a, Answer::Answered { .. }), "{a:?}");
    }
}
