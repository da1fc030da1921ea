//! Where an S3 import may connect: public addresses only (every spelling of a private one
//! is refused before anything is stored), no redirects followed, and no object read past
//! the upload limit whatever the bucket's listing claims.

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use docket_tests::actors::expect_error;
use docket_tests::{spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn bucket_import(endpoint: &str, region: &str) -> Value {
    json!({
        "s3": {"bucket": "customer-bucket", "prefix": "", "endpoint": endpoint, "region": region},
        "credentials": {"access_key_id": "k", "secret_access_key": "s"},
    })
}

#[tokio::test]
async fn private_endpoints_in_every_spelling_are_refused_before_anything_is_stored() {
    // The production setting: no plain http, no private addresses.
    let app = spawn_app_with(&[("DOCKET_IMPORT_ALLOW_HTTP", "false")]).await;
    let t = app.create_tenant_on("acme", "business", "shared").await;
    let token = app.owner_token(&t).await;
    for ep in [
        "https://127.0.0.1",
        "https://127.1",
        "https://0x7f.0.0.1",
        "https://2130706433",
        "https://[::1]",
        "https://[::ffff:127.0.0.1]",
        "https://[::ffff:7f00:1]",
        "https://[64:ff9b::a9fe:a9fe]",
        "https://169.254.169.254",
        "https://10.0.0.8:9000",
        "https://192.168.0.1",
        "https://[fd12::1]",
        "https://localhost:9000",
    ] {
        let r = app
            .call(
                Method::POST,
                "/v1/imports",
                Some(&token),
                Some(bucket_import(ep, "us-east-1")),
            )
            .await;
        expect_error(r, 400, "forbidden_endpoint").await;
    }
    let r = app
        .call(
            Method::POST,
            "/v1/imports",
            Some(&token),
            Some(bucket_import("http://s3.example.com", "us-east-1")),
        )
        .await;
    expect_error(r, 400, "invalid_endpoint").await;
    // A region becomes part of the AWS host name: nothing but a region name passes.
    for region in ["us-east-1.evil.example", "us/east", "", "EU"] {
        let body = json!({
            "s3": {"bucket": "customer-bucket", "region": region},
            "credentials": {"access_key_id": "k", "secret_access_key": "s"},
        });
        let r = app
            .call(Method::POST, "/v1/imports", Some(&token), Some(body))
            .await;
        expect_error(r, 400, "invalid_source").await;
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM imports")
        .fetch_one(app.control.pool())
        .await
        .expect("count");
    assert_eq!(n, 0, "refused requests store nothing");
}

/// What the hostile bucket serves.
#[derive(Clone)]
struct Hostile {
    body_bytes: usize,
    target: String,
}

async fn hostile_bucket(Path(bucket): Path<String>, Query(q): Query<HashMap<String, String>>) -> Response {
    assert!(q.contains_key("list-type"), "only listings reach the bucket path");
    let item = |key: &str, size: usize| {
        format!(
            "<Contents><Key>{key}</Key><LastModified>2026-11-01T00:00:00.000Z</LastModified>\
             <ETag>\"0\"</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
        )
    };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{bucket}</Name>\
         <Prefix></Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>\
         {}{}{}</ListBucketResult>",
        // The listing lies: 12 bytes.
        item("big.txt", 12),
        item("moved.txt", 40),
        item("ok.txt", 40),
    );
    ([(header::CONTENT_TYPE, "application/xml")], xml).into_response()
}

async fn hostile_object(State(h): State<Hostile>, Path((_bucket, key)): Path<(String, String)>) -> Response {
    let headers = [
        (header::LAST_MODIFIED, "Sun, 01 Nov 2026 00:00:00 GMT".to_owned()),
        (header::ETAG, "\"0\"".to_owned()),
    ];
    match key.as_str() {
        "big.txt" => (headers, "Section 1. Fees. ".repeat(h.body_bytes / 17)).into_response(),
        "moved.txt" => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, h.target.clone())],
        )
            .into_response(),
        _ => (headers, "Section 1. Term. Three years from signing.".to_owned()).into_response(),
    }
}

#[tokio::test]
async fn a_hostile_bucket_cannot_oversize_an_object_or_redirect_the_reader() {
    let limit = 1024 * 1024;
    let app = spawn_app_with(&[("DOCKET_MAX_UPLOAD_BYTES", &limit.to_string())]).await;
    let t = app.create_tenant_on("acme", "business", "shared").await;
    let token = app.owner_token(&t).await;
    let _worker = app.spawn_worker().await;
    let _feeder = app.spawn_feeder();

    // Where the redirect points: an "internal" service that counts every request.
    let canary_hits = Arc::new(AtomicUsize::new(0));
    let hits = canary_hits.clone();
    let canary = axum::Router::new().fallback(move || {
        let hits = hits.clone();
        async move {
            hits.fetch_add(1, Ordering::SeqCst);
            "internal secrets"
        }
    });
    let canary_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let canary_addr = canary_listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(canary_listener, canary).await });

    let hostile = Hostile {
        body_bytes: 8 * limit,
        target: format!("http://{canary_addr}/latest/meta-data/"),
    };
    let server = axum::Router::new()
        .route("/{bucket}", get(hostile_bucket))
        .route("/{bucket}/{key}", get(hostile_object))
        .with_state(hostile);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, server).await });

    let body = bucket_import(&format!("http://{addr}"), "us-east-1");
    let r = app
        .call(Method::POST, "/v1/imports", Some(&token), Some(body))
        .await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.expect("json")["import_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let s = app.wait_import(&token, &id, Duration::from_secs(120)).await;
    assert_eq!(s["status"], "done", "{s}");
    assert_eq!(s["ready"], 1, "{s}");
    assert_eq!(s["failed"], 2, "{s}");
    let codes: HashMap<String, String> = s["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| {
            (
                f["filename"].as_str().unwrap_or_default().to_owned(),
                f["code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(codes.get("big.txt").map(String::as_str), Some("too_large"), "{s}");
    assert_eq!(
        codes.get("moved.txt").map(String::as_str),
        Some("unreadable"),
        "{s}"
    );
    assert_eq!(
        canary_hits.load(Ordering::SeqCst),
        0,
        "the redirect was not followed"
    );
    // The tenant reads a sentence, never the client's own error text.
    assert!(
        !s["failures"].to_string().contains(&canary_addr.to_string()),
        "{s}"
    );
}

#[tokio::test]
async fn a_bucket_that_refuses_the_listing_gets_a_clear_code_not_the_client_error() {
    let app = spawn_app().await;
    let t = app.create_tenant_on("acme", "business", "shared").await;
    let token = app.owner_token(&t).await;
    let _worker = app.spawn_worker().await;
    // An S3-shaped server that refuses every credential.
    let server = axum::Router::new().fallback(|| async {
        (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "application/xml")],
            "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, server).await });
    let body = bucket_import(&format!("http://{addr}"), "us-east-1");
    let r = app
        .call(Method::POST, "/v1/imports", Some(&token), Some(body))
        .await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.expect("json")["import_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let s = app.wait_import(&token, &id, Duration::from_secs(60)).await;
    assert_eq!(s["status"], "failed", "{s}");
    assert_eq!(s["error"]["code"], "access_denied", "{s}");
    let text = s["error"]["message"].to_string();
    assert!(
        !text.contains(&addr.to_string()) && !text.contains("retry"),
        "{s}"
    );
}
