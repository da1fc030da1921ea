//! Access-review helpers: making a quarter's reviews as the calendar does, waiting for them
//! to be issued, and reading and verifying them the way a tenant and an auditor would.

use crate::TestApp;
use docket_platform::access_reviews::Quarter;
use docket_platform::access_reviews::schedule::{self, RunReport, RunRequest};
use docket_platform::ids::TenantId;
use reqwest::Method;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

impl TestApp {
    /// Makes and queues `quarter`'s review of `tenant` (the scheduler's step for one tenant).
    pub async fn run_access_review(&self, quarter: Quarter, tenant: TenantId) -> RunReport {
        let req = RunRequest {
            quarter,
            only: Some(tenant),
            requested_by: "test".into(),
            retry_failed: false,
        };
        schedule::run(
            &self.control,
            &crate::billing::queue(self),
            &req,
            chrono::Utc::now(),
        )
        .await
        .expect("access review run")
    }

    /// The tenant's reviews (`GET /v1/access-reviews`).
    pub async fn access_reviews(&self, token: &str) -> Vec<Value> {
        let v: Value = self
            .call(Method::GET, "/v1/access-reviews", Some(token), None)
            .await
            .json()
            .await
            .expect("json");
        v["access_reviews"].as_array().cloned().unwrap_or_default()
    }

    /// Polls until every review of the tenant is issued (or completed); panics after
    /// `timeout`. Returns them.
    pub async fn wait_reviews_issued(&self, token: &str, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let all = self.access_reviews(token).await;
            if !all.is_empty()
                && all
                    .iter()
                    .all(|r| r["status"] == "open" || r["status"] == "completed")
            {
                return all;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "reviews not issued in time: {all:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs `docketctl access-review verify FILE --public-key KEYS` (the real binary, no
    /// deployment) with the keys this deployment publishes; returns (exit code, report).
    pub async fn verify_access_review(&self, file: &Path) -> (i32, Value) {
        self.verify_offline(&["access-review", "verify"], file).await
    }
}
