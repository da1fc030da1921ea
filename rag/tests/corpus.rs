//! The 40 real contracts of CUAD (../shared/corpus/cuad-dev; The Atticus Project, CC BY 4.0):
//! every one parses with high fidelity to the reference text and chunks within the model's
//! token budget.

use docket_rag::chunk::{ChunkSettings, Chunker};
use docket_rag::parse::{ContentKind, parse};
use std::collections::HashMap;
use std::path::PathBuf;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn corpus() -> PathBuf {
    std::env::var("DOCKET_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("../shared/corpus/cuad-dev"))
}

fn tokenizer() -> PathBuf {
    std::env::var("DOCKET_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join(".cache/model"))
        .join("tokenizer.json")
}

fn words(s: &str) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for w in s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        *m.entry(w.to_lowercase()).or_insert(0) += 1;
    }
    m
}

/// Bag-of-words F1 of `got` against `want`.
fn f1(got: &str, want: &str) -> f64 {
    let (g, w) = (words(got), words(want));
    let overlap: usize = g.iter().map(|(k, n)| (*n).min(*w.get(k).unwrap_or(&0))).sum();
    let (gn, wn) = (g.values().sum::<usize>() as f64, w.values().sum::<usize>() as f64);
    if overlap == 0 {
        return 0.0;
    }
    let (p, r) = (overlap as f64 / gn, overlap as f64 / wn);
    2.0 * p * r / (p + r)
}

#[test]
fn all_cuad_contracts_parse_faithfully_and_chunk_within_budget() {
    let chunker = Chunker::new(&tokenizer(), ChunkSettings::default())
        .expect("tokenizer (run scripts/test to fetch the model)");
    let mut pdfs: Vec<PathBuf> = std::fs::read_dir(corpus().join("pdf"))
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    pdfs.sort();
    assert_eq!(pdfs.len(), 40);
    let (mut sum, mut min, mut chunks) = (0.0, 1.0f64, 0usize);
    for pdf in &pdfs {
        let name = pdf.file_stem().expect("stem").to_string_lossy().to_string();
        let parsed = parse(ContentKind::Pdf, &std::fs::read(pdf).expect("read"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let reference =
            std::fs::read_to_string(corpus().join("txt").join(format!("{name}.txt"))).expect("txt");
        let score = f1(&parsed.pages.join("\n"), &reference);
        sum += score;
        min = min.min(score);
        let cs = chunker.chunk(&parsed.pages);
        assert!(!cs.is_empty(), "{name}: no chunks");
        for (i, c) in cs.iter().enumerate() {
            assert_eq!(c.ordinal as usize, i);
            assert!(
                c.token_count as usize <= 254,
                "{name} chunk {i}: {} tokens",
                c.token_count
            );
            assert!(
                c.page_start >= 1 && c.page_start <= c.page_end && c.page_end as usize <= parsed.pages.len()
            );
        }
        assert!(
            cs.windows(2).all(|w| w[0].page_start <= w[1].page_start),
            "{name}: page spans go forward"
        );
        chunks += cs.len();
    }
    let mean = sum / pdfs.len() as f64;
    println!(
        "cuad-dev extraction fidelity: mean token-level F1 {mean:.4}, min {min:.4}, {chunks} chunks from 40 contracts"
    );
    assert!(mean >= 0.90, "mean F1 {mean} below 0.90");
}

#[test]
fn damaged_pdfs_fail_with_a_code_and_never_panic() {
    let good = std::fs::read(corpus().join("pdf/cuad-01.pdf")).expect("read");
    for cut in [good.len() / 2, good.len() / 10, 1500, 200] {
        match parse(ContentKind::Pdf, &good[..cut]) {
            Ok(p) => assert!(p.chars() > 0, "a repaired prefix still has text"),
            Err(e) => assert_eq!(
                e.code(),
                "corrupt_file",
                "a damaged file is reported as damaged: {e}"
            ),
        }
    }
    let mut flipped = good.clone();
    for i in (1000..flipped.len()).step_by(97) {
        flipped[i] ^= 0x5a;
    }
    if let Err(e) = parse(ContentKind::Pdf, &flipped) {
        assert!(["corrupt_file", "no_extractable_text"].contains(&e.code()), "{e}");
    }
    let err = parse(ContentKind::Pdf, b"%PDF-1.7\n garbage").expect_err("garbage");
    assert_eq!(err.code(), "corrupt_file");
}

#[test]
fn long_sections_are_cut_between_sentences_and_carry_their_heading() {
    let chunker = Chunker::new(
        &tokenizer(),
        ChunkSettings {
            max_tokens: 96,
            overlap: 16,
        },
    )
    .expect("tokenizer");
    let body = (0..60)
        .map(|i| format!("The parties agree to obligation {i} in full."))
        .collect::<Vec<_>>()
        .join(" ");
    let text = format!("ARTICLE 7 – OBLIGATIONS\n7.1 Duties. {body}\n7.2 Notices. Notices are in writing.");
    let cs = chunker.chunk(&[text.clone(), "Second page text.".into()]);
    assert!(cs.len() > 5, "{cs:?}");
    for c in &cs {
        assert!(
            c.token_count <= 96,
            "{} tokens: {:?}",
            c.token_count,
            c.embedded()
        );
        let whole = format!("{text}\n\nSecond page text.");
        assert!(
            whole.contains(&c.text),
            "chunk text is a substring of the document"
        );
    }
    assert_eq!(cs.last().expect("last").page_end, 2);
    // Every piece of 7.1 after the first carries both headings; no sentence is split.
    let pieces: Vec<_> = cs.iter().filter(|c| c.text.contains("in full.")).collect();
    assert!(pieces.len() >= 3);
    assert!(
        pieces[0].text.contains("\n7.1 Duties. The parties"),
        "{:?}",
        pieces[0].text
    );
    for p in &pieces[1..] {
        assert_eq!(p.heading, "ARTICLE 7 – OBLIGATIONS › 7.1 Duties.");
        assert!(p.text.starts_with("The parties agree"), "{:?}", p.text);
        assert!(p.text.ends_with('.'), "{:?}", p.text);
    }
    // The next section starts a chunk of its own, with its article carried.
    let notices = cs
        .iter()
        .find(|c| c.text.contains("Notices are in writing"))
        .expect("7.2");
    assert!(notices.text.starts_with("7.2 Notices."), "{:?}", notices.text);
    assert_eq!(notices.heading, "ARTICLE 7 – OBLIGATIONS");
    // The article's heading alone joined the section after it.
    assert!(
        cs[0].text.starts_with("ARTICLE 7 – OBLIGATIONS\n7.1 Duties."),
        "{:?}",
        cs[0].text
    );
    assert!(
        Chunker::new(
            &tokenizer(),
            ChunkSettings {
                max_tokens: 16,
                overlap: 16
            }
        )
        .is_err()
    );
    assert!(
        Chunker::new(
            std::path::Path::new("/nonexistent/tokenizer.json"),
            ChunkSettings::default()
        )
        .expect_err("missing")
        .to_string()
        .contains("/nonexistent/tokenizer.json")
    );
}
