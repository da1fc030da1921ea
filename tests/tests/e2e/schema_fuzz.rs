//! Schema-driven fuzzing: schemathesis (PyPI, pinned in `scripts/lib.sh`) generates requests
//! from the served `/openapi.json` and runs them against the live API on the real services,
//! once per credential: none, a tenant user's token, a tenant API key and an operator token.
//! Every check it has must pass: no server error, every status and content type and body as
//! the contract says, schema-valid requests accepted (or refused only by a documented
//! business rule: 401/403/404/409/429), schema-invalid ones refused, required headers
//! enforced, unsupported methods refused. A worker runs, so `/readyz` is ready, and Stripe
//! webhooks are configured (against localstripe), so the webhook answers as in production.
//! The summary per credential is printed and written to
//! `<target>/test-artifacts/schemathesis/summary.txt`, which `scripts/test` prints.

use docket_tests::stripe::{KEY, LocalStripe};
use docket_tests::{TestApp, spawn_app_with};
use reqwest::Method;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// `<target>/test-artifacts/schemathesis`: the summary and each run's JUnit report.
fn artifacts() -> PathBuf {
    docket_tests::target_dir()
        .join("test-artifacts")
        .join("schemathesis")
}

/// Examples per operation and phase: enough to reach every documented status of every
/// operation with a fixed seed, within the CI budget on two cores.
const MAX_EXAMPLES: &str = "40";

/// The closing line schemathesis prints, e.g. `===== 3 failures, 1 warning in 10.72s =====`
/// or `===== No issues found in 95.12s =====`, without the rule around it.
fn final_line(out: &str) -> Option<String> {
    out.lines()
        .rev()
        .filter(|l| l.starts_with("==") && l.trim_end().ends_with("=="))
        .map(|l| l.trim_matches(|c: char| c == '=' || c.is_whitespace()))
        .find(|l| l.ends_with('s') && l.contains(" in "))
        .map(str::to_owned)
}

/// Runs schemathesis with `credential` (a bearer token) or none; answers whether it passed
/// and its summary line.
async fn fuzz(app: &TestApp, name: &str, credential: Option<&str>, out: &std::path::Path) -> (bool, String) {
    let config = docket_tests::workspace().join("tests").join("schemathesis.toml");
    let mut cmd = tokio::process::Command::new("st");
    cmd.args([
        "--config-file",
        &config.to_string_lossy(),
        "run",
        &format!("{}/openapi.json", app.address),
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        "1",
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--report",
        "junit",
        "--report-junit-path",
        &out.join(format!("{name}.xml")).to_string_lossy(),
        "--output-truncate",
        "false",
    ]);
    if let Some(token) = credential {
        cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let output = cmd
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .await
        .expect("run st (scripts/test installs schemathesis)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    std::fs::write(out.join(format!("{name}.log")), format!("{stdout}\n{stderr}")).expect("log");
    let line = final_line(&stdout)
        .unwrap_or_else(|| panic!("no summary from schemathesis ({name}):\n{stdout}\n{stderr}"));
    (output.status.success(), line)
}

#[tokio::test]
async fn schemathesis_finds_nothing_with_any_credential() {
    let stripe = LocalStripe::start().await;
    let app = spawn_app_with(&[
        ("DOCKET_STRIPE_SECRET_KEY", KEY),
        ("DOCKET_STRIPE_API_BASE", &stripe.base()),
        ("DOCKET_STRIPE_WEBHOOK_SECRET", "whsec_docket_fuzz"),
    ])
    .await;
    let _worker = app.spawn_worker().await;
    docket_tests::wait_until_up("readiness", Duration::from_secs(60), async || {
        app.get("/readyz").await.status() == 200
    })
    .await;

    // The credentials: each on a tenant of its own, so what one run does (a suspended key,
    // a requested deletion) does not change what the next one sees.
    let user_tenant = app.create_tenant_on("fuzz-user", "enterprise", "shared").await;
    let user_token = app.owner_token(&user_tenant).await;
    let key_tenant = app.create_tenant_on("fuzz-key", "enterprise", "shared").await;
    let key_owner = app.owner_token(&key_tenant).await;
    let key = app
        .call(
            Method::POST,
            "/v1/api-keys",
            Some(&key_owner),
            Some(json!({"name": "fuzzing", "role": "admin"})),
        )
        .await;
    assert_eq!(key.status(), 201, "API key");
    let key: serde_json::Value = key.json().await.expect("json");
    let key = key["key"].as_str().expect("key").to_owned();
    let operator = app.operator_token().await;
    // Data for the fuzzer to find: it harvests ids from list responses, so operations on a
    // document, a question and an export reach their handlers' logic, not only 404.
    for (owner, n) in [(&user_token, 1), (&key_owner, 2)] {
        app.upload_ready(owner, "contract.pdf", docket_tests::contract(n))
            .await;
        let asked = app
            .call(
                Method::POST,
                "/v1/queries?wait=20",
                Some(owner),
                Some(json!({"question": "What law governs this agreement?"})),
            )
            .await;
        assert_eq!(asked.status(), 200, "a question answered");
        let export = app
            .call(
                Method::POST,
                "/v1/exports",
                Some(owner),
                Some(json!({"download": true})),
            )
            .await;
        assert_eq!(export.status(), 202, "an export queued");
    }

    let out = artifacts();
    std::fs::create_dir_all(&out).expect("artifacts folder");
    let mut summary = String::new();
    let mut failed = Vec::new();
    for (name, credential) in [
        ("anonymous", None),
        ("tenant token", Some(user_token.as_str())),
        ("API key", Some(key.as_str())),
        ("operator token", Some(operator.as_str())),
    ] {
        let file = name.replace(' ', "_").to_ascii_lowercase();
        let (ok, line) = fuzz(&app, &file, credential, &out).await;
        summary.push_str(&format!("schemathesis ({name}): {line}\n"));
        if !ok {
            failed.push(format!(
                "{name}: see {}",
                out.join(format!("{file}.log")).display()
            ));
        }
    }
    print!("{summary}");
    std::fs::write(out.join("summary.txt"), &summary).expect("summary");
    assert!(failed.is_empty(), "{summary}{}", failed.join("\n"));
    drop(stripe);
}

#[test]
fn the_summary_line_is_read_from_the_output() {
    let out = "…\n=================== SUMMARY ===================\n\nAPI Operations:\n  Selected: 80/80\n\n======= 3 failures, 3 warnings in 10.72s =======\n\n";
    assert_eq!(
        final_line(out).as_deref(),
        Some("3 failures, 3 warnings in 10.72s")
    );
    assert_eq!(final_line("nothing"), None);
}
