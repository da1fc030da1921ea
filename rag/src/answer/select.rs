//! Choosing what to quote, by meaning. Every candidate is a clause: chunks follow the
//! contract's sections ([`crate::chunk`]), so a passage is one section (or a sentence-cut
//! piece of a long one, with its heading). Each is scored by how well it answers the
//! question — the embedding model's similarity between question and clause — plus how
//! strongly retrieval agreed on it (the fused dense + lexical rank):
//!
//! `score = similarity + RETRIEVAL_WEIGHT × fused / best_fused`
//!
//! The best clause is quoted whole (an exact substring of the cited chunk), then the next
//! ones within [`CITE_MARGIN`] of it, up to [`MAX_CITATIONS`]. No word of the question has
//! to appear in the text: a question in other words than the contract's is scored by
//! meaning like any other.
//!
//! "The documents do not answer this" is decided from the same score: below
//! [`NO_ANSWER_BELOW`], a threshold calibrated on data (BENCHMARKS.md, "Answer
//! selection"), not from word presence.

use super::fusion;
use super::{Answer, Answerer, Cited, NO_ANSWER, Passage, quoted};

/// Weight of the retrieval agreement next to the similarity (tuned on cuad-00…19).
pub const RETRIEVAL_WEIGHT: f32 = 0.10;
/// Best score under which nothing is quoted (calibrated on cuad-00…19: BENCHMARKS.md).
pub const NO_ANSWER_BELOW: f32 = 0.20;
/// Further clauses are cited when they score within this of the best.
pub const CITE_MARGIN: f32 = 0.08;
/// Most clauses one answer quotes.
pub const MAX_CITATIONS: usize = 3;

/// The selecting answerer (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct Selecting {
    /// Weight of retrieval agreement.
    pub retrieval_weight: f32,
    /// The `no_answer` threshold.
    pub no_answer_below: f32,
    /// Margin for further citations.
    pub cite_margin: f32,
    /// Most citations.
    pub max_citations: usize,
}

impl Default for Selecting {
    fn default() -> Self {
        Self {
            retrieval_weight: RETRIEVAL_WEIGHT,
            no_answer_below: NO_ANSWER_BELOW,
            cite_margin: CITE_MARGIN,
            max_citations: MAX_CITATIONS,
        }
    }
}

impl Selecting {
    /// The selection score of one passage.
    pub fn score(&self, p: &Passage) -> f32 {
        p.similarity + self.retrieval_weight * p.fused / fusion::best(2)
    }

    /// Passages ranked by selection score, best first: (index, score).
    pub fn ranked(&self, passages: &[Passage]) -> Vec<(usize, f32)> {
        let mut ranked: Vec<(usize, f32)> = passages
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.text.trim().is_empty())
            .map(|(i, p)| (i, self.score(p)))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
    }
}

impl Answerer for Selecting {
    fn answer(&self, _question: &str, passages: &[Passage]) -> Answer {
        let ranked = self.ranked(passages);
        let Some(&(_, best)) = ranked.first() else {
            return no_answer();
        };
        if best < self.no_answer_below {
            return no_answer();
        }
        let citations: Vec<Cited> = ranked
            .iter()
            .take_while(|(_, s)| *s >= best - self.cite_margin && *s >= self.no_answer_below)
            .take(self.max_citations)
            .map(|&(i, score)| Cited {
                passage: i,
                span: 0..passages[i].text.len(),
                score,
            })
            .collect();
        let text = quoted(citations.iter().map(|c| &passages[c.passage].text[c.span.clone()]));
        Answer::Answered { text, citations }
    }
}

fn no_answer() -> Answer {
    Answer::NoAnswer {
        message: NO_ANSWER.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn passage(text: &str, similarity: f32, fused: f32) -> Passage {
        Passage {
            chunk_id: Uuid::new_v4(),
            document_id: Uuid::nil(),
            text: text.into(),
            page_start: 1,
            page_end: 1,
            ordinal: 0,
            similarity,
            fused,
        }
    }

    #[test]
    fn the_clause_closest_in_meaning_is_quoted_first_whole() {
        let ps = vec![
            passage("Payment is due in 30 days.", 0.31, fusion::best(2)),
            passage("9.07 Governing Law. The laws of New Jersey apply.", 0.62, 0.02),
            passage("Notices go to the addresses above.", 0.12, 0.01),
        ];
        let Answer::Answered { text, citations } = Selecting::default().answer("What law governs?", &ps) else {
            panic!("answered");
        };
        assert_eq!(citations[0].passage, 1);
        assert_eq!(citations[0].span, 0..ps[1].text.len());
        assert_eq!(citations.len(), 1, "the others are far below the best");
        assert_eq!(text, "9.07 Governing Law. The laws of New Jersey apply. [1]");
    }

    #[test]
    fn retrieval_agreement_breaks_near_ties_and_close_clauses_are_cited_too() {
        let ps = vec![
            passage("Either party may terminate on notice.", 0.50, 0.005),
            passage("This Agreement may be terminated for convenience.", 0.49, fusion::best(2)),
        ];
        let Answer::Answered { citations, .. } = Selecting::default().answer("q", &ps) else {
            panic!("answered");
        };
        assert_eq!(
            citations.iter().map(|c| c.passage).collect::<Vec<_>>(),
            vec![1, 0]
        );
    }

    #[test]
    fn weak_or_missing_passages_are_no_answer() {
        let s = Selecting::default();
        assert!(matches!(s.answer("q", &[]), Answer::NoAnswer { .. }));
        let weak = [passage("Unrelated text about shipping.", 0.05, 0.0)];
        assert!(matches!(s.answer("q", &weak), Answer::NoAnswer { .. }));
        let blank = [passage("   ", 0.9, 0.03)];
        assert!(matches!(s.answer("q", &blank), Answer::NoAnswer { .. }));
    }
}
