//! Data-portability exports into the customer's own bucket (the S3 test server): the whole
//! tenant, verified offline with `docketctl export verify`; bad destinations refused before
//! any data leaves; never another tenant's data; tampering named.

use docket_tests::actors::expect_error;
use docket_tests::exporting::{self, bucket, download, request};
use docket_tests::spawn_app_with;
use docket_tests::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

fn sha(b: &[u8]) -> String {
    docket_platform::exports::package::sha256_hex(b)
}

fn all_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir").flatten() {
            match e.path().is_dir() {
                true => stack.push(e.path()),
                false => out.push(e.path()),
            }
        }
    }
    out
}

async fn count(app: &TestApp, sql: &str, tenant: docket_platform::ids::TenantId) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(tenant)
        .fetch_one(app.control.pool())
        .await
        .expect("count")
}

#[tokio::test]
async fn a_tenant_exports_everything_to_its_bucket_and_the_package_verifies_offline() {
    let app = spawn_app().await;
    let worker = app.spawn_worker_process("export-worker", true);
    let t = app.create_tenant_on("exporter", "business", "shared").await;
    let token = app.owner_token(&t).await;
    let contract = docket_tests::contract(3);
    let doc = app.upload_ready(&token, "contract.pdf", contract.clone()).await;
    app.upload_ready(
        &token,
        "note.txt",
        b"The Supplier shall deliver within thirty days.".to_vec(),
    )
    .await;
    let asked = app
        .ask(&token, "When must the supplier deliver?", json!({}))
        .await;
    assert!(asked["status"].is_string(), "{asked}");

    let b = bucket().await;
    let id = app.request_export(&token, request(&b, "exports")).await;
    let done = app.wait_export(&token, &id, Duration::from_secs(180)).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["percent"], 100.0);
    assert!(
        !done.to_string().contains("customer-secret"),
        "no secret in the API: {done}"
    );
    let dir = app.dirs.path().join("package");
    let n = download(&b, &format!("exports/docket-export-{id}"), &dir).await;
    assert!(n > 8, "{n} files");

    let (code, report) = app.verify_export(&dir).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        report["signed_by"].is_string() && report["key_pinned"] == true,
        "{report}"
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest")).expect("json");
    assert_eq!(manifest["tenant_id"], t.id.to_string());
    assert_eq!(manifest["format"], "docket-export/2");
    assert_eq!(
        sha(&std::fs::read(dir.join("manifest.json")).expect("m")),
        done["manifest_sha256"].as_str().expect("sha")
    );
    for (store, sql) in [
        ("documents", "SELECT count(*) FROM documents WHERE tenant_id = $1"),
        ("chunks", "SELECT count(*) FROM chunks WHERE tenant_id = $1"),
        ("queries", "SELECT count(*) FROM queries WHERE tenant_id = $1"),
        ("usage", "SELECT count(*) FROM usage_events WHERE tenant_id = $1"),
        ("users", "SELECT count(*) FROM users WHERE tenant_id = $1"),
    ] {
        assert_eq!(
            manifest["counts"][store].as_i64(),
            Some(count(&app, sql, t.id).await),
            "{store}"
        );
    }
    assert!(
        manifest["counts"]["documents"].as_i64() == Some(2)
            && manifest["counts"]["chunks"].as_i64() > Some(2)
    );
    assert_eq!(
        manifest["embeddings"]["dimension"], 384,
        "{}",
        manifest["embeddings"]
    );
    // The original comes back decrypted, byte for byte.
    let did = doc["id"]
        .as_str()
        .or(doc["document_id"].as_str())
        .expect("doc id");
    let original = std::fs::read(dir.join(format!("documents/{did}/original"))).expect("original");
    assert_eq!(sha(&original), sha(&contract));
    // Never a secret: no password or key hashes, credentials erased, not in audit or logs.
    let users = std::fs::read_to_string(dir.join("users.jsonl")).expect("users");
    assert!(users.contains(&t.owner_email) && !users.contains("password_hash") && !users.contains("$argon2"));
    let sealed: Option<Vec<u8>> = sqlx::query_scalar("SELECT credentials FROM exports WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(app.control.pool())
        .await
        .expect("row");
    assert_eq!(sealed, None, "credentials are erased when the export ends");
    let leaked = count(
        &app,
        "SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND details::text LIKE '%customer-secret%'",
        t.id,
    )
    .await;
    assert_eq!(leaked, 0);
    let log = std::fs::read_to_string(app.dirs.path().join("export-worker.log")).unwrap_or_default();
    assert!(!log.contains("customer-secret"), "the worker logged the secret");
    for action in ["exports.requested", "exports.started", "exports.finished"] {
        assert_eq!(app.audit_count(t.id, action, None).await, 1, "{action}");
    }
    drop(worker);

    // Tampering: one byte of a file, then the manifest itself.
    let file = dir.join(format!("documents/{did}/original"));
    let mut bytes = original.clone();
    bytes[100] ^= 1;
    std::fs::write(&file, &bytes).expect("tamper");
    let (code, report) = app.verify_export(&dir).await;
    assert_eq!(code, 3, "{report}");
    assert!(
        report["problems"]
            .to_string()
            .contains(&format!("documents/{did}/original")),
        "{report}"
    );
    std::fs::write(&file, &original).expect("restore");
    let mut m = std::fs::read(dir.join("manifest.json")).expect("manifest");
    let at = m.iter().position(|b| *b == b'"').expect("a quote") + 1;
    m[at] ^= 0x20;
    std::fs::write(dir.join("manifest.json"), &m).expect("tamper manifest");
    let (code, report) = app.verify_export(&dir).await;
    assert_eq!(code, 3, "{report}");
    assert!(
        report["problems"].to_string().contains("manifest.json"),
        "{report}"
    );
}

#[tokio::test]
async fn bad_destinations_are_refused_before_any_data_leaves() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("badexp", "business", "shared").await;
    let token = app.owner_token(&t).await;
    let missing = request("no-such-bucket-here", "x");
    expect_error(
        app.call(Method::POST, "/v1/exports", Some(&token), Some(missing))
            .await,
        400,
        "no_such_bucket",
    )
    .await;
    let mut down = request("whatever", "x");
    down["s3"]["endpoint"] = json!("http://127.0.0.1:9");
    expect_error(
        app.call(Method::POST, "/v1/exports", Some(&token), Some(down))
            .await,
        400,
        "destination_unreachable",
    )
    .await;
    let both = json!({"download": true, "s3": {"bucket": "b"}});
    expect_error(
        app.call(Method::POST, "/v1/exports", Some(&token), Some(both))
            .await,
        400,
        "invalid_destination",
    )
    .await;
    expect_error(
        app.call(
            Method::POST,
            "/v1/exports",
            Some(&token),
            Some(json!({"s3": {"bucket": "b"}})),
        )
        .await,
        400,
        "invalid_destination",
    )
    .await;
    let n = count(&app, "SELECT count(*) FROM exports WHERE tenant_id = $1", t.id).await;
    assert_eq!(n, 0, "nothing was queued");
    assert!(
        app.audit_reasons("no_such_bucket").await >= 1,
        "refusals are audited"
    );
    // Plans without the feature, roles without the capability.
    let team = app.create_tenant_on("teamexp", "team", "shared").await;
    let team_token = app.owner_token(&team).await;
    let b = bucket().await;
    let r = app
        .call(
            Method::POST,
            "/v1/exports",
            Some(&team_token),
            Some(request(&b, "x")),
        )
        .await;
    assert_eq!(r.status(), 403);
    let (_, member) = app.user_with_role(&t, &token, "member").await;
    expect_error(
        app.call(Method::POST, "/v1/exports", Some(&member), Some(request(&b, "x")))
            .await,
        403,
        "forbidden",
    )
    .await;
    // The bucket saw nothing but the probe, which is gone.
    let store = exporting::client(&b);
    let left: Vec<_> = futures::TryStreamExt::try_collect(store.list(None))
        .await
        .expect("list");
    assert!(left.is_empty(), "{left:?}");

    // A loopback endpoint without the deployment's private-network flag.
    let strict = spawn_app_with(&[("DOCKET_IMPORT_ALLOW_HTTP", "false")]).await;
    let s = strict.create_tenant_on("strict", "business", "shared").await;
    let st = strict.owner_token(&s).await;
    let r = strict
        .call(Method::POST, "/v1/exports", Some(&st), Some(request(&b, "x")))
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_ne!(v["error"]["code"], "no_such_bucket", "{v}");
}

#[tokio::test]
async fn two_tenants_export_at_once_and_each_package_holds_only_its_own() {
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let (a, b) = (
        app.create_tenant_on("exp-a", "business", "shared").await,
        app.create_tenant_on("exp-b", "business", "shared").await,
    );
    let (ta, tb) = (app.owner_token(&a).await, app.owner_token(&b).await);
    let da = app
        .upload_ready(
            &ta,
            "a.txt",
            b"Canary ALPHA-7731: the lessee pays rent monthly.".to_vec(),
        )
        .await;
    let db = app
        .upload_ready(
            &tb,
            "b.txt",
            b"Canary BRAVO-5519: the licensor grants a licence.".to_vec(),
        )
        .await;
    let bucket = bucket().await;
    let (ia, ib) = tokio::join!(
        app.request_export(&ta, request(&bucket, "a")),
        app.request_export(&tb, request(&bucket, "b")),
    );
    for (token, id) in [(&ta, &ia), (&tb, &ib)] {
        let done = app.wait_export(token, id, Duration::from_secs(120)).await;
        assert_eq!(done["status"], "done", "{done}");
    }
    let id_of = |d: &Value| {
        d["id"]
            .as_str()
            .or(d["document_id"].as_str())
            .expect("id")
            .to_owned()
    };
    for (prefix, id, own, other_doc, other_canary, other_tenant) in [
        ("a", &ia, "ALPHA-7731", id_of(&db), "BRAVO-5519", b.id.to_string()),
        ("b", &ib, "BRAVO-5519", id_of(&da), "ALPHA-7731", a.id.to_string()),
    ] {
        let dir = app.dirs.path().join(format!("pkg-{prefix}"));
        download(&bucket, &format!("{prefix}/docket-export-{id}"), &dir).await;
        let (code, report) = app.verify_export(&dir).await;
        assert_eq!(code, 0, "{report}");
        let mut saw_own = false;
        for f in all_files(&dir) {
            let text = String::from_utf8_lossy(&std::fs::read(&f).expect("read")).to_string();
            for needle in [other_doc.clone(), other_canary.to_owned(), other_tenant.clone()] {
                assert!(!text.contains(&needle), "{} holds {needle}", f.display());
            }
            saw_own |= text.contains(own);
        }
        assert!(saw_own, "the package holds its own canary");
    }
    // Another tenant's export is not found.
    expect_error(
        app.call(Method::GET, &format!("/v1/exports/{ia}"), Some(&tb), None)
            .await,
        404,
        "not_found",
    )
    .await;
    expect_error(
        app.call(Method::DELETE, &format!("/v1/exports/{ia}"), Some(&tb), None)
            .await,
        404,
        "not_found",
    )
    .await;
    let op = app.operator_token().await;
    let ops: Value = app
        .call(Method::GET, "/ops/exports", Some(&op), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ops["exports"].as_array().map(Vec::len), Some(2));
    assert!(!ops.to_string().contains("customer-secret"));
}

#[tokio::test]
async fn a_worker_killed_mid_export_is_resumed_without_sending_a_finished_file_twice() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("resume", "business", "shared").await;
    let token = app.owner_token(&t).await;
    let docs = (0..300)
        .map(|i| {
            let body: Vec<u8> = format!("Seeded contract {i}. ")
                .into_bytes()
                .into_iter()
                .cycle()
                .take(64 * 1024)
                .collect();
            (format!("seeded-{i}.txt"), body)
        })
        .collect();
    app.seed_originals(t.id, docs).await;
    let mut first = app.spawn_worker_process("export-first", false);
    let b = bucket().await;
    let id = app.request_export(&token, request(&b, "r")).await;
    // Kill the worker once a good part of the package is written.
    let started = std::time::Instant::now();
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM export_files WHERE export_id = $1::uuid")
            .bind(&id)
            .fetch_one(app.control.pool())
            .await
            .expect("files");
        if n >= 60 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the export did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill();
    let before: Vec<String> = sqlx::query_scalar("SELECT path FROM export_files WHERE export_id = $1::uuid")
        .bind(&id)
        .fetch_all(app.control.pool())
        .await
        .expect("files");
    let store = exporting::client(&b);
    let root = format!("r/docket-export-{id}");
    let stamps = |store: std::sync::Arc<dyn object_store::ObjectStore>, root: String| async move {
        let listed: Vec<_> = futures::TryStreamExt::try_collect(
            store.list(Some(&object_store::path::Path::from(root.as_str()))),
        )
        .await
        .expect("list");
        listed
            .into_iter()
            .map(|o| (o.location.to_string(), (o.last_modified, o.e_tag)))
            .collect::<std::collections::HashMap<_, _>>()
    };
    let first_pass = stamps(store.clone(), root.clone()).await;
    let _second = app.spawn_worker_process("export-second", false);
    let done = app.wait_export(&token, &id, Duration::from_secs(240)).await;
    assert_eq!(done["status"], "done", "{done}");
    let after = stamps(store.clone(), root.clone()).await;
    for path in &before {
        let key = format!("{root}/{path}");
        assert_eq!(
            first_pass.get(&key),
            after.get(&key),
            "{path} was written again after the resume"
        );
    }
    let dir = app.dirs.path().join("resumed");
    download(&b, &root, &dir).await;
    let (code, report) = app.verify_export(&dir).await;
    assert_eq!(code, 0, "{report}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("m")).expect("json");
    assert_eq!(manifest["counts"]["documents"], 300);
    let files = manifest["files"].as_array().expect("files");
    let unique: std::collections::HashSet<_> = files.iter().map(|f| f["path"].clone()).collect();
    assert_eq!(unique.len(), files.len(), "no file twice in the manifest");
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM exports WHERE id = $1::uuid")
        .bind(&id)
        .fetch_one(app.control.pool())
        .await
        .expect("attempts");
    assert_eq!(attempts, 2, "the second worker resumed it");
}

#[tokio::test]
async fn an_export_lost_from_the_queue_is_queued_again_by_the_calendar() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("lost", "business", "shared").await;
    let token = app.owner_token(&t).await;
    app.seed_originals(t.id, vec![("one.txt".into(), b"One contract.".to_vec())])
        .await;
    let b = bucket().await;
    let id = app.request_export(&token, request(&b, "lost")).await;
    // Redis loses the queue before any worker took the job.
    assert!(app.flush_redis().await > 0);
    let queue = docket_platform::jobs::JobQueue::new(
        docket_platform::redis_conn::Redis::new(&app.config.redis.url, &app.config.redis.prefix)
            .expect("redis"),
        5,
    );
    let now = chrono::Utc::now();
    let quiet = chrono::Duration::minutes(10);
    let young = docket_platform::exports::job::requeue_stale(&app.control, &queue, now, quiet)
        .await
        .expect("sweep");
    assert_eq!(young, 0, "a fresh export is left alone");
    let later = now + chrono::Duration::minutes(11);
    let n = docket_platform::exports::job::requeue_stale(&app.control, &queue, later, quiet)
        .await
        .expect("sweep");
    assert_eq!(n, 1);
    let _worker = app.spawn_worker().await;
    let done = app.wait_export(&token, &id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "done", "{done}");
}
