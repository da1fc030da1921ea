//! The whole cuad-dev corpus end to end: 40 real contracts (CUAD v1, The Atticus Project,
//! CC BY 4.0) uploaded, processed to `ready`, checked for extraction fidelity, one point per
//! chunk, the clause evaluation on the report half (`docket_tests::evaluation`), and dense
//! retrieval of each contract's annotated governing-law clause.

use docket_platform::documents;
use docket_platform::ids::DocumentId;
use docket_rag::embed::{EmbedSettings, Embedder};
use docket_rag::vectors::{EdgeStore, Placement, TenantScope, VectorIndex};
use docket_tests::evaluation::{Half, evaluate};
use docket_tests::ingest::token_f1;
use docket_tests::{clauses, contract, corpus, spawn_app};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

#[tokio::test]
async fn all_forty_contracts_reach_ready_faithfully_and_retrieve_their_governing_law() {
    let app = spawn_app().await;
    let mut worker = app.spawn_worker_process("w-forty", true);
    let t = app.create_tenant("acme").await;
    let token = app.owner_token(&t).await;
    let mut ids = vec![];
    for n in 0..40 {
        let r = app
            .upload_raw(&token, &format!("cuad-{n:02}.pdf"), contract(n), None)
            .await;
        assert_eq!(r.status(), 202, "cuad-{n:02}");
        let v: Value = r.json().await.expect("json");
        ids.push((n, v["document_id"].as_str().expect("id").to_owned()));
    }
    let key = app.data_key(t.id).await;
    let blobs = docket_platform::blobs::BlobStore::from_config(&app.config.objects).expect("blobs");
    let (mut sum, mut min, mut chunks) = (0.0, 1.0f64, 0);
    let mut per_doc = vec![];
    for (n, id) in &ids {
        let d = app.wait_processed(&token, id, Duration::from_secs(600)).await;
        assert_eq!(d["status"], "ready", "cuad-{n:02}: {d}");
        chunks += d["chunks"].as_i64().expect("chunks");
        per_doc.push(d["chunks"].as_i64().expect("chunks") as usize);
        let doc = DocumentId(uuid::Uuid::parse_str(id).expect("uuid"));
        let text = blobs.get(&key, &documents::text_key(doc)).await.expect("text");
        let parsed: docket_rag::parse::Parsed = serde_json::from_slice(&text).expect("pages");
        let reference = std::fs::read_to_string(corpus().join(format!("txt/cuad-{n:02}.txt"))).expect("txt");
        let f1 = token_f1(&parsed.pages.join("\n"), &reference);
        sum += f1;
        min = min.min(f1);
    }
    let mean = sum / 40.0;
    println!(
        "e2e extraction fidelity on cuad-dev: mean token-level F1 {mean:.4} (min {min:.4}), {chunks} chunks"
    );
    assert!(mean >= 0.90, "mean F1 {mean}");

    // Grounded answers (issue 16): every category with ≥ 8 annotated contracts, four
    // phrasings each, asked of each contract of the report half (cuad-20…39, never tuned
    // on) with the default top_k. 1,680 questions: the plan and a rate override make room.
    docketctl::tenant_plan(&app.control, &app.auditor(), &t.slug, "enterprise")
        .await
        .expect("plan without a token quota");
    docketctl::tenant_rate_override(
        &app.control,
        &app.auditor(),
        &t.slug,
        &docketctl::RateOverride {
            class: "query".into(),
            per_minute: 100_000,
            burst: 100,
            expires_in: Duration::from_secs(3600),
            reason: "clause evaluation".into(),
        },
    )
    .await
    .expect("rate override");
    let by_number: BTreeMap<u32, String> = ids.iter().cloned().collect();
    let report = evaluate(&app, &token, &by_number, Half::Report).await;
    report.print(true);
    let o = report.overall();
    // Floors below what the tune half measured (any 0.760, first 0.432, false no_answer
    // 0.030: BENCHMARKS.md), so a regression fails; the goals (0.80 / 0.65 / every
    // cell ≥ 0.40) are not reached yet and are tracked there, not asserted.
    assert!(o.any_rate() >= 0.66, "any-citation hit rate {:.3}", o.any_rate());
    assert!(
        o.first_rate() >= 0.33,
        "first-citation hit rate {:.3}",
        o.first_rate()
    );
    assert!(
        o.false_no_answer() <= 0.06,
        "false no_answer {:.3}",
        o.false_no_answer()
    );
    for ph in &report.phrasings {
        let t = report.tally(|c| &c.phrasing == ph);
        assert!(
            t.any_rate() >= 0.40,
            "{ph} phrasing: any-citation {:.3}",
            t.any_rate()
        );
    }

    // Stop the owning worker (it flushes), then read its index directly.
    let status = worker.terminate(Duration::from_secs(70)).await.expect("stops");
    assert!(status.success(), "{status}");
    let store = EdgeStore::open(&app.config.vector_dir, "test")
        .await
        .expect("open index");
    let scope = TenantScope::new(t.id.as_uuid(), Placement::Shared);
    let model = Embedder::load(&EmbedSettings {
        model_dir: app.config.ingest.model_dir.clone(),
        library: app.config.ingest.ort_library.clone(),
        threads: 2,
        batch: 16,
    })
    .expect("model");
    let query = model
        .embed(&[
            "This Agreement shall be governed by and construed in accordance with the laws of the State of",
        ])
        .expect("embed")
        .remove(0);
    let labels = clauses::annotations("Governing Law");
    let (mut labelled, mut found) = (0, 0);
    for ((n, id), expected) in ids.iter().zip(&per_doc) {
        let doc = uuid::Uuid::parse_str(id).expect("uuid");
        assert_eq!(
            store.count(scope, Some(doc)).await.expect("count"),
            *expected,
            "exactly one point per chunk of cuad-{n:02}"
        );
        let Some(snippets) = labels.get(n) else { continue };
        labelled += 1;
        let top = store
            .search(scope, query.clone(), 5, Some(doc))
            .await
            .expect("search");
        assert!(top.violations.is_empty());
        assert!(
            top.hits
                .iter()
                .all(|h| h.document == doc && h.tenant == t.id.as_uuid())
        );
        if top
            .hits
            .iter()
            .any(|h| snippets.iter().any(|s| clauses::holds(&h.text, s)))
        {
            found += 1;
        } else {
            let all = store
                .search(scope, query.clone(), 200, Some(doc))
                .await
                .expect("search");
            let rank = all
                .hits
                .iter()
                .position(|h| snippets.iter().any(|s| clauses::holds(&h.text, s)));
            println!(
                "cuad-{n:02}: governing-law clause not in the top 5 (rank {:?})",
                rank.map(|r| r + 1)
            );
        }
    }
    let rate = f64::from(found) / f64::from(labelled);
    println!(
        "governing-law retrieval: {found}/{labelled} contracts have the annotated clause in the top 5 ({rate:.3})"
    );
    assert!(labelled >= 30, "{labelled} labelled contracts");
    // Dense retrieval alone over 254-token chunks: 26/35 measured (BENCHMARKS.md).
    assert!(rate >= 0.7, "governing-law top-5 rate {rate}");
    let bytes = store.disk_bytes();
    println!(
        "vector directory after {chunks} points: {:.1} MiB ({:.1} KiB per point)",
        bytes as f64 / 1048576.0,
        bytes as f64 / 1024.0 / chunks as f64
    );
}
