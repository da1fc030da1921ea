//! Ingestion end to end: upload → parse → chunk on real services, with real contracts and
//! hostile files.

use docket_platform::documents;
use docket_platform::ids::DocumentId;
use docket_platform::tenant_keys::{self, DataKey};
use docket_tests::actors::expect_error;
use docket_tests::{contract, corpus, fixtures, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

#[tokio::test]
async fn a_contract_goes_through_parse_chunk_embed_and_index() {
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let t = app.create_tenant("acme").await;
    let token = app.owner_token(&t).await;
    let resp = app.upload_multipart(&token, "cuad-01.pdf", contract(1)).await;
    assert_eq!(resp.status(), 202);
    let accepted: Value = resp.json().await.expect("json");
    assert_eq!(accepted["status"], "queued");
    assert_eq!(accepted["duplicate"], false);
    let id = accepted["document_id"].as_str().expect("id").to_owned();
    assert_eq!(accepted["status_url"], format!("/v1/documents/{id}"));

    let d = app.wait_processed(&token, &id, WAIT).await;
    assert_eq!(d["status"], "ready", "{d}");
    assert_eq!(d["stage"], "index", "{d}");
    assert_eq!(d["content_type"], "application/pdf");
    assert!(d["pages"].as_i64().expect("pages") >= 1);
    let chunks = d["chunks"].as_i64().expect("chunks");
    assert!(chunks >= 5, "{d}");
    let stages: Vec<(String, String, i64)> = d["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("n").into(),
                s["status"].as_str().expect("s").into(),
                s["attempts"].as_i64().expect("a"),
            )
        })
        .collect();
    assert_eq!(stages[0], ("parse".into(), "succeeded".into(), 1));
    assert_eq!(stages[1], ("chunk".into(), "succeeded".into(), 1));
    assert_eq!(stages[2], ("embed".into(), "succeeded".into(), 1));
    assert_eq!(stages[3], ("index".into(), "succeeded".into(), 1));

    // Chunk rows: exactly as many as reported, in order, within the token budget.
    let rows: Vec<(i32, i32, i32, i32)> = sqlx::query_as(
        "SELECT ordinal, page_start, page_end, token_count FROM chunks WHERE document_id = $1 ORDER BY ordinal",
    )
    .bind(uuid::Uuid::parse_str(&id).expect("uuid"))
    .fetch_all(app.control.pool())
    .await
    .expect("chunks");
    assert_eq!(rows.len() as i64, chunks);
    assert!(
        rows.iter()
            .enumerate()
            .all(|(i, r)| r.0 == i as i32 && r.1 <= r.2 && r.3 <= 254)
    );

    // The job endpoint and the usage ledger.
    let job_id = d["stages"][0]["job_id"].as_str().expect("job");
    let job: Value = app
        .call(Method::GET, &format!("/v1/jobs/{job_id}"), Some(&token), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(job["kind"], "parse");
    assert_eq!(job["status"], "succeeded");
    let pages: i64 = sqlx::query_scalar(
        "SELECT quantity FROM usage_events WHERE tenant_id = $1 AND kind = 'pages_parsed'",
    )
    .bind(t.id)
    .fetch_one(app.control.pool())
    .await
    .expect("usage");
    assert_eq!(pages, d["pages"].as_i64().expect("pages"));

    // Stored encrypted: the raw object is no PDF, the tenant's key opens it, another's fails.
    let doc = DocumentId(uuid::Uuid::parse_str(&id).expect("uuid"));
    let blobs = docket_platform::blobs::BlobStore::from_config(&app.config.objects).expect("blobs");
    let sealed = blobs
        .get_sealed(t.id, &documents::original_key(doc))
        .await
        .expect("raw");
    assert!(
        !sealed.windows(5).any(|w| w == b"%PDF-"),
        "original stored encrypted"
    );
    let key = app.data_key(t.id).await;
    assert_eq!(
        blobs
            .get(&key, &documents::original_key(doc))
            .await
            .expect("decrypt"),
        contract(1)
    );
    let other = app.create_tenant("other").await;
    let wrong = DataKey::from_bytes_for_tests(t.id, *b"0123456789abcdef0123456789abcdef");
    assert!(
        blobs.get(&wrong, &documents::original_key(doc)).await.is_err(),
        "wrong key fails"
    );
    let other_key = app.data_key(other.id).await;
    assert!(
        blobs
            .get(&other_key, &documents::original_key(doc))
            .await
            .is_err(),
        "another tenant's key cannot name it"
    );

    // Vectors: one per chunk, stored encrypted with a manifest; embedding tokens metered.
    let manifest = blobs
        .get(&key, &documents::vectors::manifest_key(doc))
        .await
        .expect("manifest");
    let manifest: documents::vectors::VectorManifest = serde_json::from_slice(&manifest).expect("json");
    assert_eq!((manifest.dimension, manifest.count as i64), (384, chunks));
    let packed = blobs
        .get(&key, &documents::vectors::vectors_key(doc))
        .await
        .expect("vectors");
    let vs = documents::vectors::unpack(&packed, 384, manifest.count).expect("sizes agree");
    let norm: f32 = vs[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    let tokens: i64 = sqlx::query_scalar(
        "SELECT quantity FROM usage_events WHERE tenant_id = $1 AND kind = 'embedding_tokens'",
    )
    .bind(t.id)
    .fetch_one(app.control.pool())
    .await
    .expect("usage");
    assert!(tokens > chunks * 50, "{tokens} tokens for {chunks} chunks");

    // Crypto-shredding: once the tenant's keys are destroyed, nothing opens its objects.
    sqlx::query("UPDATE tenant_secrets SET data_key_enc = NULL, pseudonym_key_enc = NULL, destroyed_at = now() WHERE tenant_id = $1")
        .bind(t.id)
        .execute(app.control.pool())
        .await
        .expect("destroy");
    let mut tx = app.db.begin_tenant(t.id).await.expect("tx");
    let gone = tenant_keys::data_key(&mut tx, &app.config.master_key).await;
    assert!(
        matches!(gone, Err(tenant_keys::TenantKeyError::Destroyed)),
        "{gone:?}"
    );
    drop(tx);

    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action IN ('documents.upload', 'documents.read')")
        .bind(t.id)
        .fetch_one(app.control.pool())
        .await
        .expect("audit");
    assert!(audited >= 2, "uploads and reads are audited");
}

#[tokio::test]
async fn bad_files_fail_alone_with_clear_codes() {
    let app = spawn_app_with(&[("DOCKET_MAX_UPLOAD_BYTES", "3000000")]).await;
    let _worker = app.spawn_worker().await;
    let t = app.create_tenant("acme").await;
    let token = app.owner_token(&t).await;

    // Refused at upload: nothing stored, nothing queued.
    expect_error(
        app.upload_raw(&token, "empty.pdf", vec![], None).await,
        400,
        "empty_file",
    )
    .await;
    expect_error(
        app.upload_raw(&token, "setup.exe", fixtures::exe(), None).await,
        415,
        "unsupported_media_type",
    )
    .await;
    let noise: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect();
    expect_error(
        app.upload_raw(&token, "contract.pdf", noise, None).await,
        415,
        "unsupported_media_type",
    )
    .await;
    let mut big = b"%PDF-1.7\n".to_vec();
    big.resize(3_500_000, b'x');
    let body = expect_error(
        app.upload_raw(&token, "big.pdf", big, None).await,
        413,
        "too_large",
    )
    .await;
    assert!(
        body["error"]["message"].as_str().expect("m").contains("3000000"),
        "{body}"
    );
    let r = app
        .client
        .post(format!("{}/v1/documents", app.address))
        .bearer_auth(&token)
        .body("no name given")
        .send()
        .await
        .expect("send");
    expect_error(r, 400, "missing_filename").await;
    let listed: Value = app
        .call(Method::GET, "/v1/documents", Some(&token), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["documents"],
        serde_json::json!([]),
        "refused uploads leave nothing"
    );

    // Accepted, then failed by the pipeline — each alone, next to a good document.
    let truncated = contract(2)[..1500].to_vec();
    let encrypted = fixtures::encrypted_pdf(&corpus().join("pdf/cuad-03.pdf"));
    let cases = [
        ("truncated.pdf", truncated, "corrupt_file"),
        ("locked.pdf", encrypted, "pdf_encrypted"),
        ("scan.pdf", fixtures::image_only_pdf(), "no_extractable_text"),
    ];
    let good = app
        .upload_raw(
            &token,
            "notes.md",
            "# Notes\n\nThe term is five years.".as_bytes().to_vec(),
            None,
        )
        .await;
    assert_eq!(good.status(), 202);
    let good: Value = good.json().await.expect("json");
    let mut failing = vec![];
    for (name, bytes, code) in cases {
        let r = app.upload_raw(&token, name, bytes, None).await;
        assert_eq!(r.status(), 202, "{name} is accepted: its content is a PDF");
        let v: Value = r.json().await.expect("json");
        failing.push((name, v["document_id"].as_str().expect("id").to_owned(), code));
    }
    for (name, id, code) in &failing {
        let d = app.wait_processed(&token, id, WAIT).await;
        assert_eq!(d["status"], "failed", "{name}: {d}");
        assert_eq!(d["error"]["code"], *code, "{name}: {d}");
        assert!(
            d["error"]["message"].as_str().expect("m").len() > 15,
            "{name}: a sentence"
        );
        assert_eq!(d["stages"][0]["status"], "failed");
        assert_eq!(d["stages"][0]["attempts"], 1, "permanent errors are not retried");
    }
    let g = app
        .wait_processed(&token, good["document_id"].as_str().expect("id"), WAIT)
        .await;
    assert_eq!(g["status"], "ready", "the good document is unaffected: {g}");
    assert_eq!(g["content_type"], "text/markdown");
    let failed: Value = app
        .call(Method::GET, "/v1/documents?status=failed", Some(&token), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(failed["documents"].as_array().expect("docs").len(), 3);
}

#[tokio::test]
async fn text_the_tenant_already_embedded_is_not_embedded_again() {
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let t = app.create_tenant("acme").await;
    let token = app.owner_token(&t).await;
    let clause = "The Supplier shall deliver the goods within thirty days of each purchase order.";
    let one: Value = app
        .upload_raw(&token, "one.txt", clause.as_bytes().to_vec(), None)
        .await
        .json()
        .await
        .expect("json");
    app.wait_processed(&token, one["document_id"].as_str().expect("id"), WAIT)
        .await;
    // Different bytes (so a different document), same chunk text.
    let two: Value = app
        .upload_raw(&token, "two.txt", format!("{clause}\n\n").into_bytes(), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(two["duplicate"], false);
    let d = app
        .wait_processed(&token, two["document_id"].as_str().expect("id"), WAIT)
        .await;
    assert_eq!(d["status"], "ready", "{d}");
    let metered: Vec<(String, i64)> = sqlx::query_as(
        "SELECT idempotency_key, quantity FROM usage_events WHERE tenant_id = $1 AND kind = 'embedding_tokens' ORDER BY occurred_at",
    )
    .bind(t.id)
    .fetch_all(app.control.pool())
    .await
    .expect("usage");
    assert_eq!(metered.len(), 2);
    assert!(metered[0].1 > 0);
    assert_eq!(
        metered[1].1, 0,
        "the second document's only chunk came from the cache"
    );
    let cached: i64 = sqlx::query_scalar("SELECT count(*) FROM embedding_cache WHERE tenant_id = $1")
        .bind(t.id)
        .fetch_one(app.control.pool())
        .await
        .expect("cache");
    assert_eq!(cached, 1);
}

#[tokio::test]
async fn duplicates_and_idempotency_keys() {
    let app = spawn_app().await;
    let a = app.create_tenant("alpha").await;
    let b = app.create_tenant("beta").await;
    let (ta, tb) = (app.owner_token(&a).await, app.owner_token(&b).await);
    let bytes = b"Master services agreement between the parties.".to_vec();
    let first: Value = app
        .upload_raw(&ta, "msa.txt", bytes.clone(), None)
        .await
        .json()
        .await
        .expect("json");
    let r = app.upload_raw(&ta, "copy-of-msa.txt", bytes.clone(), None).await;
    assert_eq!(r.status(), 200);
    let again: Value = r.json().await.expect("json");
    assert_eq!(again["document_id"], first["document_id"]);
    assert_eq!(again["duplicate"], true);
    // Never across tenants: B's identical upload is B's own new document.
    let theirs: Value = app
        .upload_raw(&tb, "msa.txt", bytes.clone(), None)
        .await
        .json()
        .await
        .expect("json");
    assert_ne!(theirs["document_id"], first["document_id"]);
    assert_eq!(theirs["duplicate"], false);

    let k1: Value = app
        .upload_raw(&ta, "a.txt", b"first body".to_vec(), Some("key-1"))
        .await
        .json()
        .await
        .expect("json");
    let r = app
        .upload_raw(&ta, "a.txt", b"first body".to_vec(), Some("key-1"))
        .await;
    assert_eq!(r.status(), 200);
    let replay: Value = r.json().await.expect("json");
    assert_eq!(replay["document_id"], k1["document_id"]);
    let r = app
        .upload_raw(&ta, "a.txt", b"different body".to_vec(), Some("key-1"))
        .await;
    expect_error(r, 409, "idempotency_conflict").await;
    // A key is 1-200 visible ASCII characters, as the contract's pattern says: a space or
    // an overlong key is refused before anything is stored.
    for bad in ["key one".to_owned(), "k".repeat(201)] {
        let r = app
            .upload_raw(&ta, "b.txt", b"third body".to_vec(), Some(&bad))
            .await;
        expect_error(r, 400, "invalid_idempotency_key").await;
    }
    let listed: Value = app
        .call(Method::GET, "/v1/documents?limit=10", Some(&ta), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["documents"].as_array().expect("docs").len(), 2, "{listed}");
}

#[tokio::test]
async fn another_tenant_cannot_read_list_or_learn_of_documents() {
    let app = spawn_app().await;
    let a = app.create_tenant("alpha").await;
    let b = app.create_tenant("beta").await;
    let (ta, tb) = (app.owner_token(&a).await, app.owner_token(&b).await);
    let up: Value = app
        .upload_raw(&ta, "secret.txt", b"Alpha's confidential pricing.".to_vec(), None)
        .await
        .json()
        .await
        .expect("json");
    let id = up["document_id"].as_str().expect("id");
    expect_error(
        app.call(Method::GET, &format!("/v1/documents/{id}"), Some(&tb), None)
            .await,
        404,
        "not_found",
    )
    .await;
    expect_error(
        app.call(Method::GET, "/v1/documents/not-a-uuid", Some(&tb), None)
            .await,
        404,
        "not_found",
    )
    .await;
    let doc: Value = app.document(&ta, id).await;
    let job = doc["stages"][0]["job_id"].as_str().expect("job");
    expect_error(
        app.call(Method::GET, &format!("/v1/jobs/{job}"), Some(&tb), None)
            .await,
        404,
        "not_found",
    )
    .await;
    let listed = app
        .call(Method::GET, "/v1/documents", Some(&tb), None)
        .await
        .text()
        .await
        .expect("text");
    assert!(!listed.contains(id));
    // A viewer may read but not upload.
    let (_, viewer) = app.user_with_role(&a, &ta, "viewer").await;
    expect_error(
        app.upload_raw(&viewer, "x.txt", b"text".to_vec(), None).await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        app.call(Method::GET, &format!("/v1/documents/{id}"), Some(&viewer), None)
            .await
            .status(),
        200
    );
    // Paging and filters validate.
    expect_error(
        app.call(Method::GET, "/v1/documents?limit=0", Some(&ta), None)
            .await,
        400,
        "invalid_limit",
    )
    .await;
    expect_error(
        app.call(Method::GET, "/v1/documents?status=lost", Some(&ta), None)
            .await,
        400,
        "invalid_status",
    )
    .await;
    expect_error(
        app.call(Method::GET, "/v1/documents?cursor=zzz", Some(&ta), None)
            .await,
        400,
        "invalid_cursor",
    )
    .await;
}
