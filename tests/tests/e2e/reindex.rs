//! `docketctl reindex`: documents made by older chunking rules are re-chunked and
//! re-indexed by the pipeline while the tenant keeps answering; stale chunks and points
//! are gone afterwards; a second run finds nothing to do; a neighbour is untouched.

use docket_platform::documents::CHUNKING_VERSION;
use docket_rag::vectors::{Placement, TenantScope, VectorIndex, VectorPoint};
use docket_tests::{contract, spawn_app};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reindex_moves_old_documents_to_the_current_chunking_while_answering() {
    let app = Arc::new(spawn_app().await);
    let (_worker, _ctx, store) = app.spawn_worker_with_handles().await;
    let t = app.create_tenant_on("re", "enterprise", "shared").await;
    let neighbour = app.create_tenant("nb").await;
    let token = app.owner_token(&t).await;
    let mut docs = vec![];
    for n in [5, 6] {
        let v = app
            .upload_ready(&token, &format!("cuad-{n:02}.pdf"), contract(n))
            .await;
        let id = uuid::Uuid::parse_str(v["id"].as_str().expect("id")).expect("uuid");
        docs.push((id, v["chunks"].as_i64().expect("chunks")));
    }
    let nb_token = app.owner_token(&neighbour).await;
    app.upload_ready(&nb_token, "cuad-07.pdf", contract(7)).await;
    let scope = TenantScope::new(t.id.as_uuid(), Placement::Shared);

    // Make the tenant's documents look as an older build left them: an older version, and
    // a stale tail (a chunk row and its point past the current chunks).
    let (first, first_chunks) = docs[0];
    let pool = app.control.pool();
    sqlx::query("UPDATE documents SET chunking_version = 1 WHERE tenant_id = $1")
        .bind(t.id)
        .execute(pool)
        .await
        .expect("age");
    sqlx::query(
        "INSERT INTO chunks (id, tenant_id, document_id, ordinal, text, page_start, page_end, token_count, sha256)
         VALUES ($1, $2, $3, 999, 'stale tail', 1, 1, 2, 'x')",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(t.id)
    .bind(first)
    .execute(pool)
    .await
    .expect("stale row");
    let mut unit = vec![0.0f32; docket_rag::embed::DIMENSION];
    unit[0] = 1.0;
    store
        .upsert(
            scope,
            vec![VectorPoint {
                document: first,
                ordinal: 999,
                page_start: 1,
                page_end: 1,
                text: "stale tail".into(),
                vector: unit,
            }],
        )
        .await
        .expect("stale point");
    assert_eq!(
        store.count(scope, Some(first)).await.expect("count") as i64,
        first_chunks + 1
    );

    // Questions and document reads run without pause for the whole reindex.
    let stop = Arc::new(AtomicBool::new(false));
    let asker = {
        let (app, token, stop) = (app.clone(), token.clone(), stop.clone());
        let id = first.to_string();
        tokio::spawn(async move {
            let mut answered = 0;
            while !stop.load(Ordering::Relaxed) {
                let v = app
                    .ask(
                        &token,
                        "Which law governs this agreement?",
                        json!({"document_ids": [id]}),
                    )
                    .await;
                assert!(v["status"] == "answered" || v["status"] == "no_answer", "{v}");
                answered += usize::from(v["status"] == "answered");
                let d: Value = app
                    .call(
                        reqwest::Method::GET,
                        &format!("/v1/documents/{id}"),
                        Some(&token),
                        None,
                    )
                    .await
                    .json()
                    .await
                    .expect("json");
                assert_eq!(d["status"], "ready", "a reindexed document stays ready: {d}");
            }
            answered
        })
    };

    let out = docketctl::reindex(
        &app.config,
        &app.control,
        &app.auditor(),
        Some(&t.slug),
        Some(Duration::from_secs(300)),
    )
    .await
    .expect("reindex");
    assert_eq!(out["documents"], 2, "{out}");
    assert_eq!(out["remaining"], 0, "{out}");
    stop.store(true, Ordering::Relaxed);
    let answered = asker.await.expect("asker");
    assert!(answered > 0, "questions were answered during the reindex");

    for (d, chunks) in &docs {
        let (version, rows): (i32, i64) = sqlx::query_as(
            "SELECT chunking_version, (SELECT count(*) FROM chunks WHERE document_id = $1) FROM documents WHERE id = $1",
        )
        .bind(d)
        .fetch_one(pool)
        .await
        .expect("document");
        assert_eq!(version, CHUNKING_VERSION);
        assert_eq!(rows, *chunks, "the stale chunk row is gone");
        assert_eq!(
            store.count(scope, Some(*d)).await.expect("count") as i64,
            *chunks,
            "one point per current chunk, the stale one gone"
        );
    }
    // The neighbour was not asked for: still at the current version, untouched.
    let audit: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = 'documents.reindex'",
    )
    .bind(neighbour.id)
    .fetch_one(pool)
    .await
    .expect("audit");
    assert_eq!(audit, 0);

    // Resuming a finished reindex finds nothing to do.
    let again = docketctl::reindex(
        &app.config,
        &app.control,
        &app.auditor(),
        Some(&t.slug),
        Some(Duration::from_secs(30)),
    )
    .await
    .expect("second run");
    assert_eq!(again["documents"], 0, "{again}");

    // An unknown tenant is a clear error, not a reindex of everyone.
    let err = docketctl::reindex(
        &app.config,
        &app.control,
        &app.auditor(),
        Some("no-such-tenant"),
        None,
    )
    .await
    .expect_err("unknown tenant");
    assert!(err.to_string().contains("no-such-tenant"), "{err}");
}
