//! Uploading documents and waiting for the pipeline, through the real API.

use crate::TestApp;
use reqwest::Response;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use std::time::{Duration, Instant};

impl TestApp {
    /// Raw-body upload with `?filename=`.
    pub async fn upload_raw(
        &self,
        token: &str,
        filename: &str,
        bytes: Vec<u8>,
        idempotency_key: Option<&str>,
    ) -> Response {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/v1/documents", self.address),
            &[("filename", filename)],
        )
        .expect("url");
        let mut req = self
            .client
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/octet-stream")
            .body(bytes);
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        req.send().await.expect("upload")
    }

    /// Multipart upload (field `file`).
    pub async fn upload_multipart(&self, token: &str, filename: &str, bytes: Vec<u8>) -> Response {
        let form = Form::new().part("file", Part::bytes(bytes).file_name(filename.to_owned()));
        self.client
            .post(format!("{}/v1/documents", self.address))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("upload")
    }

    /// `GET /v1/documents/{id}`.
    pub async fn document(&self, token: &str, id: &str) -> Value {
        self.client
            .get(format!("{}/v1/documents/{id}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json")
    }

    /// Uploads `bytes` as `filename` and waits until the document is ready; returns it.
    pub async fn upload_ready(&self, token: &str, filename: &str, bytes: Vec<u8>) -> Value {
        let v: Value = self
            .upload_raw(token, filename, bytes, None)
            .await
            .json()
            .await
            .expect("json");
        let id = v["document_id"].as_str().expect("document id").to_owned();
        let d = self.wait_processed(token, &id, Duration::from_secs(180)).await;
        assert_eq!(d["status"], "ready", "{d}");
        d
    }

    /// Polls a document until it is ready (parsed, chunked, embedded and indexed) or has
    /// failed; panics after `timeout`.
    pub async fn wait_processed(&self, token: &str, id: &str, timeout: Duration) -> Value {
        let started = Instant::now();
        loop {
            let d = self.document(token, id).await;
            let done = d["status"] == "failed" || d["status"] == "ready";
            if done {
                return d;
            }
            assert!(
                started.elapsed() < timeout,
                "document {id} still {} at {} after {timeout:?}",
                d["status"],
                d["stage"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Bag-of-words F1 of `got` against `want` (lower-cased alphanumeric tokens).
pub fn token_f1(got: &str, want: &str) -> f64 {
    use std::collections::HashMap;
    fn words(s: &str) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for w in s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            *m.entry(w.to_lowercase()).or_insert(0) += 1;
        }
        m
    }
    let (g, w) = (words(got), words(want));
    let overlap: usize = g.iter().map(|(k, n)| (*n).min(*w.get(k).unwrap_or(&0))).sum();
    if overlap == 0 {
        return 0.0;
    }
    let p = overlap as f64 / g.values().sum::<usize>() as f64;
    let r = overlap as f64 / w.values().sum::<usize>() as f64;
    2.0 * p * r / (p + r)
}
