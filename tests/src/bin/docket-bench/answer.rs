//! `scripts/bench answer [--seconds N] [--tenants N] [--clients N]`: N tenants (default
//! 100) with small corpora each, C concurrent clients (default 32) asking varied questions
//! through the real API with `wait`, for a fixed time. Prints end-to-end latency
//! percentiles and throughput, and, in the same run, the raw cost of each step an answer
//! takes (embedding the question, dense search, lexical search, fusion, selection) so the
//! overhead shows as a ratio. Goal on the 2-core machine: p99 under 250 ms. With
//! `--mode generative`, the language-model path instead (`generative.rs`).

use crate::{cpu, percentile};
use anyhow::Context;
use docket_platform::documents::lexical;
use docket_rag::answer::select::Selecting;
use docket_rag::answer::{Answerer, Passage, fusion};
use docket_rag::vectors::{Placement, TenantScope, VectorIndex};
use docket_tests::spawn_app_with;
use docket_worker::retrieve;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const STATES: [&str; 8] = [
    "Ohio",
    "Delaware",
    "New York",
    "California",
    "Texas",
    "Oregon",
    "Florida",
    "Nevada",
];
const GOODS: [&str; 6] = [
    "widgets",
    "software licences",
    "steel coils",
    "medical gloves",
    "solar panels",
    "coffee beans",
];

/// A small synthetic supply contract, different per tenant and document.
pub(crate) fn contract_text(tenant: usize, doc: usize) -> String {
    let state = STATES[(tenant + doc) % STATES.len()];
    let goods = GOODS[(tenant * 3 + doc) % GOODS.len()];
    let years = 1 + (tenant + doc) % 5;
    let days = [15, 30, 45, 60, 90][(tenant + 2 * doc) % 5];
    format!(
        "SUPPLY AGREEMENT {tenant}-{doc}\n\nThis Supply Agreement is made between Vendor {tenant} Inc. and Buyer {doc} LLC.\n\n\
         1. Supply. The Vendor shall deliver {goods} to the Buyer every month in the quantities ordered.\n\n\
         2. Term. This Agreement begins on the Effective Date and expires after {years} years unless renewed. \
         It renews automatically for successive one-year terms unless either party gives notice.\n\n\
         3. Payment. The Buyer shall pay each invoice within {days} days. Late payments bear interest of one percent per month.\n\n\
         4. Termination. Either party may terminate this Agreement for convenience on {days} days written notice.\n\n\
         5. Liability. In no event shall either party's aggregate liability exceed the fees paid in the prior twelve months.\n\n\
         6. Governing Law. This Agreement shall be governed by the laws of the State of {state}.\n\n\
         7. Confidentiality. Each party shall keep the other's confidential information secret for five years.\n"
    )
}

/// Questions every synthetic contract answers.
pub(crate) const QUESTIONS: [&str; 10] = [
    "Which state's law governs this agreement?",
    "When does the agreement expire?",
    "Does the agreement renew automatically?",
    "How many days does the buyer have to pay an invoice?",
    "Can either party terminate for convenience?",
    "Is there a cap on liability?",
    "What goods does the vendor deliver?",
    "How long must confidential information be kept secret?",
    "What interest do late payments bear?",
    "Who are the parties to the supply agreement?",
];

/// A numeric flag's value.
pub(crate) fn arg(args: &[String], name: &str, default: u64) -> anyhow::Result<u64> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .context("a value after the flag")?
            .parse()
            .with_context(|| format!("{name} takes a number")),
    }
}

/// Runs the benchmark.
pub async fn run(args: &[String]) -> anyhow::Result<()> {
    if args.windows(2).any(|w| w[0] == "--mode" && w[1] == "generative") {
        return crate::generative::run(args).await;
    }
    let seconds = arg(args, "--seconds", 30)?;
    let tenants = arg(args, "--tenants", 100)? as usize;
    let clients = arg(args, "--clients", 32)? as usize;
    // `--question-batch 1` turns batching of concurrent questions off (the baseline).
    let batch = arg(args, "--question-batch", 8)?.to_string();
    let sessions = arg(args, "--question-sessions", 1)?.to_string();
    let app = spawn_app_with(&[
        ("DOCKET_QUESTION_BATCH", batch.as_str()),
        ("DOCKET_QUESTION_SESSIONS", sessions.as_str()),
    ])
    .await;
    println!("questions per model call: at most {batch}; model sessions for questions: {sessions}");
    let (_worker, ctx, store) = app.spawn_worker_with_handles().await;

    // Seed: tenants with two small contracts each, uploaded concurrently (not timed).
    let seeded = Instant::now();
    let mut accounts = Vec::with_capacity(tenants);
    for i in 0..tenants {
        let t = app
            .create_tenant_on(&format!("b{i}"), "enterprise", "shared")
            .await;
        let token = app.owner_token(&t).await;
        accounts.push((t, token));
    }
    let uploads: Vec<anyhow::Result<()>> = futures::stream::iter(accounts.iter().enumerate())
        .map(|(i, (_, token))| {
            let app = &app;
            async move {
                for d in 0..2 {
                    let name = format!("supply-{i}-{d}.txt");
                    app.upload_ready(token, &name, contract_text(i, d).into_bytes())
                        .await;
                }
                Ok(())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    uploads.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    println!(
        "answer benchmark: {tenants} tenants x 2 contracts seeded in {:.1} s; {clients} clients for {seconds} s",
        seeded.elapsed().as_secs_f64()
    );

    // Raw costs, in this process, of each step every answer takes, one at a time.
    let (mut embed_ms, mut search_ms, mut lexical_ms, mut fusion_ms, mut select_ms) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    for i in 0..200 {
        let q = QUESTIONS[i % QUESTIONS.len()];
        let started = Instant::now();
        let v = ctx.question_embedder.embed(vec![q.to_owned()]).await?.remove(0);
        embed_ms.push(ms(started));
        let tenant = accounts[i % tenants].0.id;
        let scope = TenantScope::new(tenant.as_uuid(), Placement::Shared);
        let started = Instant::now();
        let found = store.search(scope, v, retrieve::CANDIDATES, None).await?;
        search_ms.push(ms(started));
        anyhow::ensure!(!found.hits.is_empty(), "every tenant has chunks");
        let started = Instant::now();
        let mut tx = ctx.db.begin_tenant(tenant).await?;
        let words = lexical::search(&mut tx, q, &[], retrieve::CANDIDATES as i64).await?;
        tx.commit().await?;
        lexical_ms.push(ms(started));
        let started = Instant::now();
        let key = |d: uuid::Uuid, o: u32| (d, o);
        let fused = fusion::fuse(&[
            found.hits.iter().map(|h| key(h.document, h.ordinal)).collect(),
            words
                .iter()
                .map(|w| key(w.document_id, w.ordinal as u32))
                .collect(),
        ]);
        fusion_ms.push(ms(started));
        let started = Instant::now();
        let passages: Vec<Passage> = fused
            .iter()
            .take(5)
            .filter_map(|(k, _)| {
                let at = found.hits.iter().position(|h| key(h.document, h.ordinal) == *k)?;
                let h = &found.hits[at];
                let lexical_at = words
                    .iter()
                    .position(|w| key(w.document_id, w.ordinal as u32) == *k);
                Some(Passage {
                    chunk_id: h.id,
                    document_id: h.document,
                    text: h.text.clone(),
                    page_start: h.page_start,
                    page_end: h.page_end,
                    ordinal: h.ordinal,
                    similarity: h.score,
                    dense_rank: Some(at as u32 + 1),
                    lexical_rank: lexical_at.map(|i| i as u32 + 1),
                })
            })
            .collect();
        let _ = Selecting::default().answer(q, &passages);
        select_ms.push(ms(started));
    }
    for v in [
        &mut embed_ms,
        &mut search_ms,
        &mut lexical_ms,
        &mut fusion_ms,
        &mut select_ms,
    ] {
        v.sort_by(f64::total_cmp);
    }
    let raw_p50 = percentile(&embed_ms, 50.0)
        + percentile(&search_ms, 50.0)
        + percentile(&lexical_ms, 50.0)
        + percentile(&fusion_ms, 50.0)
        + percentile(&select_ms, 50.0);

    // Load: each client asks a different tenant a varied question, waits for the answer.
    let redis_url = app.config.redis.url.expose().to_owned();
    let before = cpu::Reading::take(app.db.platform_pool(), &redis_url).await;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let per_client: Vec<anyhow::Result<(Vec<f64>, usize, usize)>> = futures::stream::iter(0..clients)
        .map(|c| {
            let (app, accounts) = (&app, &accounts);
            async move {
                let (mut lat, mut answered, mut other) = (Vec::new(), 0, 0);
                let mut i = c;
                while Instant::now() < deadline {
                    let (_, token) = &accounts[i % accounts.len()];
                    let q = QUESTIONS[(i / 7) % QUESTIONS.len()];
                    let t0 = Instant::now();
                    let r = app.ask_raw(token, q, json!({}), 10).await;
                    let status = r.status().as_u16();
                    let v: Value = r.json().await?;
                    lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                    anyhow::ensure!(status == 200, "{status}: {v}");
                    if v["status"] == "answered" {
                        answered += 1;
                    } else {
                        other += 1;
                    }
                    i += clients;
                }
                Ok((lat, answered, other))
            }
        })
        .buffer_unordered(clients)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let after = cpu::Reading::take(app.db.platform_pool(), &redis_url).await;
    let (mut all, mut answered, mut other) = (Vec::new(), 0, 0);
    for r in per_client {
        let (l, a, o) = r?;
        all.extend(l);
        answered += a;
        other += o;
    }
    all.sort_by(f64::total_cmp);
    let (p50, p95, p99) = (
        percentile(&all, 50.0),
        percentile(&all, 95.0),
        percentile(&all, 99.0),
    );
    println!(
        "end to end (POST /v1/queries?wait, {} questions, {answered} answered, {other} no_answer): p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms, {:.1} questions/s",
        all.len(),
        all.len() as f64 / elapsed
    );
    println!(
        "raw steps alone (one at a time, p50 / p99 ms): embed {:.2} / {:.2}, dense {:.2} / {:.2}, lexical {:.2} / {:.2}, fusion {:.3} / {:.3}, selection {:.3} / {:.3}; end-to-end p50 / raw p50 = {:.1}",
        percentile(&embed_ms, 50.0),
        percentile(&embed_ms, 99.0),
        percentile(&search_ms, 50.0),
        percentile(&search_ms, 99.0),
        percentile(&lexical_ms, 50.0),
        percentile(&lexical_ms, 99.0),
        percentile(&fusion_ms, 50.0),
        percentile(&fusion_ms, 99.0),
        percentile(&select_ms, 50.0),
        percentile(&select_ms, 99.0),
        p50 / raw_p50
    );
    before.report(&after, all.len(), "question");
    println!("goal: p99 under 250 ms");
    app.shutdown.cancel();
    Ok(())
}
