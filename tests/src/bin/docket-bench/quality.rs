//! `scripts/bench answer-quality [--half tune|report] [--grid] [--misses] [--dump DIR]`: the clause
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
use docket_rag::answer::select::{Selecting, Weights, features};
use docket_rag::answer::{Answer, Answerer};
use docket_tests::evaluation::{self, Ask, Half, Report};
use docket_tests::{contract, spawn_app_with};
use docket_worker::retrieve::{self, Candidate};
use std::collections::BTreeMap;
use std::time::Instant;

#[path = "quality_dump.rs"]
mod dump;

/// What a user gets without asking for more (`api/src/routes/queries.rs`).
const DEFAULT_TOP_K: usize = 5;

/// Runs the evaluation.
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let half = match args
        .iter()
        .position(|a| a == "--half")
        .and_then(|i| args.get(i + 1))
    {
        None => Half::Tune,
        Some(h) if h == "tune" => Half::Tune,
        Some(h) if h == "report" => Half::Report,
        Some(other) => bail!("--half takes tune or report, not {other:?}"),
    };
    let grid = args.iter().any(|a| a == "--grid");
    if grid && half == Half::Report {
        bail!("--grid tunes, and the report half is never tuned on: use --half tune");
    }
    // `--chunk-max N`: chunks of at most N model tokens (DOCKET_CHUNK_MAX_TOKENS), to
    // compare chunk sizes on the tune half.
    let chunk_max = args
        .iter()
        .position(|a| a == "--chunk-max")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "254".into());
    let app = spawn_app_with(&[("DOCKET_CHUNK_MAX_TOKENS", chunk_max.as_str())]).await;
    println!("chunks of at most {chunk_max} tokens");
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
    // Off-topic questions of every contract: what `no_answer` must refuse.
    let mut off_topic: Vec<f32> = Vec::new();
    if grid {
        for q in evaluation::OFF_TOPIC {
            let v = ctx.question_embedder.embed(vec![q.to_owned()]).await?.remove(0);
            for doc in ids.values() {
                let found = retrieve::hybrid(
                    &ctx,
                    &store,
                    t.id,
                    docket_platform::tenants::IsolationTier::Shared,
                    q,
                    v.clone(),
                    retrieve::POOL,
                    &[*doc],
                )
                .await?;
                off_topic.push(found.iter().map(|c| c.similarity).fold(0.0, f32::max));
            }
        }
    }
    let place = docket_platform::tenants::IsolationTier::Shared;
    let mut retrieved: Vec<(Ask, Vec<Candidate>)> = Vec::with_capacity(asks.len());
    let mut question_vectors: Vec<Vec<f32>> = Vec::with_capacity(asks.len());
    let started = Instant::now();
    for ask in asks {
        let v = ctx
            .question_embedder
            .embed(vec![ask.question.clone()])
            .await?
            .remove(0);
        question_vectors.push(v.clone());
        let doc = ids[&ask.contract];
        let found = retrieve::hybrid(
            &ctx,
            &store,
            t.id,
            place,
            &ask.question,
            v,
            retrieve::POOL,
            &[doc],
        )
        .await?;
        retrieved.push((ask, found));
    }
    println!(
        "{} questions retrieved in {:.1} s",
        retrieved.len(),
        started.elapsed().as_secs_f64()
    );
    // Recall of the pool, and of the `top_k` selection keeps: some passage holds the clause.
    let recall = |s: &Selecting, k: usize| {
        let (mut held, mut annotated) = (0, 0);
        for (ask, found) in &retrieved {
            let (ps, _) = retrieve::best_passages(s, found.clone(), k);
            let texts: Vec<String> = ps.into_iter().map(|p| p.text).collect();
            let case = evaluation::judge(ask.clone(), true, &texts);
            annotated += usize::from(case.annotated);
            held += usize::from(case.any);
        }
        held as f64 / annotated.max(1) as f64
    };
    println!(
        "retrieval: some passage holds the clause: whole pool {:.3}, top {DEFAULT_TOP_K} {:.3}",
        recall(&Selecting::default(), usize::MAX),
        recall(&Selecting::default(), DEFAULT_TOP_K)
    );
    if let Some(dir) = args
        .iter()
        .position(|a| a == "--dump")
        .and_then(|i| args.get(i + 1))
    {
        dump::write(
            &ctx,
            t.id,
            &ids,
            &retrieved,
            &question_vectors,
            std::path::Path::new(dir),
        )
        .await?;
        println!("candidates, chunks and vectors written to {dir}");
    }
    let report = answer_all(&Selecting::default(), &retrieved, half, &phrasings);
    report.print(args.iter().any(|a| a == "--misses"));
    if grid {
        tune(&retrieved, half, &phrasings, off_topic);
    }
    app.shutdown.cancel();
    Ok(())
}

fn answer_all(
    s: &Selecting,
    retrieved: &[(Ask, Vec<Candidate>)],
    half: Half,
    phrasings: &[String],
) -> Report {
    let cases = retrieved
        .iter()
        .map(|(ask, found)| {
            let (ps, _) = retrieve::best_passages(s, found.clone(), DEFAULT_TOP_K);
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

/// Solves `a x = b` (small, symmetric positive definite) by Gaussian elimination.
fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> [f64; N] {
    for i in 0..N {
        let p = (i..N)
            .max_by(|x, y| a[*x][i].abs().total_cmp(&a[*y][i].abs()))
            .unwrap_or(i);
        a.swap(i, p);
        b.swap(i, p);
        for r in i + 1..N {
            let f = a[r][i] / a[i][i];
            let pivot = a[i];
            for (cell, p) in a[r].iter_mut().zip(pivot).skip(i) {
                *cell -= f * p;
            }
            b[r] -= f * b[i];
        }
    }
    let mut x = [0f64; N];
    for i in (0..N).rev() {
        let s: f64 = (i + 1..N).map(|c| a[i][c] * x[c]).sum();
        x[i] = (b[i] - s) / a[i][i];
    }
    x
}

/// Listwise fit (Newton's method on the softmax loss over each question's candidates,
/// whose target spreads evenly over the candidates holding the clause; a token L2 keeps
/// the system solvable):
/// the weights that put a clause-holding candidate first. Questions whose pool holds no
/// clause say nothing about the order and are left out.
fn fit_listwise(groups: &[Vec<([f32; 4], f32)>]) -> [f64; 4] {
    let groups: Vec<&Vec<([f32; 4], f32)>> = groups
        .iter()
        .filter(|g| g.iter().any(|(_, y)| *y > 0.5))
        .collect();
    let l2 = 1e-4 * groups.len() as f64;
    let mut w = [0f64; 4];
    for _ in 0..50 {
        let mut g = w.map(|v| l2 * v);
        let mut h = [[0f64; 4]; 4];
        for (i, row) in h.iter_mut().enumerate() {
            row[i] = l2;
        }
        for group in &groups {
            let x: Vec<[f64; 4]> = group.iter().map(|(x, _)| x.map(f64::from)).collect();
            let positives = group.iter().filter(|(_, y)| *y > 0.5).count() as f64;
            let z: Vec<f64> = x.iter().map(|x| (0..4).map(|i| w[i] * x[i]).sum()).collect();
            let top = z.iter().copied().fold(f64::MIN, f64::max);
            let e: Vec<f64> = z.iter().map(|z| (z - top).exp()).collect();
            let total: f64 = e.iter().sum();
            let mut mean = [0f64; 4];
            for (k, x) in x.iter().enumerate() {
                let p = e[k] / total;
                let t = if group[k].1 > 0.5 { 1.0 / positives } else { 0.0 };
                for i in 0..4 {
                    g[i] += (p - t) * x[i];
                    mean[i] += p * x[i];
                    for j in 0..4 {
                        h[i][j] += p * x[i] * x[j];
                    }
                }
            }
            for i in 0..4 {
                for j in 0..4 {
                    h[i][j] -= mean[i] * mean[j];
                }
            }
        }
        let step = solve(h, g);
        for i in 0..4 {
            w[i] -= step[i];
        }
        if step.iter().all(|s| s.abs() < 1e-7) {
            break;
        }
    }
    w
}

/// Platt scaling: `a, b` such that `sigmoid(a z + b)` is the probability that a candidate
/// with listwise score `z` holds the clause (plain logistic fit over every candidate).
fn platt(scored: &[(f64, f32)]) -> (f64, f64) {
    let loss = |a: f64, b: f64| -> f64 {
        scored
            .iter()
            .map(|(z, y)| {
                let p = (1.0 / (1.0 + (-(a * z + b)).exp())).clamp(1e-12, 1.0 - 1e-12);
                -(f64::from(*y) * p.ln() + (1.0 - f64::from(*y)) * (1.0 - p).ln())
            })
            .sum()
    };
    let (mut a, mut b) = (1f64, 0f64);
    for _ in 0..100 {
        let (mut g, mut h) = ([0f64; 2], [[1e-9f64, 0.0], [0.0, 1e-9]]);
        for (z, y) in scored {
            let p = 1.0 / (1.0 + (-(a * z + b)).exp());
            let e = p - f64::from(*y);
            let v = p * (1.0 - p);
            g[0] += e * z;
            g[1] += e;
            h[0][0] += v * z * z;
            h[0][1] += v * z;
            h[1][0] += v * z;
            h[1][1] += v;
        }
        let step = solve(h, g);
        // Newton's full step can overshoot from far away: halve it until the loss falls.
        let before = loss(a, b);
        let mut t = 1.0;
        while loss(a - t * step[0], b - t * step[1]) > before && t > 1e-6 {
            t /= 2.0;
        }
        a -= t * step[0];
        b -= t * step[1];
        if step.iter().all(|s| (t * s).abs() < 1e-9) {
            break;
        }
    }
    (a, b)
}

/// The listwise weights, calibrated, as the selection model.
fn fit(groups: &[Vec<([f32; 4], f32)>]) -> Weights {
    let w = fit_listwise(groups);
    let scored: Vec<(f64, f32)> = groups
        .iter()
        .flatten()
        .map(|(x, y)| ((0..4).map(|i| w[i] * f64::from(x[i])).sum(), *y))
        .collect();
    let (a, b) = platt(&scored);
    Weights {
        bias: b as f32,
        similarity: (a * w[0]) as f32,
        dense_top: (a * w[1]) as f32,
        lexical_top: (a * w[2]) as f32,
        opening_similarity: (a * w[3]) as f32,
    }
}

/// Fits the selection model on the tune half, then its margin, count and threshold.
fn tune(retrieved: &[(Ask, Vec<Candidate>)], half: Half, phrasings: &[String], off_topic: Vec<f32>) {
    let mut groups = Vec::new();
    for (ask, found) in retrieved {
        let (ps, _) = retrieve::best_passages(&Selecting::default(), found.clone(), usize::MAX);
        let group: Vec<([f32; 4], f32)> = ps
            .iter()
            .map(|p| {
                let hit = evaluation::judge(ask.clone(), true, std::slice::from_ref(&p.text)).any;
                (features(p), if hit { 1.0 } else { 0.0 })
            })
            .collect();
        groups.push(group);
    }
    let weights = fit(&groups);
    println!(
        "fitted selection model on {} candidates of {} questions: {weights:?}",
        groups.iter().map(Vec::len).sum::<usize>(),
        groups.len()
    );
    let mut best: Option<(f64, Selecting)> = None;
    for margin in [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0] {
        for max in [1, 2, 3, 4, 5] {
            let s = Selecting {
                weights,
                no_answer_below: f32::MIN,
                cite_margin: margin,
                max_citations: max,
            };
            let o = answer_all(&s, retrieved, half, phrasings).overall();
            // Both figures matter to a reader: the first quote and any quote.
            let objective = o.any_rate() + o.first_rate();
            println!(
                "grid margin {margin:.2} max {max}: any {:.3} first {:.3}",
                o.any_rate(),
                o.first_rate()
            );
            if best.as_ref().is_none_or(|(b, _)| objective > *b) {
                best = Some((objective, s));
            }
        }
    }
    let Some((_, mut s)) = best else { return };
    println!(
        "best on the tune half: {:?}, cite_margin {:.2}, max_citations {}",
        s.weights, s.cite_margin, s.max_citations
    );
    // The threshold, on the best similarity: the 3rd percentile of the questions whose
    // clause is annotated refuses at most ~3 % of them; shown against off-topic questions.
    let (mut annotated, mut absent): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    for (ask, found) in retrieved {
        let top = f64::from(found.iter().map(|c| c.similarity).fold(0.0, f32::max));
        if ask.want.is_some() {
            annotated.push(top);
        } else {
            absent.push(top);
        }
    }
    let mut off_topic: Vec<f64> = off_topic.into_iter().map(f64::from).collect();
    for v in [&mut annotated, &mut absent, &mut off_topic] {
        v.sort_by(f64::total_cmp);
    }
    let at = crate::percentile;
    let threshold = at(&annotated, 3.0);
    let refused = |v: &[f64]| v.iter().filter(|x| **x < threshold).count();
    println!(
        "best similarity, annotated: p1 {:.3} p3 {:.3} p10 {:.3} p50 {:.3}; absent clause: p10 {:.3} p50 {:.3}; off-topic: p50 {:.3} p90 {:.3} p99 {:.3} max {:.3}",
        at(&annotated, 1.0),
        threshold,
        at(&annotated, 10.0),
        at(&annotated, 50.0),
        at(&absent, 10.0),
        at(&absent, 50.0),
        at(&off_topic, 50.0),
        at(&off_topic, 90.0),
        at(&off_topic, 99.0),
        at(&off_topic, 100.0)
    );
    println!(
        "no_answer threshold at the annotated 3rd percentile: {threshold:.3} (refuses {} of {} absent-clause and {} of {} off-topic questions)",
        refused(&absent),
        absent.len(),
        refused(&off_topic),
        off_topic.len()
    );
    s.no_answer_below = threshold as f32;
    println!("with the fitted model, margin, count and threshold:");
    answer_all(&s, retrieved, half, phrasings).print(false);
}
