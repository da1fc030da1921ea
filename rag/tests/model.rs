//! The real embedding model (all-MiniLM-L6-v2 via ONNX Runtime, from registry packages).

use docket_rag::embed::{DIMENSION, EmbedError, EmbedSettings, Embedder, cosine};
use std::path::PathBuf;

fn settings() -> EmbedSettings {
    let dir = std::env::var("DOCKET_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/model"));
    EmbedSettings {
        model_dir: dir,
        library: None,
        threads: 2,
        batch: 16,
    }
}

#[test]
fn related_sentences_score_clearly_higher_than_unrelated_ones() {
    let e = Embedder::load(&settings()).expect("model (run scripts/test to fetch it)");
    let v = e
        .embed(&[
            "This Agreement shall be governed by the laws of the State of Delaware.",
            "The contract is subject to Delaware law.",
            "The quarterly sales report shows strong growth in Asia.",
        ])
        .expect("embed");
    assert!(v.iter().all(|x| x.len() == DIMENSION));
    for x in &v {
        let norm: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "L2-normalized: {norm}");
    }
    let related = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[2]);
    println!("cosine related {related:.3}, unrelated {unrelated:.3}");
    assert!(related > 0.5, "related {related}");
    assert!(
        related - unrelated > 0.3,
        "related {related} vs unrelated {unrelated}"
    );
}

#[test]
fn a_batch_gives_the_same_vectors_as_one_by_one() {
    let e = Embedder::load(&settings()).expect("model");
    let texts = [
        "Either party may terminate this Agreement upon thirty days written notice.",
        "Licensee shall not compete.",
        "In no event shall liability exceed the fees paid in the twelve months preceding the claim, whether in contract, tort or otherwise, and the parties agree that this limitation is reasonable.",
    ];
    let batch = e.embed(&texts).expect("batch");
    for (i, t) in texts.iter().enumerate() {
        let single = e.embed(&[t]).expect("single");
        let c = cosine(&batch[i], &single[0]);
        assert!(
            c > 0.9999,
            "text {i}: padding in a batch must not change the vector ({c})"
        );
    }
}

#[test]
fn a_crash_inside_a_model_call_does_not_poison_embedding_for_the_process() {
    let e = Embedder::load(&settings()).expect("model");
    let before = e.embed(&["The term is five years."]).expect("embeds");
    e.crash_inside_session_for_tests();
    let after = e
        .embed(&["The term is five years."])
        .expect("still embeds after a crash in another call");
    assert_eq!(before, after);
}

#[test]
fn a_missing_model_is_a_clear_error_naming_the_path() {
    let s = EmbedSettings {
        model_dir: PathBuf::from("/nonexistent/models"),
        library: None,
        threads: 1,
        batch: 16,
    };
    let err = Embedder::load(&s).expect_err("missing");
    assert!(matches!(err, EmbedError::Missing { .. }));
    assert!(
        err.to_string()
            .contains("/nonexistent/models/libonnxruntime.so.1.31.1"),
        "{err}"
    );
}

#[test]
fn a_configured_runtime_library_that_is_missing_is_named() {
    let mut s = settings();
    s.library = Some(PathBuf::from("/nonexistent/libonnxruntime.so"));
    let err = Embedder::load(&s).expect_err("missing library");
    assert!(
        matches!(
            err,
            EmbedError::Missing {
                what: "ONNX Runtime library",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("/nonexistent/libonnxruntime.so"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_through_the_batcher_get_their_own_vectors_in_order() {
    use docket_rag::batcher::Batcher;
    let direct = Embedder::load(&settings()).expect("model");
    // One session, then two taking turns at the same queue.
    for sessions in [1, 2] {
        let embedders = (0..sessions)
            .map(|_| Embedder::load(&settings()).expect("model"))
            .collect();
        let batcher = Batcher::spawn_pool(embedders, 8, "test-batcher").expect("threads");
        // 24 requests of 1–3 texts each, all in flight at once: they share model calls.
        let requests: Vec<Vec<String>> = (0..24)
            .map(|i| {
                (0..1 + i % 3)
                    .map(|j| format!("Clause {i}.{j}: the supplier delivers within {j} days."))
                    .collect()
            })
            .collect();
        let answers = futures_join(&batcher, requests.clone()).await;
        for (texts, got) in requests.iter().zip(answers) {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let want = direct.embed(&refs).expect("direct");
            assert_eq!(got.len(), texts.len(), "one vector per text of this request");
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    cosine(g, w) > 0.9999,
                    "{sessions} session(s): the vector of {texts:?} came back to its own caller"
                );
            }
        }
        assert!(batcher.embed(vec![]).await.expect("empty").is_empty());
    }
}

async fn futures_join(b: &docket_rag::batcher::Batcher, requests: Vec<Vec<String>>) -> Vec<Vec<Vec<f32>>> {
    let handles: Vec<_> = requests
        .into_iter()
        .map(|texts| {
            let b = b.clone();
            tokio::spawn(async move { b.embed(texts).await.expect("embed") })
        })
        .collect();
    let mut out = vec![];
    for h in handles {
        out.push(h.await.expect("join"));
    }
    out
}
