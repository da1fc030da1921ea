//! A PDF whose parse would run for minutes (or exhaust memory) is stopped: the parser runs
//! in a child process with CPU, wall-time and memory limits, the document fails
//! `parse_timeout`, and the worker goes on with the next document.

use docket_rag::parse::bounded::{self, Bounds};
use docket_rag::parse::{self, ContentKind, ParseError};
use docket_tests::{contract, fixtures, sibling_binary, spawn_app_with};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Pages × text operations of the slow fixture: tens of seconds of parsing, a few KiB.
const SLOW_PAGES: usize = 2000;
const SLOW_OPS: usize = 20_000;

fn bounds(timeout_secs: u64, memory_mib: u64) -> Bounds {
    Bounds {
        program: sibling_binary("docket-parse"),
        timeout: Duration::from_secs(timeout_secs),
        memory_bytes: memory_mib << 20,
    }
}

#[tokio::test]
async fn the_bounded_parser_reads_a_contract_as_the_library_does() {
    let pdf = contract(3);
    let inline = parse::parse(ContentKind::Pdf, &pdf).expect("in-process parse");
    let child = bounded::parse(&bounds(60, 2048), ContentKind::Pdf, pdf)
        .await
        .expect("spawn")
        .expect("child parse");
    assert_eq!(child, inline, "the child process returns the same pages");
    let corrupt = contract(3)[..1500].to_vec();
    let verdict = bounded::parse(&bounds(60, 2048), ContentKind::Pdf, corrupt)
        .await
        .expect("spawn");
    assert!(
        matches!(verdict, Err(ParseError::Corrupt(_))),
        "a damaged file is reported as such, not as a crash: {verdict:?}"
    );
}

#[tokio::test]
async fn a_parse_past_its_time_is_killed() {
    let slow = fixtures::slow_pdf(SLOW_PAGES, SLOW_OPS);
    assert!(slow.len() < 1 << 20, "the slow file is small: {}", slow.len());
    let started = Instant::now();
    let verdict = bounded::parse(&bounds(1, 2048), ContentKind::Pdf, slow)
        .await
        .expect("spawn");
    assert_eq!(verdict, Err(ParseError::TimedOut(1)));
    // Not a timing test: the limit ended the work instead of waiting for it (which takes
    // tens of seconds).
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_parse_past_its_memory_is_stopped() {
    // One page whose content stream decodes to hundreds of megabytes of operations.
    let greedy = fixtures::slow_pdf(1, 3_000_000);
    let verdict = bounded::parse(&bounds(60, 128), ContentKind::Pdf, greedy)
        .await
        .expect("spawn");
    assert_eq!(verdict, Err(ParseError::Crashed));
}

#[tokio::test]
async fn a_missing_parser_is_a_start_up_error_not_a_failed_document() {
    let app = spawn_app_with(&[("DOCKET_PARSER_BIN", "/nonexistent/docket-parse")]).await;
    let err = docket_worker::Worker::start(app.config.clone())
        .await
        .expect_err("the worker refuses to start");
    assert!(err.to_string().contains("/nonexistent/docket-parse"), "{err}");
}

#[tokio::test]
async fn a_slow_pdf_fails_parse_timeout_and_the_next_document_is_parsed() {
    let app = spawn_app_with(&[("DOCKET_PARSE_TIMEOUT_SECS", "1")]).await;
    let _worker = app.spawn_worker().await;
    let t = app.create_tenant("acme").await;
    let token = app.owner_token(&t).await;
    let slow: Value = app
        .upload_raw(&token, "slow.pdf", fixtures::slow_pdf(SLOW_PAGES, SLOW_OPS), None)
        .await
        .json()
        .await
        .expect("json");
    let good: Value = app
        .upload_raw(&token, "good.pdf", contract(4), None)
        .await
        .json()
        .await
        .expect("json");
    let wait = Duration::from_secs(120);
    let d = app
        .wait_processed(&token, slow["document_id"].as_str().expect("id"), wait)
        .await;
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["error"]["code"], "parse_timeout", "{d}");
    assert!(d["error"]["message"].as_str().expect("m").contains("1 s"), "{d}");
    assert_eq!(d["stages"][0]["attempts"], 1, "a timeout is not retried: {d}");
    let g = app
        .wait_processed(&token, good["document_id"].as_str().expect("id"), wait)
        .await;
    assert_eq!(g["status"], "ready", "the worker went on: {g}");
}
