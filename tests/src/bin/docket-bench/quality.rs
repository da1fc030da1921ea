//! `scripts/bench answer-quality [--cache FILE]`: the extractive answerer alone on the 40
//! cuad-dev contracts, without services: parse, chunk and embed every contract (cached in
//! FILE when given, so answerer changes can be measured in seconds), then for each clause
//! category ask its question restricted to each annotated contract (top 20 chunks by cosine, plus the contract's opening)
//! and count answers whose quote overlaps the lawyers' clause. The end-to-end figure comes
//! from the corpus test; this one isolates the answerer.

use anyhow::Context;
use docket_rag::answer::extractive::Extractive;
use docket_rag::answer::{Answer, Passage};
use docket_rag::chunk::{ChunkSettings, Chunker};
use docket_rag::embed::{EmbedSettings, Embedder, cosine};
use docket_rag::parse::{ContentKind, parse};
use docket_tests::asking::overlaps;
use docket_tests::{clauses, corpus};

type Doc = Vec<(String, Vec<f32>)>;

/// Chunks retrieved per question (as the corpus test asks for).
const TOP_K: usize = 20;

fn load(cache: Option<&str>, embedder: &Embedder, chunker: &Chunker) -> anyhow::Result<Vec<Doc>> {
    if let Some(path) = cache
        && let Ok(bytes) = std::fs::read(path)
    {
        return Ok(serde_json::from_slice(&bytes)?);
    }
    let mut docs = Vec::new();
    for n in 0..40 {
        let bytes = std::fs::read(corpus().join(format!("pdf/cuad-{n:02}.pdf")))?;
        let parsed = parse(ContentKind::Pdf, &bytes).with_context(|| format!("cuad-{n:02}"))?;
        let texts: Vec<String> = chunker.chunk(&parsed.pages).into_iter().map(|c| c.text).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = embedder.embed(&refs)?;
        docs.push(texts.into_iter().zip(vectors).collect());
        eprintln!("embedded cuad-{n:02}");
    }
    if let Some(path) = cache {
        std::fs::write(path, serde_json::to_vec(&docs)?)?;
    }
    Ok(docs)
}

/// Runs the evaluation.
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let cache = args
        .iter()
        .position(|a| a == "--cache")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let model_dir = std::path::PathBuf::from(docket_tests::model_dir());
    let embedder = Embedder::load(&EmbedSettings {
        model_dir: model_dir.clone(),
        library: std::env::var_os("DOCKET_ORT_LIBRARY").map(Into::into),
        threads: 2,
        batch: 16,
    })?;
    let chunker = Chunker::new(
        &model_dir.join("tokenizer.json"),
        ChunkSettings {
            max_tokens: 254,
            overlap: 32,
        },
    )?;
    let docs = load(cache, &embedder, &chunker)?;
    let verbose = args.iter().any(|a| a == "--verbose");
    let (mut hits, mut cases) = (0, 0);
    for (category, question) in docket_tests::asking::CLAUSE_QUESTIONS {
        let q = embedder.embed(&[question])?.remove(0);
        let labels = clauses::annotations(category);
        let (mut h, mut c) = (0, 0);
        for (n, snippets) in &labels {
            let long: Vec<&String> = snippets
                .iter()
                .filter(|s| s.split_whitespace().count() >= 3)
                .collect();
            let want: Vec<&String> = if long.is_empty() {
                snippets.iter().collect()
            } else {
                long
            };
            let mut scored: Vec<(f32, &String)> = docs[*n as usize]
                .iter()
                .map(|(t, v)| (cosine(&q, v), t))
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            let k = TOP_K;
            let mut top: Vec<(f32, &String)> = scored.iter().take(k).copied().collect();
            let ordinal_of = |t: &String| {
                docs[*n as usize]
                    .iter()
                    .position(|(x, _)| std::ptr::eq(x, t))
                    .unwrap_or(0) as u32
            };
            // As the answer job does: the contract's opening chunk is always a candidate.
            let opening = &docs[*n as usize][0].0;
            if !top.iter().any(|(_, t)| std::ptr::eq(*t, opening)) {
                let floor = top.iter().map(|p| p.0).fold(f32::MAX, f32::min);
                top.push((floor, opening));
            }
            let passages: Vec<Passage> = top
                .iter()
                .map(|(s, t)| Passage {
                    chunk_id: uuid::Uuid::nil(),
                    document_id: uuid::Uuid::nil(),
                    text: (*t).clone(),
                    page_start: 1,
                    page_end: 1,
                    ordinal: ordinal_of(t),
                    score: *s,
                })
                .collect();
            let specific = |w: &str| w.chars().any(|c| c.is_ascii_digit()) || chunker.count_tokens(w) > 1;
            let answer = Extractive::default().answer_with(question, &passages, &specific);
            let quotes: Vec<&str> = match &answer {
                Answer::Answered { citations, .. } => citations
                    .iter()
                    .map(|ci| &passages[ci.passage].text[ci.span.clone()])
                    .collect(),
                Answer::NoAnswer { .. } => vec![],
            };
            let hit = quotes.iter().any(|qt| want.iter().any(|s| overlaps(qt, s)));
            if !hit && verbose {
                let first: String = quotes.first().unwrap_or(&"-").chars().take(120).collect();
                let w: String = want[0].chars().take(100).collect();
                println!("  miss {category} cuad-{n:02}: got {first:?}\n       want {w:?}");
            }
            h += usize::from(hit);
            c += 1;
        }
        println!("{category}: {h}/{c} ({:.2})", h as f64 / c as f64);
        hits += h;
        cases += c;
    }
    println!("overall: {hits}/{cases} ({:.3})", hits as f64 / cases as f64);
    Ok(())
}
