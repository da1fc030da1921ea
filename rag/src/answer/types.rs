//! Answer types: what kind of text answers a question. "Who" asks for a party (a named
//! organisation or person), "when" for a date or a period, "how long" for a period. A
//! sentence without anything of the asked type cannot answer the question, however many
//! of its words it shares — so when some candidates have the type, only they compete.

/// The kind of answer a question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerType {
    /// A named party ("who").
    Party,
    /// A date or a period ("when", "what date").
    Time,
    /// A period ("how long", "how many days").
    Duration,
}

/// The answer type of a question, if it asks for one.
pub fn of_question(q: &str) -> Option<AnswerType> {
    let q = q.to_lowercase();
    let words: Vec<&str> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let has = |w: &str| words.contains(&w);
    let phrase = |p: &str| q.contains(p);
    if phrase("how long") || phrase("how many days") || phrase("how many months") || phrase("how many years")
    {
        Some(AnswerType::Duration)
    } else if has("when") || has("date") || phrase("what day") {
        Some(AnswerType::Time)
    } else if has("who") || has("whom") || has("parties") {
        Some(AnswerType::Party)
    } else {
        None
    }
}

const ORG_MARKERS: &[&str] = &[
    "inc",
    "llc",
    "ltd",
    "corp",
    "corporation",
    "company",
    "co",
    "limited",
    "gmbh",
    "plc",
    "lp",
    "llp",
    "bank",
    "trust",
    "holdings",
    "group",
    "partners",
    "ag",
    "sa",
    "bv",
    "nv",
    "pte",
    "pty",
    "university",
    "fund",
];

const MONTHS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
];

const UNITS: &[&str] = &["year", "years", "month", "months", "day", "days", "week", "weeks"];

const NUMBER_WORDS: &[&str] = &[
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
    "fifteen",
    "twenty",
    "thirty",
    "forty",
    "forty-five",
    "sixty",
    "ninety",
    "hundred",
    "successive",
    "additional",
];

fn is_year(w: &str) -> bool {
    w.len() == 4 && (w.starts_with("19") || w.starts_with("20")) && w.chars().all(|c| c.is_ascii_digit())
}

fn has_duration(words: &[String]) -> bool {
    words.windows(2).any(|p| {
        let n = p[0].chars().all(|c| c.is_ascii_digit()) || NUMBER_WORDS.contains(&p[0].as_str());
        n && UNITS.contains(&p[1].as_str())
    }) || words.windows(3).any(|p| {
        // "thirty (30) days": number word, digits, unit.
        p[1].chars().all(|c| c.is_ascii_digit()) && UNITS.contains(&p[2].as_str())
    })
}

/// Whether `sentence` contains something of type `t`.
pub fn has(sentence: &str, t: AnswerType) -> bool {
    let words: Vec<String> = sentence
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    match t {
        AnswerType::Party => words.iter().any(|w| ORG_MARKERS.contains(&w.as_str())),
        AnswerType::Time => {
            words.iter().any(|w| is_year(w))
                || words
                    .windows(2)
                    .any(|p| MONTHS.contains(&p[0].as_str()) && p[1].chars().all(|c| c.is_ascii_digit()))
                || has_duration(&words)
        }
        AnswerType::Duration => has_duration(&words),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_have_types() {
        assert_eq!(of_question("Who are the parties?"), Some(AnswerType::Party));
        assert_eq!(of_question("When does it expire?"), Some(AnswerType::Time));
        assert_eq!(
            of_question("What is the date of this agreement?"),
            Some(AnswerType::Time)
        );
        assert_eq!(
            of_question("Does it renew, and for how long?"),
            Some(AnswerType::Duration)
        );
        assert_eq!(of_question("Which law governs?"), None);
    }

    #[test]
    fn sentences_are_recognised_by_what_they_contain() {
        assert!(has(
            "between Foundation Medicine, Inc. and Achaogen",
            AnswerType::Party
        ));
        assert!(!has(
            "Neither party may assign this Agreement.",
            AnswerType::Party
        ));
        assert!(has("dated as of March 1, 2019", AnswerType::Time));
        assert!(has("for a period of thirty (30) days", AnswerType::Duration));
        assert!(has("renews for successive one year terms", AnswerType::Duration));
        assert!(!has("the term of this Agreement", AnswerType::Duration));
    }
}
