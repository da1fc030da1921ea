//! The operator panel in a real browser: Debian's Chromium, headless, driven by Playwright
//! (`tests/browser/panel.test.mjs`) against the API on the real services. This test sets the
//! scene (an operator, the tenant acted on, a bystander tenant), runs the browser scenarios,
//! prints their summary as `N passed, N failed` (also written next to the screenshots, which
//! `scripts/test` prints), and then checks from the database what the browser cannot see:
//! the panel wrote the `/ops` API's own audit events, on a chain that still verifies.

use docket_tests::actors::PASSWORD;
use docket_tests::spawn_app;
use std::path::PathBuf;
use uuid::Uuid;

/// `<target>/browser-artifacts/panel`: screenshots and the runner's summary.
fn artifacts() -> PathBuf {
    docket_tests::target_dir().join("browser-artifacts").join("panel")
}

/// Counts of `# pass N` and `# fail N` in node's TAP output.
fn tap_counts(tap: &str) -> Option<(u32, u32)> {
    let count = |key: &str| {
        tap.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|n| n.trim().parse().ok()))
    };
    Some((count("# pass ")?, count("# fail ")?))
}

#[tokio::test]
async fn operator_panel_scenarios_pass_in_headless_chromium() {
    let app = spawn_app().await;
    let email = format!(
        "panel-{}@docket.example.com",
        &Uuid::new_v4().simple().to_string()[..8]
    );
    docketctl::operator_create(&app.control, &app.auditor(), &email, PASSWORD)
        .await
        .expect("operator");
    let tenant = app.create_tenant("panel").await;
    let other = app.create_tenant("bystander").await;
    let (token, other_token) = (app.owner_token(&tenant).await, app.owner_token(&other).await);
    let out_dir = artifacts();
    std::fs::create_dir_all(&out_dir).expect("artifacts folder");

    let browser_dir = docket_tests::workspace().join("tests").join("browser");
    let output = tokio::process::Command::new("node")
        .args([
            "--test",
            "--test-reporter=tap",
            "--test-concurrency=1",
            "panel.test.mjs",
        ])
        .current_dir(&browser_dir)
        .env("DOCKET_URL", &app.address)
        .env("OPERATOR_EMAIL", &email)
        .env("OPERATOR_PASSWORD", PASSWORD)
        .env("TENANT_ID", tenant.id.to_string())
        .env("TENANT_SLUG", &tenant.slug)
        .env("TENANT_TOKEN", &token)
        .env("OTHER_TOKEN", &other_token)
        .env("ARTIFACTS", &out_dir)
        .output()
        .await
        .expect("run node (scripts/test installs Node.js, Chromium and tests/browser's packages)");
    let tap = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    let (passed, failed) =
        tap_counts(&tap).unwrap_or_else(|| panic!("no TAP summary from node:\n{tap}\n{err}"));
    let summary = format!("browser scenarios (operator panel): {passed} passed, {failed} failed\n");
    print!("{summary}");
    std::fs::write(out_dir.join("summary.txt"), &summary).expect("summary");
    assert!(
        output.status.success() && failed == 0 && passed >= 11,
        "{summary}{tap}\n{err}"
    );

    // The panel went through the /ops functions: their audit events, by this operator.
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM platform_audit_events WHERE actor_kind = 'operator' ORDER BY seq",
    )
    .fetch_all(app.control.pool())
    .await
    .expect("platform chain");
    for expected in [
        "ops.login",
        "ops.tenants.list",
        "ops.tenants.suspend",
        "ops.tenants.resume",
        "ops.switches.set",
        "ops.switches.lift",
        "ops.panel.session_start",
        "ops.billing.runs",
        "ops.invoices.list",
        "ops.billing.margins",
        "ops.exports.list",
        "ops.deletions.list",
        "ops.audit.read",
        "ops.panel.view",
        "ops.logout",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }
    let on_tenant: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT action, details->>'reason' FROM audit_events WHERE tenant_id = $1 AND actor_kind = 'operator' ORDER BY seq",
    )
    .bind(tenant.id)
    .fetch_all(app.control.pool())
    .await
    .expect("tenant chain");
    assert!(
        on_tenant.contains(&(
            "ops.tenants.suspend".into(),
            Some("chargeback investigation #4411".into())
        )),
        "the suspension and its reason are on the tenant's own chain: {on_tenant:?}"
    );
    for expected in ["tenant.rate_override", "tenant.plan_change", "ops.audit.read"] {
        assert!(
            on_tenant.iter().any(|(a, _)| a == expected),
            "{expected} missing: {on_tenant:?}"
        );
    }
    let refused: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platform_audit_events WHERE action = 'ops.panel.request' AND outcome = 'refused' AND reason IN ('cross_site_request', 'csrf_token_invalid')",
    )
    .fetch_one(app.control.pool())
    .await
    .expect("refusals");
    assert!(refused >= 2, "both forged requests are audited as refusals");
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM operator_sessions WHERE ended_at IS NULL")
        .fetch_one(app.control.pool())
        .await
        .expect("sessions");
    assert_eq!(live, 0, "sign-out ended the only session");
    let platform = docket_platform::audit::verify::platform(app.control.pool())
        .await
        .expect("verify");
    assert!(platform.ok, "{platform:?}");
}

#[test]
fn the_tap_summary_is_read_from_nodes_output() {
    let tap = "TAP version 13\nok 1 - a\nnot ok 2 - b\n1..2\n# tests 2\n# pass 1\n# fail 1\n";
    assert_eq!(tap_counts(tap), Some((1, 1)));
    assert_eq!(tap_counts("no summary"), None);
}
