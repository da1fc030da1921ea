//! Reading what a language model wrote, and the passages it was given, for the grounding
//! filter: sentences (a citation group after the final punctuation belongs to the
//! sentence before it), citation groups (`[1, 3]`, `[Passage 2]`) and prose references
//! ("according to passage 2"), words (numbers kept whole, contracted negations as `not`),
//! and the small English word lists the filter's rules name.

/// The sentences of generated text; a citation group after the final punctuation
/// (`… Jersey. [1]`) belongs to the sentence before it.
pub(super) fn sentences(text: &str) -> Vec<&str> {
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
pub(super) fn strip_citations(sentence: &str) -> (Vec<usize>, String) {
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
pub(super) fn words(text: &str) -> Vec<String> {
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
pub(super) fn is_number_word(w: &str) -> bool {
    crate::chunk::structure::NUMBER_WORDS.contains(&w) || MORE_NUMBER_WORDS.contains(&w)
}

/// English words that negate, except or bound a statement: a sentence that has one must
/// find it in its supporting passages.
pub(super) const TURNING_WORDS: &[&str] = &[
    "not", "no", "nor", "never", "neither", "none", "without", "unless", "except", "only", "before", "after",
    "within", "until", "cannot",
];

/// English function words and the phrases a model uses to refer to its sources: they carry
/// no claim about the contract, so they are neither required nor counted.
pub(super) fn is_function_word(w: &str) -> bool {
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

/// "1.", "2)", "(a)": the number of a list item the sentence splitter cut off.
pub(super) fn is_list_marker(s: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_words_are_neither_required_nor_counted() {
        assert!(is_function_word("the") && is_function_word("according") && !is_function_word("law"));
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
