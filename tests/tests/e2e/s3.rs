//! Object storage on a real S3-compatible server (moto, started by scripts/test on
//! 127.0.0.1:9000, or DOCKET_TEST_S3_ENDPOINT): encrypted round trips, multipart streams,
//! and the whole ingestion pipeline with `DOCKET_OBJECT_STORE=s3`.

use docket_platform::blobs::{BlobError, BlobStore};
use docket_platform::config::{ObjectStoreConfig, S3Config};
use docket_platform::ids::TenantId;
use docket_platform::secret::Secret;
use docket_platform::tenant_keys::DataKey;
use docket_tests::{corpus, spawn_app_with};
use serde_json::Value;
use std::time::Duration;

fn endpoint() -> String {
    std::env::var("DOCKET_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9000".into())
}

async fn new_bucket() -> String {
    let bucket = format!("docket-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let r = reqwest::Client::new()
        .put(format!("{}/{bucket}", endpoint()))
        .send()
        .await
        .expect("the S3 test server is running (scripts/test starts it)");
    assert!(r.status().is_success(), "create bucket: {}", r.status());
    bucket
}

#[tokio::test]
async fn encrypted_objects_round_trip_through_s3() {
    let bucket = new_bucket().await;
    let store = BlobStore::from_config(&ObjectStoreConfig::S3(S3Config {
        endpoint: Some(endpoint()),
        bucket: bucket.clone(),
        region: "us-east-1".into(),
        access_key_id: "test".into(),
        secret_access_key: Secret::new("test".into()),
        allow_http: true,
    }))
    .expect("s3 store");
    store.health().await.expect("healthy");
    let t = TenantId::new_random();
    let key = DataKey::from_bytes_for_tests(t, [5; 32]);
    store
        .put(&key, "doc/small", b"Confidential terms.")
        .await
        .expect("put");
    assert_eq!(
        store.get(&key, "doc/small").await.expect("get"),
        b"Confidential terms."
    );
    let raw = store.get_sealed(t, "doc/small").await.expect("raw");
    assert!(
        !raw.windows(12).any(|w| w == b"Confidential"),
        "the bucket holds ciphertext"
    );
    // 12 MB in pieces: a real multipart upload (parts of 5 MiB).
    let big: Vec<u8> = (0..12_000_000u32).map(|i| (i % 251) as u8).collect();
    let pieces: Vec<Result<bytes::Bytes, String>> = big
        .chunks(64 * 1024)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let stored = store
        .put_stream(&key, "doc/big", futures::stream::iter(pieces), 50_000_000)
        .await
        .expect("stream");
    assert_eq!(stored.size, 12_000_000);
    assert_eq!(store.get(&key, "doc/big").await.expect("get"), big);
    let wrong = DataKey::from_bytes_for_tests(t, [6; 32]);
    assert!(matches!(
        store.get(&wrong, "doc/big").await,
        Err(BlobError::Decrypt(_))
    ));
    store.delete(t, "doc/big").await.expect("delete");
    assert!(matches!(
        store.get(&key, "doc/big").await,
        Err(BlobError::NotFound)
    ));
}

#[tokio::test]
async fn the_pipeline_runs_on_s3_storage() {
    let bucket = new_bucket().await;
    let ep = endpoint();
    let app = spawn_app_with(&[
        ("DOCKET_OBJECT_STORE", "s3"),
        ("DOCKET_S3_ENDPOINT", &ep),
        ("DOCKET_S3_BUCKET", &bucket),
        ("DOCKET_S3_ACCESS_KEY_ID", "test"),
        ("DOCKET_S3_SECRET_ACCESS_KEY", "test"),
        ("DOCKET_S3_ALLOW_HTTP", "true"),
    ])
    .await;
    let _worker = app.spawn_worker().await;
    let t = app.create_tenant("acme").await;
    let token = app.owner_token(&t).await;
    let pdf = std::fs::read(corpus().join("pdf/cuad-05.pdf")).expect("pdf");
    let v: Value = app
        .upload_multipart(&token, "cuad-05.pdf", pdf)
        .await
        .json()
        .await
        .expect("json");
    let d = app
        .wait_processed(
            &token,
            v["document_id"].as_str().expect("id"),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(d["status"], "ready", "{d}");
    assert!(d["chunks"].as_i64().expect("chunks") > 0);
    let listing = reqwest::Client::new()
        .get(format!(
            "{ep}/{bucket}?list-type=2&prefix=tenants/{}/documents/",
            t.id
        ))
        .send()
        .await
        .expect("list")
        .text()
        .await
        .expect("xml");
    assert!(
        listing.contains("/original") && listing.contains("/text.json"),
        "{listing}"
    );
}
