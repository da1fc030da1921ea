//! Words for matching questions to contract text: lowercase tokens, stop words removed, a
//! light suffix-stripping stemmer (so `governed`, `governs` and `governing` meet), and a
//! small legal thesaurus (a question about "expiry" should find "the term ends").

/// Words that carry no meaning for matching.
const STOP: &[&str] = &[
    "a",
    "about",
    "after",
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
    "before",
    "being",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "each",
    "for",
    "from",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "me",
    "more",
    "most",
    "my",
    "no",
    "nor",
    "not",
    "of",
    "on",
    "or",
    "other",
    "our",
    "out",
    "over",
    "own",
    "same",
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
    "through",
    "to",
    "under",
    "until",
    "up",
    "upon",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
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
    "shall",
    "may",
    "must",
    "hereof",
    "herein",
    "hereto",
    "hereunder",
    "thereof",
    "tell",
    "say",
    "says",
    "said",
    "please",
    "contract",
    "document",
    "documents",
    "clause",
    "clauses",
    "provision",
    "provisions",
    "section",
    "non",
    "mention",
    "mentions",
    "quote",
    "explain",
    "describe",
    "summarize",
];

/// Suffixes stripped (longest first), with the minimum stem left behind.
const SUFFIXES: &[&str] = &[
    "izations", "ization", "ational", "fulness", "iveness", "ations", "itions", "ation", "ition", "itive",
    "ments", "ment", "ances", "ences", "ance", "ence", "ities", "ity", "ings", "ing", "ated", "ates", "ate",
    "ably", "ibly", "able", "ible", "ions", "ion", "ives", "ive", "ally", "ly", "ied", "ies", "ers", "er",
    "ed", "es", "al", "s", "e",
];

/// The stem of a lowercase word.
pub fn stem(word: &str) -> String {
    let mut w = word.to_owned();
    // Two passes: "expires" → "expire" → "expir".
    for _ in 0..2 {
        let Some(suffix) = SUFFIXES
            .iter()
            .find(|s| w.ends_with(*s) && w.len() >= s.len() + 3)
        else {
            break;
        };
        w.truncate(w.len() - suffix.len());
        if matches!(*suffix, "ies" | "ied") {
            w.push('y');
        }
    }
    w
}

/// The meaningful words of `text`, lowercased, in order (duplicates kept).
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 2)
        .map(str::to_lowercase)
        .filter(|w| !STOP.contains(&w.as_str()))
        .collect()
}

/// Stems of the meaningful words of `text`, in order (duplicates kept).
pub fn terms(text: &str) -> Vec<String> {
    words(text).iter().map(|w| stem(w)).collect()
}

/// Groups of stems that mean the same thing in contracts. A question term matches text
/// containing any member of its group (at a discount, see `extractive`).
const THESAURUS: &[&[&str]] = &[
    &["govern", "law", "constru"],
    &["expir", "term", "termin", "end"],
    &["renew", "extend", "exten", "succes", "automatic"],
    &["termin", "cancel", "cancell"],
    &["conveni", "cau", "reason", "discret"],
    &["liabil", "liabl", "damag"],
    &["cap", "capp", "limit", "exc", "aggreg", "maximum"],
    &["compet", "solicit", "exclu"],
    &["party", "between", "among"],
    &["dat", "day", "effect"],
    &["sign", "execut"],
    &["pay", "fee", "compens", "pric"],
    &["confidenti", "disclos", "secret"],
];

/// Stems related to `stem` by the thesaurus (not including itself).
pub fn related(stem: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = THESAURUS
        .iter()
        .filter(|g| g.contains(&stem))
        .flat_map(|g| g.iter().copied())
        .filter(|s| *s != stem)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflections_meet() {
        for (a, b) in [
            ("governed", "governing"),
            ("governs", "govern"),
            ("expires", "expiration"),
            ("terminate", "terminated"),
            ("renewal", "renewed"),
            ("dated", "date"),
            ("parties", "party"),
        ] {
            assert_eq!(stem(a), stem(b), "{a} / {b}");
        }
        assert_eq!(stem("law"), "law");
        assert_ne!(stem("payment"), stem("party"));
    }

    #[test]
    fn questions_lose_stop_words_and_find_synonyms() {
        assert_eq!(
            terms("Which state's laws govern this Agreement?"),
            vec!["stat", "law", "govern", "agre"]
        );
        assert!(related(&stem("expiration")).contains(&"term"));
        assert!(related("zebra").is_empty());
    }
}
