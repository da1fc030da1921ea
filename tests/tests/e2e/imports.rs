//! Bulk imports through the API: a zip of a few hundred generated contracts with corrupt,
//! unsupported, empty and duplicate entries; malicious archives (zip bomb, path traversal,
//! 100,000 entries); a bucket prefix on a real S3-compatible server; and the API's error
//! paths (plan feature, unknown and foreign ids, cancelling twice).

use docket_tests::actors::expect_error;
use docket_tests::importing::{assert_totals_add_up, zip_bomb, zip_of, zip_of_empty_entries};
use docket_tests::{contract, spawn_app, synthetic};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const GOOD: u64 = 240;

#[tokio::test]
async fn a_zip_of_hundreds_imports_every_good_document_and_lists_the_bad_ones() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("bulk", "business", "shared").await;
    let token = app.owner_token(&t).await;
    let _worker = app.spawn_worker().await;
    let _feeder = app.spawn_feeder();

    let mut entries: Vec<(String, Vec<u8>)> = (0..GOOD)
        .map(|n| {
            (
                format!("contracts/c{n:04}.txt"),
                synthetic::contract(7, n).into_bytes(),
            )
        })
        .collect();
    let truncated = contract(2)[..1500].to_vec();
    entries.push(("bad/truncated-1.pdf".into(), truncated.clone()));
    entries.push((
        "bad/truncated-2.pdf".into(),
        [truncated.as_slice(), b"x"].concat(),
    ));
    entries.push(("bad/program.exe".into(), docket_tests::fixtures::exe()));
    entries.push(("bad/empty.txt".into(), vec![]));
    entries.push(("copy-of-c0001.txt".into(), synthetic::contract(7, 1).into_bytes()));
    entries.push(("folder/".into(), vec![]));
    let r = app.import_zip(&token, zip_of(&entries)).await;
    assert_eq!(r.status(), 202, "accepted");
    let v: Value = r.json().await.expect("json");
    let id = v["import_id"].as_str().expect("id").to_owned();
    assert_eq!(v["status_url"], format!("/v1/imports/{id}"));
    // Folders are not entries; everything else is counted from the start.
    assert_eq!(v["total"], GOOD + 6 - 1, "{v}");

    let s = app.wait_import(&token, &id, Duration::from_secs(900)).await;
    assert_eq!(s["status"], "done", "{s}");
    assert_eq!(s["ready"], GOOD, "every good document ready: {s}");
    assert_eq!(s["failed"], 4, "{s}");
    assert_eq!(s["duplicates"], 1, "{s}");
    assert_eq!(s["queued"], 0);
    assert_eq!(s["processing"], 0);
    assert_eq!(s["eta_seconds"], 0);
    assert_totals_add_up(&s);
    let docs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM documents WHERE tenant_id = $1 AND status = 'ready'")
            .bind(t.id)
            .fetch_one(app.control.pool())
            .await
            .expect("count");
    assert_eq!(docs, GOOD as i64, "each good entry became exactly one document");

    // Failures carry the entry's name and a code, in entry order, paged by cursor.
    let codes: Vec<(String, String)> = s["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| {
            (
                f["filename"].as_str().unwrap_or("").to_owned(),
                f["code"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            ("bad/truncated-1.pdf".to_owned(), "corrupt_file".to_owned()),
            ("bad/truncated-2.pdf".into(), "corrupt_file".into()),
            ("bad/program.exe".into(), "unsupported_media_type".into()),
            ("bad/empty.txt".into(), "empty_file".into()),
        ],
        "{s}"
    );
    let page = |cursor: Option<String>| {
        let path = match cursor {
            Some(c) => format!("/v1/imports/{id}/failures?limit=3&cursor={c}"),
            None => format!("/v1/imports/{id}/failures?limit=3"),
        };
        let (app, token) = (&app, &token);
        async move {
            let r = app.call(Method::GET, &path, Some(token), None).await;
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.expect("json")
        }
    };
    let first = page(None).await;
    assert_eq!(first["failures"].as_array().map(Vec::len), Some(3));
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a full page has a cursor")
        .to_owned();
    let second = page(Some(cursor)).await;
    assert_eq!(second["failures"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["failures"][0]["filename"], "bad/empty.txt");
    assert_eq!(second["next_cursor"], Value::Null);
    let r = app
        .call(
            Method::GET,
            &format!("/v1/imports/{id}/failures?cursor=abc"),
            Some(&token),
            None,
        )
        .await;
    expect_error(r, 400, "invalid_cursor").await;

    // The archive is gone once unpacked; the audit trail has the import.
    let archive = app
        .dirs
        .path()
        .join(format!("objects/tenants/{}/imports/{id}/archive.zip", t.id));
    assert!(!archive.exists(), "the archive is deleted after unpacking");
    assert_eq!(app.audit_count(t.id, "imports.create", None).await, 1);
    // Finished: nothing to cancel.
    let r = app
        .call(Method::DELETE, &format!("/v1/imports/{id}"), Some(&token), None)
        .await;
    expect_error(r, 409, "import_finished").await;
}

#[tokio::test]
async fn malicious_archives_are_refused_and_the_service_stays_up() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("evil", "business", "shared").await;
    let token = app.owner_token(&t).await;

    // 64 MiB of zeros in a few KiB.
    let r = app.import_zip(&token, zip_bomb(64)).await;
    let e = expect_error(r, 400, "zip_bomb").await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("compression ratio"),
        "{e}"
    );

    // Many small entries of zeros pass the per-entry ratio check, not the archive's.
    let zeros: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| (format!("z{i}.txt"), vec![0u8; 1024 * 1024]))
        .collect();
    let r = app.import_zip(&token, zip_of(&zeros)).await;
    expect_error(r, 413, "archive_too_large").await;

    for evil in [
        "../../etc/cron.d/x.txt",
        "/etc/passwd",
        "ok/../../escape.md",
        "C:\\windows\\x.txt",
    ] {
        let zip = zip_of(&[
            ("fine.txt".into(), b"fine".to_vec()),
            (evil.into(), b"x".to_vec()),
        ]);
        let r = app.import_zip(&token, zip).await;
        let e = expect_error(r, 400, "unsafe_path").await;
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("unsafe path"),
            "{evil}: {e}"
        );
    }

    let r = app.import_zip(&token, zip_of_empty_entries(100_000)).await;
    let e = expect_error(r, 413, "too_many_entries").await;
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("100000 entries"),
        "{e}"
    );

    let r = app
        .import_zip(&token, b"PK\x03\x04 not really a zip".to_vec())
        .await;
    expect_error(r, 400, "invalid_archive").await;
    let r = app.import_zip(&token, vec![]).await;
    expect_error(r, 400, "empty_file").await;
    let r = app
        .client
        .post(format!("{}/v1/imports", app.address))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("request");
    expect_error(r, 415, "unsupported_media_type").await;

    // Nothing was created or stored, and the service still answers.
    let imports: i64 = sqlx::query_scalar("SELECT count(*) FROM imports")
        .fetch_one(app.control.pool())
        .await
        .expect("count");
    assert_eq!(imports, 0, "refused archives leave no import");
    let stored = app.dirs.path().join(format!("objects/tenants/{}/imports", t.id));
    assert!(!stored.exists(), "refused archives leave no object");
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ok = app
        .import_zip(
            &token,
            zip_of(&[("one.txt".into(), b"One small contract.".to_vec())]),
        )
        .await;
    assert_eq!(ok.status(), 202, "a good archive is still accepted");
}

#[tokio::test]
async fn imports_need_the_plan_feature_and_stay_inside_the_tenant() {
    let app = spawn_app().await;
    let small = app.create_tenant_on("small", "team", "shared").await;
    let small_token = app.owner_token(&small).await;
    let zip = zip_of(&[("a.txt".into(), b"A contract.".to_vec())]);
    let r = app.import_zip(&small_token, zip.clone()).await;
    expect_error(r, 403, "feature_not_in_plan").await;

    let a = app.create_tenant_on("owner", "business", "shared").await;
    let a_token = app.owner_token(&a).await;
    let b = app.create_tenant_on("other", "business", "shared").await;
    let b_token = app.owner_token(&b).await;
    let v: Value = app.import_zip(&a_token, zip).await.json().await.expect("json");
    let id = v["import_id"].as_str().expect("id").to_owned();
    for (method, path) in [
        (Method::GET, format!("/v1/imports/{id}")),
        (Method::GET, format!("/v1/imports/{id}/failures")),
        (Method::DELETE, format!("/v1/imports/{id}")),
        (Method::GET, "/v1/imports/not-a-uuid".to_owned()),
    ] {
        let r = app.call(method.clone(), &path, Some(&b_token), None).await;
        expect_error(r, 404, "not_found").await;
    }
    // Without a worker nothing starts, so all of it can be cancelled — once.
    let r = app
        .call(Method::DELETE, &format!("/v1/imports/{id}"), Some(&a_token), None)
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .call(Method::DELETE, &format!("/v1/imports/{id}"), Some(&a_token), None)
        .await;
    expect_error(r, 409, "import_finished").await;
    let s = app.import_status(&a_token, &id).await;
    assert_eq!(s["status"], "cancelled", "{s}");

    // Bucket sources are validated before anything is stored.
    let r = app
        .call(
            Method::POST,
            "/v1/imports",
            Some(&a_token),
            Some(json!({"s3": {"bucket": "Bad_Bucket"}, "credentials": {"access_key_id": "k", "secret_access_key": "s"}})),
        )
        .await;
    expect_error(r, 400, "invalid_source").await;
    let r = app
        .call(
            Method::POST,
            "/v1/imports",
            Some(&a_token),
            Some(json!({"s3": {"bucket": "fine", "endpoint": "ftp://x"}, "credentials": {"access_key_id": "k", "secret_access_key": "s"}})),
        )
        .await;
    expect_error(r, 400, "invalid_endpoint").await;
}

fn s3_endpoint() -> String {
    std::env::var("DOCKET_TEST_S3_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9000".into())
}

#[tokio::test]
async fn a_bucket_prefix_imports_with_the_tenants_own_credentials_which_are_then_erased() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("s3src", "business", "shared").await;
    let token = app.owner_token(&t).await;
    let _worker = app.spawn_worker().await;
    let _feeder = app.spawn_feeder();

    let bucket = format!("customer-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let http = reqwest::Client::new();
    let ep = s3_endpoint();
    let put = |key: String, body: Vec<u8>| {
        let (http, url) = (http.clone(), format!("{ep}/{bucket}/{key}"));
        async move {
            let r = http.put(url).body(body).send().await.expect("s3 put");
            assert!(r.status().is_success(), "put: {}", r.status());
        }
    };
    let r = http
        .put(format!("{ep}/{bucket}"))
        .send()
        .await
        .expect("the S3 test server runs");
    assert!(r.status().is_success());
    for n in 0..5 {
        put(
            format!("contracts/2024/k{n}.txt"),
            synthetic::contract(11, n).into_bytes(),
        )
        .await;
    }
    put("contracts/2024/logo.exe".into(), docket_tests::fixtures::exe()).await;
    put(
        "elsewhere/not-imported.txt".into(),
        b"Outside the prefix.".to_vec(),
    )
    .await;

    let body = json!({
        "s3": {"bucket": bucket, "prefix": "contracts/", "endpoint": ep, "region": "us-east-1"},
        "credentials": {"access_key_id": "customer-key", "secret_access_key": "customer-secret"},
    });
    let r = app
        .call(Method::POST, "/v1/imports", Some(&token), Some(body))
        .await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.expect("json")["import_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let sealed: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT sealed_credentials FROM imports WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(app.control.pool())
            .await
            .expect("row");
    if let Some(s) = &sealed {
        assert!(
            !String::from_utf8_lossy(s).contains("customer-secret"),
            "never stored in clear"
        );
    }

    let s = app.wait_import(&token, &id, Duration::from_secs(300)).await;
    assert_eq!(s["status"], "done", "{s}");
    assert_eq!(s["total"], 6, "only the prefix: {s}");
    assert_eq!(s["ready"], 5, "{s}");
    assert_eq!(s["failed"], 1, "{s}");
    assert_eq!(s["failures"][0]["code"], "unsupported_media_type");
    assert_totals_add_up(&s);
    let (sealed, detail): (Option<Vec<u8>>, Value) =
        sqlx::query_as("SELECT sealed_credentials, source_detail FROM imports WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(app.control.pool())
            .await
            .expect("row");
    assert_eq!(sealed, None, "credentials are erased once the listing is done");
    assert!(
        !detail.to_string().contains("customer-secret"),
        "no secret in the source detail: {detail}"
    );
}
