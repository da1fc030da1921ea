//! Download packages: an export kept in Docket's storage (sealed under the tenant's
//! prefix), fetched through a short-lived signed link as one tar archive that verifies
//! offline; links that are altered, expired or of another tenant refused; packages
//! deleted when they expire or their export is cancelled.

use docket_platform::blobs::{BlobError, BlobStore};
use docket_platform::exports::link::Link;
use docket_tests::actors::expect_error;
use docket_tests::exporting::{bucket, request, untar};
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

fn sha(b: &[u8]) -> String {
    docket_platform::exports::package::sha256_hex(b)
}

#[tokio::test]
async fn a_download_package_comes_through_a_signed_link_verifies_and_is_deleted_when_due() {
    let app = spawn_app().await;
    let (a, b, c) = (
        app.create_tenant_on("dl-a", "business", "shared").await,
        app.create_tenant_on("dl-b", "business", "shared").await,
        app.create_tenant_on("dl-c", "business", "shared").await,
    );
    let (ta, tb, tc) = (
        app.owner_token(&a).await,
        app.owner_token(&b).await,
        app.owner_token(&c).await,
    );
    // Before any worker runs: an export that is not done has no link; cancelled, its
    // package is due for deletion at once.
    let queued = app.request_export(&tc, json!({"download": true})).await;
    expect_error(
        app.call(
            Method::POST,
            &format!("/v1/exports/{queued}/link"),
            Some(&tc),
            None,
        )
        .await,
        409,
        "export_not_ready",
    )
    .await;
    let r = app
        .call(Method::DELETE, &format!("/v1/exports/{queued}"), Some(&tc), None)
        .await;
    assert_eq!(r.status(), 200);

    let _worker = app.spawn_worker().await;
    let contract = docket_tests::contract(5);
    let doc = app.upload_ready(&ta, "contract.pdf", contract.clone()).await;
    app.upload_ready(&ta, "a.txt", b"Canary ALPHA-4410: rent is due monthly.".to_vec())
        .await;
    let other = app
        .upload_ready(
            &tb,
            "b.txt",
            b"Canary BRAVO-8821: the licence is exclusive.".to_vec(),
        )
        .await;
    let id = app.request_export(&ta, json!({"download": true})).await;
    let done = app.wait_export(&ta, &id, Duration::from_secs(180)).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["kind"], "download");
    let keep = chrono::DateTime::parse_from_rfc3339(done["package_expires_at"].as_str().expect("expiry"))
        .expect("date")
        .with_timezone(&chrono::Utc)
        - chrono::Utc::now();
    assert!(
        keep > chrono::Duration::days(6) && keep <= chrono::Duration::days(7),
        "{keep}"
    );

    // At rest the package is sealed with the tenant's key, under its prefix.
    let blobs = BlobStore::from_config(&app.config.objects).expect("blobs");
    let did = doc["id"]
        .as_str()
        .or(doc["document_id"].as_str())
        .expect("doc id");
    let sealed = blobs
        .get_sealed(a.id, &format!("exports/{id}/documents/{did}/original"))
        .await
        .expect("stored");
    assert!(
        !sealed.windows(64).any(|w| w == &contract[200..264]),
        "stored in clear"
    );
    assert!(matches!(
        blobs
            .get(&app.data_key(b.id).await, &format!("exports/{id}/manifest.json"))
            .await,
        Err(BlobError::NotFound)
    ));

    // A link, fetched without any token, is the whole package as one tar archive.
    let link: Value = app
        .call(Method::POST, &format!("/v1/exports/{id}/link"), Some(&ta), None)
        .await
        .json()
        .await
        .expect("json");
    let url = link["url"].as_str().expect("url").to_owned();
    let r = app.get(&url).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-tar");
    let len: usize = r.headers()["content-length"]
        .to_str()
        .expect("len")
        .parse()
        .expect("n");
    let tar = r.bytes().await.expect("body");
    assert_eq!(tar.len(), len);
    let dir = app.dirs.path().join("download");
    let names = untar(&tar, &dir);
    assert!(
        names
            .iter()
            .all(|n| n.starts_with(&format!("docket-export-{id}/"))),
        "{names:?}"
    );
    let pkg = dir.join(format!("docket-export-{id}"));
    let (code, report) = app.verify_export(&pkg).await;
    assert_eq!(code, 0, "{report}");
    let original = std::fs::read(pkg.join(format!("documents/{did}/original"))).expect("original");
    assert_eq!(sha(&original), sha(&contract));
    assert_eq!(
        sha(&std::fs::read(pkg.join("manifest.json")).expect("m")),
        done["manifest_sha256"].as_str().expect("sha")
    );
    let text = String::from_utf8_lossy(&tar);
    assert!(text.contains("ALPHA-4410"));
    let other_doc = other["id"]
        .as_str()
        .or(other["document_id"].as_str())
        .expect("id");
    for needle in ["BRAVO-8821", other_doc, &b.id.to_string()] {
        assert!(!text.contains(needle), "the package holds {needle}");
    }
    // A HEAD is not a download (and is not audited as one).
    let head = app
        .client
        .head(format!("{}{url}", app.address))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), 405);
    assert_eq!(app.audit_count(a.id, "exports.link_issued", None).await, 1);
    assert_eq!(app.audit_count(a.id, "exports.downloaded", None).await, 1);

    // Altered, re-pointed at another tenant, or expired: refused.
    let mut altered = url.clone();
    let last = altered.pop().expect("char");
    altered.push(if last == '0' { '1' } else { '0' });
    expect_error(app.get(&altered).await, 403, "link_invalid").await;
    let moved = url.replace(&a.id.to_string(), &b.id.to_string());
    expect_error(app.get(&moved).await, 403, "link_invalid").await;
    expect_error(
        app.get(&format!("/v1/exports/{id}/package")).await,
        403,
        "link_invalid",
    )
    .await;
    let old = Link::new(
        a.id,
        id.parse().expect("uuid"),
        "user:x",
        chrono::Utc::now() - chrono::Duration::hours(1),
    );
    expect_error(
        app.get(&old.url(&app.config.master_key)).await,
        410,
        "link_expired",
    )
    .await;
    // Another tenant cannot ask for a link; a member cannot; a bucket export has none.
    expect_error(
        app.call(Method::POST, &format!("/v1/exports/{id}/link"), Some(&tb), None)
            .await,
        404,
        "not_found",
    )
    .await;
    let (_, member) = app.user_with_role(&a, &ta, "member").await;
    expect_error(
        app.call(
            Method::POST,
            &format!("/v1/exports/{id}/link"),
            Some(&member),
            None,
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    let bkt = bucket().await;
    let to_bucket = app.request_export(&tb, request(&bkt, "x")).await;
    expect_error(
        app.call(
            Method::POST,
            &format!("/v1/exports/{to_bucket}/link"),
            Some(&tb),
            None,
        )
        .await,
        400,
        "not_a_download",
    )
    .await;

    // Due packages are deleted: the cancelled one at once, this one once it expires.
    let queue = app.job_queue();
    let purge = docket_platform::exports::purge::queue_due;
    assert_eq!(
        purge(&app.control, &queue, chrono::Utc::now())
            .await
            .expect("sweep"),
        1
    );
    sqlx::query("UPDATE exports SET package_expires_at = now() - interval '61 minutes' WHERE id = $1::uuid")
        .bind(&id)
        .execute(app.control.pool())
        .await
        .expect("expire");
    let started = std::time::Instant::now();
    loop {
        purge(&app.control, &queue, chrono::Utc::now())
            .await
            .expect("sweep");
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM exports WHERE id IN ($1::uuid, $2::uuid) AND package_deleted_at IS NULL",
        )
        .bind(&id)
        .bind(&queued)
        .fetch_one(app.control.pool())
        .await
        .expect("count");
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "packages not deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(matches!(
        blobs
            .get(&app.data_key(a.id).await, &format!("exports/{id}/manifest.json"))
            .await,
        Err(BlobError::NotFound)
    ));
    assert_eq!(app.audit_count(a.id, "exports.package_deleted", None).await, 1);
    assert_eq!(app.audit_count(c.id, "exports.package_deleted", None).await, 1);
    expect_error(app.get(&url).await, 410, "package_expired").await;
    expect_error(
        app.call(Method::POST, &format!("/v1/exports/{id}/link"), Some(&ta), None)
            .await,
        410,
        "package_expired",
    )
    .await;
    assert_eq!(
        purge(&app.control, &queue, chrono::Utc::now())
            .await
            .expect("sweep"),
        0
    );
}
