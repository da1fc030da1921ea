//! Choosing what to quote, by meaning. Every candidate is a clause: chunks follow the
//! contract's sections ([`crate::chunk`]), so a passage is one section (or a sentence-cut
//! piece of a long one, with its headings). Each candidate is scored by a small model,
//! fitted on cuad-00…19 (`scripts/bench answer-quality --grid`), over signals that exist for
//! any contract and any question:
//!
//! - the embedding model's similarity between question and clause (its meaning);
//! - where dense search and lexical (BM25) search ranked it: the head of each ranking,
//!   `1 / rank`, so that a clause first in either counts, and agreement counts twice;
//! - for the document's opening (where a contract states its title, parties and date), its
//!   similarity once more.
//!
//! The model is fitted listwise (a softmax over each question's candidates, the loss of
//! "which candidate holds the clause"), which is what the first citation needs, then
//! calibrated (Platt scaling over all candidates), so the score is the probability that the
//! clause answers the question. Retrieval keeps the best `top_k` by it
//! ([`Selecting::ranked`]); the best clause is quoted whole (an exact substring of the cited
//! chunk), then the next ones within [`CITE_MARGIN`] of it, up to [`MAX_CITATIONS`]. No word
//! of the question has to appear in the text.
//!
//! "The documents do not answer this" is decided from meaning: when no passage's similarity
//! reaches [`NO_ANSWER_BELOW`], a threshold calibrated on the tune half between questions
//! whose clause is there and questions no contract answers (BENCHMARKS.md, "Answer
//! selection"), not from word presence.

use super::{Answer, Answerer, Cited, NO_ANSWER, Passage, quoted};

/// The model's weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Intercept (from the calibration).
    pub bias: f32,
    /// Cosine of question and clause.
    pub similarity: f32,
    /// `1 / rank` in the dense ranking (0 when dense search did not return it).
    pub dense_top: f32,
    /// `1 / rank` in the lexical ranking (0 when lexical search did not return it).
    pub lexical_top: f32,
    /// The opening's cosine (0 for other chunks).
    pub opening_similarity: f32,
}

/// Fitted on cuad-00…19 (BENCHMARKS.md, "Answer selection"): listwise over the 37,171
/// fused candidates of the 1,680 tune questions, each labelled by whether it holds the
/// annotated clause, then calibrated.
pub const WEIGHTS: Weights = Weights {
    bias: -4.563,
    similarity: 4.275,
    dense_top: 0.797,
    lexical_top: 0.929,
    opening_similarity: 5.469,
};
/// Best similarity under which nothing is quoted: the 3rd percentile of the best cosine of
/// tune questions whose clause is annotated (it refuses 206 of 240 off-topic questions).
pub const NO_ANSWER_BELOW: f32 = 0.161;
/// Further clauses are cited when their probability is within this of the best. On the
/// tune half every passage the default `top_k` keeps was worth quoting (any-citation 0.75
/// with four, 0.785 with five; the first citation is the same either way), so the margin
/// is the whole range of a probability: an answer lists them all, best first.
pub const CITE_MARGIN: f32 = 1.0;
/// Most clauses one answer quotes.
pub const MAX_CITATIONS: usize = 5;

/// The selecting answerer (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct Selecting {
    /// The scoring model.
    pub weights: Weights,
    /// The `no_answer` threshold on the best passage's similarity.
    pub no_answer_below: f32,
    /// Margin for further citations.
    pub cite_margin: f32,
    /// Most citations.
    pub max_citations: usize,
}

impl Default for Selecting {
    fn default() -> Self {
        Self {
            weights: WEIGHTS,
            no_answer_below: NO_ANSWER_BELOW,
            cite_margin: CITE_MARGIN,
            max_citations: MAX_CITATIONS,
        }
    }
}

/// The model's inputs for one passage, in the order of [`Weights`] (bias excluded).
pub fn features(p: &Passage) -> [f32; 4] {
    let opening = if p.ordinal == 0 { 1.0 } else { 0.0 };
    let top = |rank: Option<u32>| rank.map_or(0.0, |r| 1.0 / r.max(1) as f32);
    [
        p.similarity,
        top(p.dense_rank),
        top(p.lexical_rank),
        opening * p.similarity,
    ]
}

impl Selecting {
    /// The probability that a passage answers the question.
    pub fn score(&self, p: &Passage) -> f32 {
        let w = &self.weights;
        let x = features(p);
        let z = w.bias
            + w.similarity * x[0]
            + w.dense_top * x[1]
            + w.lexical_top * x[2]
            + w.opening_similarity * x[3];
        1.0 / (1.0 + (-z).exp())
    }

    /// Passages ranked by score, best first: (index, score).
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
        // Refused on meaning alone: a document's opening is a likely answer to questions
        // about the agreement as a whole, but it does not make an unrelated question
        // answerable.
        let closest = ranked
            .iter()
            .map(|(i, _)| passages[*i].similarity)
            .fold(f32::MIN, f32::max);
        if closest < self.no_answer_below {
            return no_answer();
        }
        let citations: Vec<Cited> = ranked
            .iter()
            .take_while(|(_, s)| *s >= best - self.cite_margin)
            .take(self.max_citations)
            .map(|&(i, score)| Cited {
                passage: i,
                span: 0..passages[i].text.len(),
                score,
            })
            .collect();
        let text = quoted(
            citations
                .iter()
                .map(|c| &passages[c.passage].text[c.span.clone()]),
        );
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

    /// A passage with its cosine and its (dense, lexical) ranks.
    fn passage(text: &str, ordinal: u32, similarity: f32, ranks: (Option<u32>, Option<u32>)) -> Passage {
        Passage {
            chunk_id: Uuid::new_v4(),
            document_id: Uuid::nil(),
            text: text.into(),
            page_start: 1,
            page_end: 1,
            ordinal,
            similarity,
            dense_rank: ranks.0,
            lexical_rank: ranks.1,
        }
    }

    #[test]
    fn the_clause_closest_in_meaning_is_quoted_first_whole() {
        let ps = vec![
            passage("Payment is due in 30 days.", 4, 0.20, (Some(2), Some(2))),
            passage(
                "9.07 Governing Law. The laws of New Jersey apply.",
                9,
                0.75,
                (Some(1), Some(1)),
            ),
            passage("Notices go to the addresses above.", 7, 0.05, (Some(3), None)),
        ];
        let narrow = Selecting {
            cite_margin: 0.05,
            ..Selecting::default()
        };
        let Answer::Answered { text, citations } = narrow.answer("What law governs?", &ps) else {
            panic!("answered");
        };
        assert_eq!(citations[0].passage, 1);
        assert_eq!(citations[0].span, 0..ps[1].text.len());
        assert_eq!(citations.len(), 1, "the others are far below the best");
        assert_eq!(text, "9.07 Governing Law. The laws of New Jersey apply. [1]");
        // The default answer never quotes more than its cap, best first.
        let Answer::Answered { citations, .. } = Selecting::default().answer("q", &ps) else {
            panic!("answered");
        };
        assert!(citations.len() <= MAX_CITATIONS);
        assert!(citations.windows(2).all(|w| w[0].score >= w[1].score));
    }

    #[test]
    fn retrieval_agreement_breaks_near_ties() {
        let s = Selecting::default();
        // First by meaning alone, against second by meaning and first by words.
        let alone = passage("Either party may terminate on notice.", 3, 0.50, (Some(1), None));
        let agreed = passage(
            "This Agreement may be terminated for convenience.",
            5,
            0.49,
            (Some(2), Some(1)),
        );
        assert!(s.score(&agreed) > s.score(&alone));
        let ranked = s.ranked(&[alone, agreed]);
        assert_eq!(ranked[0].0, 1);
    }

    #[test]
    fn weak_or_missing_passages_are_no_answer() {
        let s = Selecting::default();
        assert!(matches!(s.answer("q", &[]), Answer::NoAnswer { .. }));
        let weak = [passage("Unrelated text about shipping.", 2, 0.0, (None, Some(1)))];
        assert!(matches!(s.answer("q", &weak), Answer::NoAnswer { .. }));
        let blank = [passage("   ", 2, 0.9, (Some(1), Some(1)))];
        assert!(matches!(s.answer("q", &blank), Answer::NoAnswer { .. }));
    }
}
