//! `scripts/bench answer-quality [--half tune|report] [--grid] [--misses]`: the clause
//! evaluation (`docket_tests::evaluation`) on one half of cuad-dev, through the same
//! retrieval and selection the answer job runs (`docket_worker::retrieve::hybrid`, then
//! `Selecting`), in-process against the real services: the contracts of the half are
//! uploaded and processed by a real worker, then each question is embedded, retrieved with
//! the default `top_k` restricted to its contract, and answered.
//!
//! `--grid` (tune half only) also scores every combination of the selection's parameters
//! on the retrieved candidates and prints the best, and the `no_answer` threshold that
//! keeps false refusals at or under 3 % on the half: that is how the constants in
//! `docket_rag::answer::select` were chosen. The report half is never tuned on; the e2e
//! corpus test asserts its figures through the API.

use anyhow::{Context, bail};
use docket_platform::ids::DocumentId;
use docket_rag::answer::select::Selecting;
use docket_rag::answer::{Answer, Answerer, Passage};
use docket_tests::evaluation::{self, Ask, Half, Report};
use docket_tests::{contract, spawn_app};
use docket_worker::retrieve::{self, Candidate};
use std::collections::BTreeMap;
use std::time::Instant;

/// What a user gets without asking for more (`api/src/routes/queries.rs`).
const DEFAULT_TOP_K: usize = 5;

/// Runs the evaluation.
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let half = match args.iter().position(|a| a == "--half").and_then(|i| args.get(i + 1)) {
        None => Half::Tune,
        Some(h) if h == "tune" => Half::Tune,
        Some(h) if h == "report" => Half::Report,
        Some(other) => bail!("--half takes tune or report, not {other:?}"),
    };
    let grid = args.iter().any(|a| a == "--grid");
    if grid && half == Half::Report {
        bail!("--grid tunes, and the report half is never tuned on: use --half tune");
    }
    let app = spawn_app().await;
    let (_worker, ctx, store) = app.spawn_worker_with_handles().await;
    let t = app.create_tenant_on("quality", "enterprise", "shared").await;
    let token = app.owner_token(&t).await;
    let started = Instant::now();
    let mut ids: BTreeMap<u32, DocumentId> = BTreeMap::new();
    for n in half.contracts() {
        let v = app
            .upload_ready(&token, &format!("cuad-{n:02}.pdf"), contract(n))
            .await;
        let id = v["id"].as_str().context("document id")?;
        ids.insert(n, DocumentId(uuid::Uuid::parse_str(id)?));
    }
    println!(
        "{} contracts of the {} half processed in {:.0} s",
        ids.len(),
        half.name(),
        started.elapsed().as_secs_f64()
    );

    let (phrasings, asks) = evaluation::asks(half);
    let place = docket_platform::tenants::IsolationTier::Shared;
    let mut retrieved: Vec<(Ask, Vec<Candidate>)> = Vec::with_capacity(asks.len());
    let started = Instant::now();
    for ask in asks {
        let v = ctx
            .question_embedder
            .embed(vec![ask.question.clone()])
            .await?
            .remove(0);
        let doc = ids[&ask.contract];
        let found = retrieve::hybrid(&ctx, &store, t.id, place, &ask.question, v, DEFAULT_TOP_K, &[doc]).await?;
        retrieved.push((ask, found));
    }
    println!(
        "{} questions retrieved in {:.1} s",
        retrieved.len(),
        started.elapsed().as_secs_f64()
    );
    // Recall of retrieval alone: some candidate holds the annotated clause.
    let (mut held, mut annotated) = (0, 0);
    for (ask, found) in &retrieved {
        let texts: Vec<String> = found.iter().map(|c| c.hit.text.clone()).collect();
        let case = evaluation::judge(ask.clone(), true, &texts);
        annotated += usize::from(case.annotated);
        held += usize::from(case.any);
    }
    println!(
        "retrieval: some candidate holds the clause in {held}/{annotated} ({:.3})",
        held as f64 / annotated.max(1) as f64
    );
    let report = answer_all(&Selecting::default(), &retrieved, half, &phrasings);
    report.print(args.iter().any(|a| a == "--misses"));
    if grid {
        tune(&retrieved, half, &phrasings);
    }
    app.shutdown.cancel();
    Ok(())
}

fn passages(found: &[Candidate]) -> Vec<Passage> {
    found
        .iter()
        .map(|c| Passage {
            chunk_id: c.hit.id,
            document_id: c.hit.document,
            text: c.hit.text.clone(),
            page_start: c.hit.page_start,
            page_end: c.hit.page_end,
            ordinal: c.hit.ordinal,
            similarity: c.similarity,
            fused: c.fused,
        })
        .collect()
}

fn answer_all(s: &Selecting, retrieved: &[(Ask, Vec<Candidate>)], half: Half, phrasings: &[String]) -> Report {
    let cases = retrieved
        .iter()
        .map(|(ask, found)| {
            let ps = passages(found);
            match s.answer(&ask.question, &ps) {
                Answer::Answered { citations, .. } => {
                    let quotes: Vec<String> = citations
                        .iter()
                        .map(|c| ps[c.passage].text[c.span.clone()].to_owned())
                        .collect();
                    evaluation::judge(ask.clone(), true, &quotes)
                }
                Answer::NoAnswer { .. } => evaluation::judge(ask.clone(), false, &[]),
            }
        })
        .collect();
    Report {
        half,
        phrasings: phrasings.to_vec(),
        cases,
    }
}

/// Grid over the selection's parameters on the tune half; then the threshold.
fn tune(retrieved: &[(Ask, Vec<Candidate>)], half: Half, phrasings: &[String]) {
    let mut best: Option<(f64, Selecting)> = None;
    for weight in [0.0, 0.05, 0.1, 0.2, 0.3, 0.5] {
        for margin in [0.0, 0.02, 0.04, 0.08, 0.12, 0.2] {
            for max in [1, 2, 3] {
                let s = Selecting {
                    retrieval_weight: weight,
                    no_answer_below: f32::MIN,
                    cite_margin: margin,
                    max_citations: max,
                };
                let o = answer_all(&s, retrieved, half, phrasings).overall();
                // Both figures matter to a reader: the first quote and any quote.
                let objective = o.any_rate() + o.first_rate();
                println!(
                    "grid weight {weight:.2} margin {margin:.2} max {max}: any {:.3} first {:.3}",
                    o.any_rate(),
                    o.first_rate()
                );
                if best.as_ref().is_none_or(|(b, _)| objective > *b) {
                    best = Some((objective, s));
                }
            }
        }
    }
    let Some((_, s)) = best else { return };
    println!(
        "best on the tune half: retrieval_weight {:.2}, cite_margin {:.2}, max_citations {}",
        s.retrieval_weight, s.cite_margin, s.max_citations
    );
    // The threshold: best selection scores of the questions whose clause is annotated; the
    // 3rd percentile refuses at most ~3 % of them.
    let mut annotated: Vec<f32> = Vec::new();
    let mut absent: Vec<f32> = Vec::new();
    for (ask, found) in retrieved {
        let ps = passages(found);
        let top = s.ranked(&ps).first().map_or(f32::MIN, |r| r.1);
        if ask.want.is_some() {
            annotated.push(top);
        } else {
            absent.push(top);
        }
    }
    annotated.sort_by(f32::total_cmp);
    absent.sort_by(f32::total_cmp);
    let at = |v: &[f32], p: f64| v[((p / 100.0) * (v.len() - 1) as f64).round() as usize];
    let threshold = at(&annotated, 3.0);
    let refused_absent = absent.iter().filter(|x| **x < threshold).count();
    println!(
        "best score, annotated: p1 {:.3} p3 {:.3} p10 {:.3} p50 {:.3}; absent: p10 {:.3} p50 {:.3}",
        at(&annotated, 1.0),
        threshold,
        at(&annotated, 10.0),
        at(&annotated, 50.0),
        at(&absent, 10.0),
        at(&absent, 50.0)
    );
    println!(
        "no_answer threshold at the annotated 3rd percentile: {threshold:.3} (refuses {refused_absent} of {} absent-clause questions)",
        absent.len()
    );
}
