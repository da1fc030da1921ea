//! The lawyers' labels of cuad-dev (`clauses.csv`, CUAD v1, CC BY 4.0, The Atticus
//! Project): the annotated text of one clause category per contract, and the check that a
//! retrieved chunk holds it.

use std::collections::{BTreeMap, HashSet};

/// Splits CSV text (RFC 4180 quoting) into rows of fields.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (vec![], vec![], String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

/// The annotated snippets of `category` per contract number, for contracts that have any.
/// The cell is a Python list literal of strings.
pub fn annotations(category: &str) -> BTreeMap<u32, Vec<String>> {
    let text = std::fs::read_to_string(crate::corpus().join("clauses.csv")).expect("clauses.csv");
    let rows = parse_csv(&text);
    let header = &rows[0];
    let col = header
        .iter()
        .position(|h| h == category)
        .expect("category column");
    let mut out = BTreeMap::new();
    for row in &rows[1..] {
        let Some(n) = row[0].strip_prefix("cuad-").and_then(|n| n.parse().ok()) else {
            continue;
        };
        let snippets = python_strings(&row[col]);
        if !snippets.is_empty() {
            out.insert(n, snippets);
        }
    }
    out
}

/// The string items of a Python list literal such as `['a', "b's"]`.
fn python_strings(cell: &str) -> Vec<String> {
    let mut out = vec![];
    let mut chars = cell.chars();
    while let Some(c) = chars.next() {
        if c != '\'' && c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(x) = chars.next() {
            match x {
                '\\' => {
                    if let Some(e) = chars.next() {
                        s.push(e);
                    }
                }
                x if x == c => break,
                x => s.push(x),
            }
        }
        out.push(s);
    }
    out
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// True when `chunk` holds the annotated `snippet`: at least 80 % of the snippet's distinct
/// words are in the chunk (robust to PDF extraction noise and to a snippet that runs past
/// the chunk's end).
pub fn holds(chunk: &str, snippet: &str) -> bool {
    let have: HashSet<String> = words(chunk).into_iter().collect();
    let want: HashSet<String> = words(snippet).into_iter().collect();
    if want.is_empty() {
        return false;
    }
    let found = want.iter().filter(|w| have.contains(*w)).count();
    found as f64 / want.len() as f64 >= 0.8
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_and_python_lists_parse() {
        let rows = super::parse_csv("a,b\n\"x, \"\"y\"\"\",\"['it''s', \"\"q's\"\"]\"\n");
        assert_eq!(rows[1][0], "x, \"y\"");
        let items = super::python_strings("['one', \"two's\"]");
        assert_eq!(items, vec!["one".to_owned(), "two's".to_owned()]);
        assert!(super::holds(
            "THE LAWS OF the State of Delaware govern",
            "laws of the State of Delaware"
        ));
        assert!(!super::holds("payment terms", "laws of the State of Delaware"));
    }
}
