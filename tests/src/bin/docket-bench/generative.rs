//! `scripts/bench answer --mode generative [--questions N] [--tenants N] [--passages N]`:
//! generative answers through the real API against the local model server
//! (SmolLM2-135M-Instruct Q4_1 in llama.cpp's server, one thread, four slots), at 1 and 4
//! concurrent clients, with the extractive answers of the same questions in the same run
//! beside them. Prints latency p50/p95, the model's output tokens per second per question,
//! the share of generated sentences the grounding filter removed, and the fallback rate.

use crate::answer::{QUESTIONS, arg, contract_text};
use crate::percentile;
use docket_tests::llm::{LocalLlm, MODEL};
use docket_tests::spawn_app_with;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;

/// What one pass (a mode at a concurrency) measured.
#[derive(Default)]
struct Pass {
    latency_s: Vec<f64>,
    tokens_per_s: Vec<f64>,
    llm_in: i64,
    llm_out: i64,
    sentences: u64,
    kept: u64,
    generated: usize,
    no_answer: usize,
    fallbacks: BTreeMap<String, usize>,
}

/// Runs the benchmark.
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let questions = arg(args, "--questions", 16)? as usize;
    let tenants = arg(args, "--tenants", 4)? as usize;
    let passages = arg(args, "--passages", 4)?.to_string();
    let llm = LocalLlm::start().await;
    let url = llm.url();
    let app = spawn_app_with(&[
        ("DOCKET_LLM_URL", url.as_str()),
        ("DOCKET_LLM_MODEL", MODEL),
        ("DOCKET_LLM_MAX_PASSAGES", passages.as_str()),
        ("DOCKET_LLM_TIMEOUT_SECS", "45"),
        // Four clients share four server slots: the worker must not be the bottleneck.
        ("DOCKET_LLM_CONCURRENCY", "4"),
    ])
    .await;
    let _worker = app.spawn_worker().await;
    let mut accounts = Vec::new();
    for i in 0..tenants {
        let t = app
            .create_tenant_on(&format!("g{i}"), "enterprise", "shared")
            .await;
        let token = app.owner_token(&t).await;
        let r = app
            .call(
                reqwest::Method::POST,
                "/v1/consents",
                Some(&token),
                Some(
                    json!({"purpose": "external_llm_processing", "granted": true, "terms_version": "bench"}),
                ),
            )
            .await;
        anyhow::ensure!(r.status() == 201, "consent: {}", r.status());
        for d in 0..2 {
            app.upload_ready(
                &token,
                &format!("supply-{i}-{d}.txt"),
                contract_text(i, d).into_bytes(),
            )
            .await;
        }
        accounts.push(token);
    }
    println!(
        "generative answers: model {MODEL} (SmolLM2-135M-Instruct Q4_1, llama.cpp server via xllamacpp, 1 thread, 4 slots, temperature 0), \
         {passages} passages per prompt, at most 256 tokens written; {questions} questions per pass over {tenants} tenants"
    );
    for clients in [1usize, 4] {
        for mode in ["extractive", "generative"] {
            let started = Instant::now();
            let results: Vec<(f64, Value)> = futures::stream::iter(0..questions)
                .map(|i| {
                    let (app, accounts) = (&app, &accounts);
                    async move {
                        let token = &accounts[i % accounts.len()];
                        let q = QUESTIONS[i % QUESTIONS.len()];
                        let t0 = Instant::now();
                        let v = app.ask_final(token, q, json!({"mode": mode})).await;
                        (t0.elapsed().as_secs_f64(), v)
                    }
                })
                .buffer_unordered(clients)
                .collect()
                .await;
            let wall = started.elapsed().as_secs_f64();
            let mut p = Pass::default();
            for (secs, v) in results {
                anyhow::ensure!(v["status"] != "failed", "{v}");
                p.latency_s.push(secs);
                let out = v["usage"]["llm_tokens_out"].as_i64().unwrap_or(0);
                p.llm_in += v["usage"]["llm_tokens_in"].as_i64().unwrap_or(0);
                p.llm_out += out;
                if out > 0 {
                    p.tokens_per_s.push(out as f64 / secs);
                }
                p.sentences += v["grounding"]["sentences"].as_u64().unwrap_or(0);
                p.kept += v["grounding"]["kept"].as_u64().unwrap_or(0);
                match (v["status"].as_str(), v["mode"].as_str()) {
                    (Some("answered"), Some("generative")) => p.generated += 1,
                    (Some("no_answer"), _) => p.no_answer += 1,
                    _ => {}
                }
                if let Some(code) = v["fallback_code"].as_str() {
                    *p.fallbacks.entry(code.to_owned()).or_default() += 1;
                }
            }
            p.latency_s.sort_by(f64::total_cmp);
            p.tokens_per_s.sort_by(f64::total_cmp);
            let n = p.latency_s.len();
            if mode == "extractive" {
                println!(
                    "{clients} client(s), extractive: p50 {:.0} ms, p95 {:.0} ms, {:.2} questions/s",
                    percentile(&p.latency_s, 50.0) * 1000.0,
                    percentile(&p.latency_s, 95.0) * 1000.0,
                    n as f64 / wall
                );
                continue;
            }
            let fallen: usize = p.fallbacks.values().sum();
            println!(
                "{clients} client(s), generative: p50 {:.1} s, p95 {:.1} s, {:.3} questions/s; model tokens per question in {:.0} / out {:.0}, \
                 output tokens/s per question p50 {:.1}; grounding removed {} of {} sentences ({:.2}); \
                 {} answered by the model, {} no_answer, fallback rate {:.2} {:?}",
                percentile(&p.latency_s, 50.0),
                percentile(&p.latency_s, 95.0),
                n as f64 / wall,
                p.llm_in as f64 / n as f64,
                p.llm_out as f64 / n as f64,
                percentile(&p.tokens_per_s, 50.0),
                p.sentences - p.kept,
                p.sentences,
                (p.sentences - p.kept) as f64 / p.sentences.max(1) as f64,
                p.generated,
                p.no_answer,
                fallen as f64 / n as f64,
                p.fallbacks
            );
        }
    }
    app.shutdown.cancel();
    drop(llm);
    Ok(())
}
