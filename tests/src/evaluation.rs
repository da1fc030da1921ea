//! The clause evaluation (issue 16): every CUAD category with at least 8 annotated
//! contracts in cuad-dev, four phrasings each (`fixtures/clause_questions.json`, written
//! before any tuning), asked through the real API of each contract of one half of the
//! corpus, restricted to that contract, with the default `top_k` a user gets.
//!
//! The split is fixed: decisions are tuned on cuad-00…19 ([`Half::Tune`]); figures are
//! reported, and CI asserts, on cuad-20…39 ([`Half::Report`]), which no tuning looks at.
//! A citation hits when its quote shares a run of ≥ 6 consecutive words (or the whole label
//! if shorter) with a clause the lawyers annotated ([`crate::asking::overlaps`]).

use crate::TestApp;
use crate::asking::overlaps;
use crate::clauses;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Which contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// cuad-00…19: the only contracts tuning may look at.
    Tune,
    /// cuad-20…39: reported, never tuned on.
    Report,
}

impl Half {
    /// Contract numbers of the half.
    pub fn contracts(self) -> std::ops::Range<u32> {
        match self {
            Half::Tune => 0..20,
            Half::Report => 20..40,
        }
    }

    /// Its name as printed.
    pub fn name(self) -> &'static str {
        match self {
            Half::Tune => "tune (cuad-00..19)",
            Half::Report => "report (cuad-20..39)",
        }
    }
}

#[derive(Debug, Deserialize)]
struct Fixture {
    phrasings: Vec<String>,
    categories: Vec<CategoryQuestions>,
}

/// One category's questions, one per phrasing.
#[derive(Debug, Clone, Deserialize)]
pub struct CategoryQuestions {
    /// CUAD category (a column of `clauses.csv`).
    pub category: String,
    /// Questions in the order of the phrasings.
    pub questions: Vec<String>,
}

/// The phrasing names and the categories with their questions.
pub fn questions() -> (Vec<String>, Vec<CategoryQuestions>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/clause_questions.json");
    let text = std::fs::read_to_string(&path).expect("fixtures/clause_questions.json");
    let f: Fixture = serde_json::from_str(&text).expect("clause questions");
    for c in &f.categories {
        assert_eq!(c.questions.len(), f.phrasings.len(), "{}", c.category);
    }
    (f.phrasings, f.categories)
}

/// One question asked of one contract.
#[derive(Debug, Clone)]
pub struct Case {
    /// Category.
    pub category: String,
    /// Phrasing name.
    pub phrasing: String,
    /// Contract number.
    pub contract: u32,
    /// Whether the lawyers annotated the category in this contract.
    pub annotated: bool,
    /// `answered` or `no_answer`.
    pub answered: bool,
    /// Some citation hits an annotated clause.
    pub any: bool,
    /// The first citation does.
    pub first: bool,
    /// The first citation's quote (for the misses printout).
    pub quote: String,
}

/// Counts over a set of cases.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    /// Annotated cases.
    pub annotated: usize,
    /// Of those, some citation hit.
    pub any: usize,
    /// Of those, the first citation hit.
    pub first: usize,
    /// Of those, refused.
    pub refused: usize,
    /// Cases where the category is not annotated.
    pub absent: usize,
    /// Of those, answered anyway.
    pub absent_answered: usize,
}

impl Tally {
    fn add(&mut self, c: &Case) {
        if c.annotated {
            self.annotated += 1;
            self.any += usize::from(c.any);
            self.first += usize::from(c.first);
            self.refused += usize::from(!c.answered);
        } else {
            self.absent += 1;
            self.absent_answered += usize::from(c.answered);
        }
    }

    fn rate(n: usize, of: usize) -> f64 {
        if of == 0 { 0.0 } else { n as f64 / of as f64 }
    }

    /// Hit rate of any citation.
    pub fn any_rate(&self) -> f64 {
        Self::rate(self.any, self.annotated)
    }

    /// Hit rate of the first citation.
    pub fn first_rate(&self) -> f64 {
        Self::rate(self.first, self.annotated)
    }

    /// Refused although annotated.
    pub fn false_no_answer(&self) -> f64 {
        Self::rate(self.refused, self.annotated)
    }

    /// Answered although not annotated.
    pub fn absent_answer_rate(&self) -> f64 {
        Self::rate(self.absent_answered, self.absent)
    }
}

/// Everything one evaluation asked.
#[derive(Debug, Clone)]
pub struct Report {
    /// Which half.
    pub half: Half,
    /// Phrasing names.
    pub phrasings: Vec<String>,
    /// Every case.
    pub cases: Vec<Case>,
}

impl Report {
    /// Over all cases.
    pub fn overall(&self) -> Tally {
        self.tally(|_| true)
    }

    /// Over the cases `keep` selects.
    pub fn tally(&self, keep: impl Fn(&Case) -> bool) -> Tally {
        let mut t = Tally::default();
        self.cases.iter().filter(|c| keep(c)).for_each(|c| t.add(c));
        t
    }

    /// Per (category, phrasing), in fixture order.
    pub fn cells(&self) -> BTreeMap<(String, String), Tally> {
        let mut out: BTreeMap<(String, String), Tally> = BTreeMap::new();
        for c in &self.cases {
            out.entry((c.category.clone(), c.phrasing.clone()))
                .or_default()
                .add(c);
        }
        out
    }

    /// The weakest (category, phrasing) by any-citation hit rate.
    pub fn weakest(&self) -> Option<((String, String), Tally)> {
        self.cells()
            .into_iter()
            .filter(|(_, t)| t.annotated > 0)
            .min_by(|a, b| a.1.any_rate().total_cmp(&b.1.any_rate()))
    }

    /// Prints the table: per category and phrasing, then per phrasing, then overall.
    pub fn print(&self, misses: bool) {
        println!("clause evaluation, {} half", self.half.name());
        println!(
            "{:<28} {:<9} {:>4} {:>6} {:>6} {:>7} {:>7}",
            "category", "phrasing", "n", "any", "first", "refused", "absent→answered"
        );
        for ((cat, ph), t) in self.cells() {
            println!(
                "{:<28} {:<9} {:>4} {:>6.2} {:>6.2} {:>7.2} {:>7.2} ({} absent)",
                cat,
                ph,
                t.annotated,
                t.any_rate(),
                t.first_rate(),
                t.false_no_answer(),
                t.absent_answer_rate(),
                t.absent
            );
        }
        for ph in &self.phrasings {
            let t = self.tally(|c| &c.phrasing == ph);
            println!(
                "phrasing {ph:<9}: any {:.3}, first {:.3}, false no_answer {:.3}, absent answered {:.3} ({} annotated cases)",
                t.any_rate(),
                t.first_rate(),
                t.false_no_answer(),
                t.absent_answer_rate(),
                t.annotated
            );
        }
        let t = self.overall();
        println!(
            "overall: any-citation {:.3} ({}/{}), first-citation {:.3}, false no_answer {:.3}, absent-clause answer rate {:.3} ({} cases)",
            t.any_rate(),
            t.any,
            t.annotated,
            t.first_rate(),
            t.false_no_answer(),
            t.absent_answer_rate(),
            t.absent
        );
        if let Some(((cat, ph), w)) = self.weakest() {
            println!("weakest cell: {cat} / {ph}: {:.2}", w.any_rate());
        }
        if misses {
            for c in self.cases.iter().filter(|c| c.annotated && !c.any) {
                let q: String = c.quote.chars().take(120).collect();
                println!(
                    "  miss {} / {} cuad-{:02}: {q:?}",
                    c.category, c.phrasing, c.contract
                );
            }
        }
    }
}

/// The labels that count for a contract: substantive ones (≥ 3 words) when it has any, as
/// very short labels ("Company") overlap almost anything.
fn wanted(snippets: &[String]) -> Vec<String> {
    let long: Vec<String> = snippets
        .iter()
        .filter(|s| s.split_whitespace().count() >= 3)
        .cloned()
        .collect();
    if long.is_empty() { snippets.to_vec() } else { long }
}

/// Questions no contract answers, for calibrating `no_answer` (written for that purpose,
/// not taken from any test).
pub const OFF_TOPIC: [&str; 12] = [
    "What is the capital of France?",
    "How do I bake sourdough bread?",
    "Who won the football world cup in 1998?",
    "What is the boiling point of water at sea level?",
    "How many moons does Jupiter have?",
    "What is a good name for a puppy?",
    "Translate good morning into Spanish.",
    "What time does the sun set in winter?",
    "Recommend a science fiction novel.",
    "How tall is Mount Everest?",
    "What is the chemical formula of table salt?",
    "How do I change a flat bicycle tyre?",
];

/// One question to ask of one contract.
#[derive(Debug, Clone)]
pub struct Ask {
    /// Category.
    pub category: String,
    /// Phrasing name.
    pub phrasing: String,
    /// The question.
    pub question: String,
    /// Contract number.
    pub contract: u32,
    /// The annotated clauses that count, if the category is annotated for the contract.
    pub want: Option<Vec<String>>,
}

/// Every question of every category for every contract of `half`.
pub fn asks(half: Half) -> (Vec<String>, Vec<Ask>) {
    let (phrasings, categories) = questions();
    let mut out = Vec::new();
    for cat in &categories {
        let labels = clauses::annotations(&cat.category);
        for n in half.contracts() {
            let want = labels.get(&n).map(|s| wanted(s));
            for (ph, q) in phrasings.iter().zip(&cat.questions) {
                out.push(Ask {
                    category: cat.category.clone(),
                    phrasing: ph.clone(),
                    question: q.clone(),
                    contract: n,
                    want: want.clone(),
                });
            }
        }
    }
    (phrasings, out)
}

/// Judges what was answered to `ask`: `quotes` of the citations in order.
pub fn judge(ask: Ask, answered: bool, quotes: &[String]) -> Case {
    let hits = |quote: &String| {
        ask.want
            .as_ref()
            .is_some_and(|w| w.iter().any(|s| overlaps(quote, s)))
    };
    Case {
        annotated: ask.want.is_some(),
        answered,
        any: quotes.iter().any(hits),
        first: quotes.first().is_some_and(hits),
        quote: quotes.first().cloned().unwrap_or_default(),
        category: ask.category,
        phrasing: ask.phrasing,
        contract: ask.contract,
    }
}

/// Asks every question of every contract of `half` (`ids`: contract number → document id,
/// all uploaded by the tenant of `token`) through the API, restricted to that contract,
/// default `top_k`.
pub async fn evaluate(app: &TestApp, token: &str, ids: &BTreeMap<u32, String>, half: Half) -> Report {
    let (phrasings, asks) = asks(half);
    let cases: Vec<Case> = futures::stream::iter(asks)
        .map(|ask| async move {
            let id = ids
                .get(&ask.contract)
                .expect("every contract of the half is uploaded");
            let v: Value = app.ask(token, &ask.question, json!({"document_ids": [id]})).await;
            let quotes: Vec<String> = v["citations"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c["quote"].as_str().unwrap_or("").to_owned())
                .collect();
            judge(ask, v["status"] == "answered", &quotes)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    Report {
        half,
        phrasings,
        cases,
    }
}
