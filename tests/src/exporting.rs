//! Exports in tests: the customer's bucket on the S3 test server (moto, started by
//! `scripts/test`), requesting an export, waiting for it, and downloading the package.

use crate::TestApp;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStore, ObjectStoreExt};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// The S3 test server.
pub fn s3_endpoint() -> String {
    std::env::var("DOCKET_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9000".into())
}

/// Creates a fresh bucket on the S3 test server; returns its name.
pub async fn bucket() -> String {
    let name = format!("export-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let r = reqwest::Client::new()
        .put(format!("{}/{name}", s3_endpoint()))
        .send()
        .await
        .expect("the S3 test server runs (scripts/test starts it)");
    assert!(r.status().is_success(), "create bucket: {}", r.status());
    name
}

/// A client for `bucket` on the S3 test server.
pub fn client(bucket: &str) -> std::sync::Arc<dyn ObjectStore> {
    std::sync::Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(s3_endpoint())
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id("customer-key")
            .with_secret_access_key("customer-secret")
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .build()
            .expect("client"),
    )
}

/// The body of `POST /v1/exports` for `bucket` with the test credentials.
pub fn request(bucket: &str, prefix: &str) -> Value {
    json!({
        "s3": {"bucket": bucket, "prefix": prefix, "endpoint": s3_endpoint(), "region": "us-east-1"},
        "credentials": {"access_key_id": "customer-key", "secret_access_key": "customer-secret-do-not-log"},
    })
}

/// Downloads everything under `prefix` in `bucket` into `dir` (relative to the prefix).
pub async fn download(bucket: &str, prefix: &str, dir: &Path) -> usize {
    let store = client(bucket);
    let root = object_store::path::Path::from(prefix);
    let objects: Vec<_> = store.list(Some(&root)).try_collect().await.expect("list");
    for o in &objects {
        let rel = o
            .location
            .as_ref()
            .strip_prefix(prefix)
            .unwrap_or(o.location.as_ref())
            .trim_start_matches('/');
        let file = dir.join(rel);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        let bytes = store
            .get(&o.location)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        std::fs::write(&file, &bytes).expect("write");
    }
    objects.len()
}

impl TestApp {
    /// Stores `docs` (name, bytes) as documents of `tenant` the way an upload stores them
    /// (row plus encrypted original), without running the pipeline: exports and their
    /// benchmark need many documents fast. Returns the ids.
    pub async fn seed_originals(
        &self,
        tenant: docket_platform::ids::TenantId,
        docs: Vec<(String, Vec<u8>)>,
    ) -> Vec<uuid::Uuid> {
        let blobs = docket_platform::blobs::BlobStore::from_config(&self.config.objects).expect("blobs");
        let key = self.data_key(tenant).await;
        let mut ids = Vec::with_capacity(docs.len());
        for (name, body) in docs {
            let id: uuid::Uuid = sqlx::query_scalar(
                "INSERT INTO documents (tenant_id, filename, content_type, byte_size, sha256)
                 VALUES ($1, $2, 'application/octet-stream', $3, $4) RETURNING id",
            )
            .bind(tenant)
            .bind(&name)
            .bind(body.len() as i64)
            .bind(docket_platform::exports::package::sha256_hex(&body))
            .fetch_one(self.control.pool())
            .await
            .expect("document");
            blobs
                .put(
                    &key,
                    &docket_platform::documents::original_key(docket_platform::ids::DocumentId(id)),
                    &body,
                )
                .await
                .expect("original");
            ids.push(id);
        }
        ids
    }

    /// Requests an export of `token`'s tenant to `body`; returns its id.
    pub async fn request_export(&self, token: &str, body: Value) -> String {
        let r = self
            .call(Method::POST, "/v1/exports", Some(token), Some(body))
            .await;
        let status = r.status();
        let v: Value = r.json().await.expect("json");
        assert_eq!(status, 202, "{v}");
        v["export_id"].as_str().expect("id").to_owned()
    }

    /// Polls an export until it ends; panics after `timeout`.
    pub async fn wait_export(&self, token: &str, id: &str, timeout: Duration) -> Value {
        let ended = ["done", "failed", "cancelled"];
        self.poll_until(token, &format!("/v1/exports/{id}"), &ended, timeout)
            .await
    }

    /// Runs `docketctl export verify DIR --public-key KEYS` (the real binary) with the keys
    /// this deployment publishes; returns (exit code, report).
    pub async fn verify_export(&self, dir: &Path) -> (i32, Value) {
        self.verify_offline(&["export", "verify"], dir).await
    }
}

/// Unpacks a tar archive (a download package) into `dir`; returns its entries' paths.
pub fn untar(bytes: &[u8], dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).expect("mkdir");
    let mut archive = tar::Archive::new(bytes);
    let mut names = Vec::new();
    for entry in archive.entries().expect("a tar archive") {
        let mut entry = entry.expect("entry");
        names.push(entry.path().expect("path").to_string_lossy().into_owned());
        assert!(
            entry.unpack_in(dir).expect("unpack"),
            "an entry outside the folder"
        );
    }
    names
}

impl TestApp {
    /// The queue the test's workers read (to queue jobs as the scheduler does).
    pub fn job_queue(&self) -> docket_platform::jobs::JobQueue {
        docket_platform::jobs::JobQueue::new(
            docket_platform::redis_conn::Redis::new(&self.config.redis.url, &self.config.redis.prefix)
                .expect("redis"),
            5,
        )
    }
}
