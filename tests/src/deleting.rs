//! Deletions through the real API, and the tests' own residue scan: independent of the
//! platform's (superuser SQL over every table, the object folder walked on disk, every
//! Redis key of the test read whatever its type).

use crate::TestApp;
use docket_platform::ids::TenantId;
use docket_rag::vectors::{Placement, TenantScope, VectorIndex};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Tables kept on purpose after a deletion (the audit chains, the usage ledger and its
/// roll-up): the certificate lists them as retained.
pub const RETAINED: [&str; 4] = [
    "audit_events",
    "platform_audit_events",
    "usage_events",
    "usage_monthly",
];

impl TestApp {
    /// `DELETE /v1/documents/{id}` (with `?dry_run=true` when asked); status and body.
    pub async fn delete_document(&self, token: &str, id: &str, dry_run: bool) -> (u16, Value) {
        let path = match dry_run {
            true => format!("/v1/documents/{id}?dry_run=true"),
            false => format!("/v1/documents/{id}"),
        };
        let r = self.call(Method::DELETE, &path, Some(token), None).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Polls a deletion until it ends (`done`, `residue_found`, `failed`); panics after
    /// `timeout`.
    pub async fn wait_deletion(&self, token: &str, id: &str, timeout: Duration) -> Value {
        let ended = ["done", "residue_found", "failed"];
        self.poll_until(token, &format!("/v1/deletions/{id}"), &ended, timeout)
            .await
    }

    /// Runs `docketctl certificate verify FILE --public-key KEYS` (the real binary) with the
    /// keys this deployment publishes; returns (exit code, report).
    pub async fn verify_certificate(&self, file: &Path) -> (i32, Value) {
        self.verify_offline(&["certificate", "verify"], file).await
    }

    /// `POST /v1/deletions {"scope": "tenant"}` then the confirmation: the deletion id and
    /// the certificate token.
    pub async fn delete_tenant_confirmed(&self, token: &str) -> (String, String) {
        let r = self
            .call(
                Method::POST,
                "/v1/deletions",
                Some(token),
                Some(json!({"scope": "tenant"})),
            )
            .await;
        assert_eq!(r.status(), 201);
        let asked: Value = r.json().await.expect("json");
        assert_eq!(asked["status"], "awaiting_confirmation", "{asked}");
        let id = asked["deletion_id"].as_str().expect("id").to_owned();
        let confirm = format!("/v1/deletions/{id}/confirm");
        // A wrong code confirms nothing.
        crate::actors::expect_error(
            self.call(
                Method::POST,
                &confirm,
                Some(token),
                Some(json!({"confirmation_code": "confirm-nope"})),
            )
            .await,
            403,
            "wrong_confirmation_code",
        )
        .await;
        let code = asked["confirmation_code"].as_str().expect("code");
        let r = self
            .call(
                Method::POST,
                &confirm,
                Some(token),
                Some(json!({"confirmation_code": code})),
            )
            .await;
        assert_eq!(r.status(), 202);
        let scheduled: Value = r.json().await.expect("json");
        assert_eq!(scheduled["status"], "scheduled", "{scheduled}");
        let cert_token = scheduled["certificate_token"].as_str().expect("token").to_owned();
        (id, cert_token)
    }

    /// Polls `GET /v1/deletion-certificates/{id}` with the certificate token until the
    /// certificate is there (409 until then).
    pub async fn tenant_certificate(&self, id: &str, token: &str) -> String {
        let started = Instant::now();
        loop {
            let r = self
                .call(
                    Method::GET,
                    &format!("/v1/deletion-certificates/{id}"),
                    Some(token),
                    None,
                )
                .await;
            match r.status().as_u16() {
                200 => return r.text().await.expect("text"),
                409 => {}
                s => panic!(
                    "certificate fetch answered {s}: {}",
                    r.text().await.unwrap_or_default()
                ),
            }
            assert!(
                started.elapsed() < Duration::from_secs(240),
                "no certificate after 240 s"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Waits until deletion `id` is `running` (it may be `queued` first); panics after a
    /// minute or on any other status.
    pub async fn wait_deletion_running(&self, id: &str) {
        let started = Instant::now();
        loop {
            let s: String = sqlx::query_scalar("SELECT status FROM deletions WHERE id = $1::uuid")
                .bind(id)
                .fetch_one(self.control.pool())
                .await
                .expect("status");
            if s == "running" {
                return;
            }
            assert!(
                s == "queued" && started.elapsed() < Duration::from_secs(60),
                "{s}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs the calendar's step that removes an ended tenant deletion's own `delete` task
    /// from the queue until it has (the task is acknowledged just after the deletion ends).
    pub async fn forget_tenant_deletion_tasks(&self) {
        let queue = self.job_queue();
        let started = Instant::now();
        while docket_platform::deletions::tenant::forget_own_tasks(&self.control, &queue)
            .await
            .expect("forget")
            == 0
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the delete task never finished"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Rows of every table in the database whose text contains `needle` (the retained
    /// tables apart), by table: the test's own scan, as a superuser.
    pub async fn rows_naming(&self, needle: &str) -> BTreeMap<String, i64> {
        let su = self.pool_as("docket_test_super").await;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT relname::text FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1",
        )
        .fetch_all(&su)
        .await
        .expect("catalog");
        let mut out = BTreeMap::new();
        for t in tables.iter().filter(|t| !RETAINED.contains(&t.as_str())) {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {t} r WHERE strpos(r::text, $1) > 0"
            )))
            .bind(needle)
            .fetch_one(&su)
            .await
            .unwrap_or_else(|e| panic!("scan {t}: {e}"));
            if n > 0 {
                out.insert(t.clone(), n);
            }
        }
        out
    }

    /// Rows per table of `tenant` (every table with a `tenant_id`), as a superuser.
    pub async fn tenant_rows(&self, tenant: docket_platform::ids::TenantId) -> BTreeMap<String, i64> {
        let su = self.pool_as("docket_test_super").await;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_class c
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
             WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace ORDER BY 1",
        )
        .fetch_all(&su)
        .await
        .expect("catalog");
        let mut out = BTreeMap::new();
        for t in tables {
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {t} WHERE tenant_id = $1"
            )))
            .bind(tenant)
            .fetch_one(&su)
            .await
            .unwrap_or_else(|e| panic!("count {t}: {e}"));
            out.insert(t, n);
        }
        out
    }

    /// Paths of stored objects (the test's local object folder) containing `needle`.
    pub fn objects_naming(&self, needle: &str) -> Vec<String> {
        let mut out = vec![];
        let mut stack = vec![self.dirs.path().join("objects")];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().contains(needle) {
                    out.push(p.display().to_string());
                }
            }
        }
        out
    }

    /// Redis keys of this test whose name or content contains `needle`, whatever their type.
    pub async fn redis_naming(&self, needle: &str) -> Vec<String> {
        let (mut conn, keys) = self.redis_keys().await;
        let mut out = vec![];
        for k in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&k)
                .query_async(&mut conn)
                .await
                .expect("type");
            // Whatever the type, every member as bytes (a string is its one value).
            let (read, whole_range) = match kind.as_str() {
                "string" => ("GET", false),
                "hash" => ("HGETALL", false),
                "list" => ("LRANGE", true),
                "set" => ("SMEMBERS", false),
                "zset" => ("ZRANGE", true),
                _ => continue,
            };
            let mut cmd = redis::cmd(read);
            cmd.arg(&k);
            if whole_range {
                cmd.arg(0).arg(-1);
            }
            let content: Vec<Vec<u8>> = match read {
                "GET" => vec![cmd.query_async(&mut conn).await.unwrap_or_default()],
                _ => cmd.query_async(&mut conn).await.unwrap_or_default(),
            };
            let n = needle.as_bytes();
            if k.contains(needle) || content.iter().any(|c| c.windows(n.len()).any(|w| w == n)) {
                out.push(k);
            }
        }
        out
    }
}

/// Whether a whole-tenant deletion keeps rows of `table` (the audit chains, the ledger,
/// invoices and their history, the deletions, the shredded key row).
pub fn kept_by_tenant_deletion(table: &str) -> bool {
    RETAINED.contains(&table) || docket_platform::deletions::tenant_sweep::retained(table)
}

/// Every vector placement.
pub const PLACEMENTS: [Placement; 3] = [Placement::Shared, Placement::Dedicated, Placement::Isolated];

/// Points of the tenant (of one document) in every placement.
pub async fn points(store: &impl VectorIndex, t: TenantId, doc: Option<uuid::Uuid>) -> usize {
    let mut n = 0;
    for p in PLACEMENTS {
        n += store
            .count(TenantScope::new(t.as_uuid(), p), doc)
            .await
            .expect("count");
    }
    n
}

/// Chunk rows of a document.
pub async fn chunks_of(app: &TestApp, doc: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM chunks WHERE document_id = $1::uuid")
        .bind(doc)
        .fetch_one(app.control.pool())
        .await
        .expect("chunks")
}

/// Uploads without waiting and polls until the document is being embedded.
pub async fn upload_until_embedding(app: &TestApp, token: &str, bytes: Vec<u8>) -> String {
    let v: Value = app
        .upload_raw(token, "long.pdf", bytes, None)
        .await
        .json()
        .await
        .expect("json");
    let id = v["document_id"].as_str().expect("id").to_owned();
    let started = Instant::now();
    loop {
        let d = app.document(token, &id).await;
        if d["stage"] == "embed" && d["status"] == "processing" {
            return id;
        }
        assert!(
            d["status"] != "ready" && started.elapsed() < Duration::from_secs(180),
            "never caught the document while embedding: {d}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether an answer cites the document.
pub fn cited(answer: &Value, doc: &str) -> bool {
    answer["citations"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["document_id"] == doc))
}
