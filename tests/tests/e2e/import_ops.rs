//! Operator side of bulk imports: `docketctl import` of a folder (through the library
//! function the binary calls), and stalled jobs reported apart from queued ones in the
//! import's status and on `/metrics`.

use docket_tests::synthetic;
use docket_tests::{TestApp, spawn_app};
use std::time::{Duration, Instant};

/// `docketctl import --tenant SLUG DIR` as the binary runs it, against this app.
async fn import(
    app: &TestApp,
    slug: &str,
    dir: &std::path::Path,
    wait: Option<Duration>,
) -> anyhow::Result<serde_json::Value> {
    docketctl::import_folder(&app.config, &app.control, &app.auditor(), slug, dir, wait).await
}

fn folder_of(n: u64, seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("sub/deeper")).expect("mkdir");
    for i in 0..n {
        let sub = if i % 2 == 0 { "sub" } else { "sub/deeper" };
        std::fs::write(
            dir.path().join(format!("{sub}/c{i:03}.txt")),
            synthetic::contract(seed, i),
        )
        .expect("write");
    }
    std::fs::write(dir.path().join(".DS_Store"), b"hidden: skipped").expect("write");
    std::fs::write(dir.path().join("sub/setup.exe"), docket_tests::fixtures::exe()).expect("write");
    dir
}

#[tokio::test]
async fn docketctl_import_stores_a_folder_and_follows_it_to_the_end() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("onboard", "business", "shared").await;
    let _worker = app.spawn_worker().await;
    let _feeder = app.spawn_feeder();
    let dir = folder_of(30, 31);
    let out = import(&app, &t.slug, dir.path(), Some(Duration::from_secs(600)))
        .await
        .expect("import");
    assert_eq!(
        out["total"], 31,
        "30 contracts and one program; the hidden file is skipped: {out}"
    );
    assert_eq!(out["ready"], 30, "{out}");
    assert_eq!(out["failed"], 1, "{out}");
    assert_eq!(out["complete"], true, "{out}");
    assert!(out["chunks"].as_i64().unwrap_or(0) >= 30, "{out}");
    let names: Vec<String> =
        sqlx::query_scalar("SELECT filename FROM documents WHERE tenant_id = $1 ORDER BY filename LIMIT 2")
            .bind(t.id)
            .fetch_all(app.control.pool())
            .await
            .expect("names");
    assert_eq!(
        names,
        vec!["sub/c000.txt", "sub/c002.txt"],
        "paths relative to the folder"
    );
    assert_eq!(app.audit_count(t.id, "imports.create", None).await, 1);

    // Unknown tenants and empty folders are clear errors.
    let empty = tempfile::tempdir().expect("tempdir");
    let e = import(&app, &t.slug, empty.path(), None)
        .await
        .expect_err("empty folder");
    assert!(e.to_string().contains("holds no files"), "{e}");
    let e = import(&app, "no-such-tenant", dir.path(), None)
        .await
        .expect_err("unknown tenant");
    assert!(e.to_string().contains("no-such-tenant"), "{e}");
}

#[tokio::test]
async fn a_stalled_job_is_reported_apart_from_queued_documents() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("stall", "business", "shared").await;
    let token = app.owner_token(&t).await;
    // No worker: the feeder admits the documents and nothing picks them up.
    let _feeder = app.spawn_feeder();
    let dir = folder_of(3, 41);
    let out = import(&app, &t.slug, dir.path(), None).await.expect("import");
    let id = out["import_id"].as_str().expect("id").to_owned();
    let started = Instant::now();
    let status = loop {
        let s = app.import_status(&token, &id).await;
        if s["in_queue"] == 3 {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the feeder never admitted them: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["stalled"], 0);
    assert_eq!(status["queued"], 3, "{status}");
    assert_eq!(status["failed"], 1, "the program is not a document: {status}");

    // One parse job has been "running" for an hour (its worker hangs), one just started.
    let docs: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM documents WHERE tenant_id = $1 AND status = 'queued' ORDER BY filename",
    )
    .bind(t.id)
    .fetch_all(app.control.pool())
    .await
    .expect("docs");
    for (doc, age) in [(docs[0], "1 hour"), (docs[1], "1 second")] {
        sqlx::query(
            "UPDATE jobs SET status = 'running', attempts = 1, updated_at = now() - $2::interval
             WHERE target_id = $1",
        )
        .bind(doc)
        .bind(age)
        .execute(app.control.pool())
        .await
        .expect("job");
        sqlx::query("UPDATE documents SET status = 'processing' WHERE id = $1")
            .bind(doc)
            .execute(app.control.pool())
            .await
            .expect("doc");
    }
    let s = app.import_status(&token, &id).await;
    assert_eq!(s["stalled"], 1, "only the hour-long job is stalled: {s}");
    assert_eq!(s["processing"], 2, "{s}");
    assert_eq!(s["in_queue"], 1, "the third is merely queued: {s}");
    let metrics = app.admin_get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.contains("docket_jobs_stalled{kind=\"parse\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("docket_jobs_stalled{kind=\"embed\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("docket_import_documents_in_flight 3"),
        "{metrics}"
    );
}
