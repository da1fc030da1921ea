//! Quarterly access reviews on the real services: a quarter with known events (a role
//! change, a dormant account, an expired key, an operator's suspension) produces exactly
//! those findings, signed and rendered; a second run changes nothing; missed quarters are
//! caught up once; a review that keeps failing ends `failed` and an operator's run issues
//! it. Decisions: `access_review_decisions.rs`.

use chrono::Utc;
use docket_platform::access_reviews::Quarter;
use docket_tests::actors::PASSWORD;
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_quarters_report_has_exactly_its_findings_is_signed_rendered_and_made_once() {
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let t = app.create_tenant_on("reviewed", "team", "shared").await;
    let owner = app.owner_token(&t).await;
    let (admin_id, _) = app.user_with_role(&t, &owner, "admin").await;
    let (member_id, _) = app.user_with_role(&t, &owner, "member").await;
    // An account made long ago and never used: created without signing in, then dated back.
    let r = app
        .call(
            Method::POST,
            "/v1/users",
            Some(&owner),
            Some(json!({"email": format!("sleeper@{}.example.com", t.slug), "password": PASSWORD, "role": "viewer"})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let sleeper: Value = r.json().await.expect("json");
    let sleeper_id = sleeper["id"].as_str().expect("id").to_owned();
    sqlx::query("UPDATE users SET created_at = now() - interval '200 days' WHERE id = $1::uuid")
        .bind(&sleeper_id)
        .execute(app.control.pool())
        .await
        .expect("date back");
    // A role change.
    let r = app
        .call(
            Method::PATCH,
            &format!("/v1/users/{member_id}"),
            Some(&owner),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    // A failed sign-in of the admin.
    let admin_email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(admin_id)
        .fetch_one(app.control.pool())
        .await
        .expect("email");
    assert_eq!(
        app.login(&t.slug, &admin_email, "wrong password").await.status(),
        401
    );
    // Keys: one never used, one used, one used and then expired without being revoked.
    let mut keys = vec![];
    for name in ["unused", "used", "lapsed"] {
        let r = app
            .call(
                Method::POST,
                "/v1/api-keys",
                Some(&owner),
                Some(json!({"name": name, "role": "member"})),
            )
            .await;
        assert_eq!(r.status(), 201);
        let k: Value = r.json().await.expect("json");
        keys.push((
            k["api_key"]["id"].as_str().expect("id").to_owned(),
            k["key"].as_str().expect("key").to_owned(),
        ));
    }
    for (_, secret) in &keys[1..] {
        assert_eq!(
            app.call(Method::GET, "/v1/documents", Some(secret), None)
                .await
                .status(),
            200
        );
    }
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 day' WHERE id = $1::uuid")
        .bind(&keys[2].0)
        .execute(app.control.pool())
        .await
        .expect("expire");
    // An operator's suspension (and resumption), with a reason.
    let op = app.operator_token().await;
    for (path, body) in [
        ("suspend", json!({"reason": "chargeback under review"})),
        ("resume", json!({})),
    ] {
        let r = app
            .call(
                Method::POST,
                &format!("/ops/tenants/{}/{path}", t.id),
                Some(&op),
                Some(body),
            )
            .await;
        assert_eq!(r.status(), 200, "{path}");
    }

    // The quarter so far (it is the only one these accounts have lived in).
    let quarter = Quarter::of(Utc::now());
    let run = app.run_access_review(quarter, t.id).await;
    assert_eq!((run.made, run.queued), (1, 1));
    let issued = app.wait_reviews_issued(&owner, WAIT).await;
    assert_eq!(issued.len(), 1);
    let id = issued[0]["id"].as_str().expect("id").to_owned();
    let one: Value = app
        .call(
            Method::GET,
            &format!("/v1/access-reviews/{id}"),
            Some(&owner),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    let report = &one["report"];
    let owner_id: String =
        sqlx::query_scalar("SELECT id::text FROM users WHERE tenant_id = $1 AND role = 'owner'")
            .bind(t.id)
            .fetch_one(app.control.pool())
            .await
            .expect("owner");
    let findings: BTreeSet<String> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["id"].as_str().expect("id").to_owned())
        .collect();
    let expected: BTreeSet<String> = [
        format!("user:{owner_id}:privileged_user"),
        format!("user:{admin_id}:privileged_user"),
        format!("user:{sleeper_id}:dormant_user"),
        format!("api_key:{}:never_used_key", keys[0].0),
        format!("api_key:{}:expired_key", keys[2].0),
    ]
    .into();
    assert_eq!(findings, expected, "{report}");
    assert_eq!(one["access_review"]["findings"], 5);
    let user = |id: &str| {
        report["users"]
            .as_array()
            .expect("users")
            .iter()
            .find(|u| u["id"] == id)
            .cloned()
            .expect("user listed")
    };
    assert_eq!(user(&member_id.to_string())["role"], "viewer");
    assert_eq!(user(&admin_id.to_string())["failed_sign_ins"], 1);
    assert!(user(&owner_id)["sign_ins"].as_i64() >= Some(1));
    assert_eq!(user(&sleeper_id)["last_sign_in"], Value::Null);
    let change = report["membership_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["action"] == "users.update")
        .cloned()
        .expect("the role change");
    assert_eq!(change["target"], format!("user:{member_id}"));
    assert_eq!(change["role"], "viewer");
    assert_eq!(change["by"], format!("user:{owner_id}"), "who changed it");
    assert_eq!(
        one["addresses"][format!("user:{owner_id}")],
        t.owner_email.as_str()
    );
    assert!(
        !serde_json::to_string(report)
            .expect("json")
            .contains(&t.owner_email),
        "the signed report holds ids, never addresses"
    );
    let suspension = report["operator_actions"]
        .as_array()
        .expect("operator actions")
        .iter()
        .find(|o| o["action"] == "ops.tenants.suspend")
        .cloned()
        .expect("the suspension");
    assert_eq!(suspension["reason"], "chargeback under review");
    assert!(
        report["admin_actions"]
            .as_array()
            .expect("admin actions")
            .iter()
            .any(|a| a["action"] == "api_keys.create"
                && a["count"] == 3
                && a["actor"] == format!("user:{owner_id}")),
        "{report}"
    );

    // The signed document verifies offline; one changed byte does not.
    let text = app
        .call(
            Method::GET,
            &format!("/v1/access-reviews/{id}/report"),
            Some(&owner),
            None,
        )
        .await
        .text()
        .await
        .expect("report");
    let file = app.dirs.path().join("review.json");
    std::fs::write(&file, &text).expect("write");
    let (code, verified) = app.verify_access_review(&file).await;
    assert_eq!((code, &verified["ok"]), (0, &Value::Bool(true)), "{verified}");
    assert_eq!(verified["findings"], 5);
    let forged = app.dirs.path().join("forged.json");
    std::fs::write(&forged, text.replacen("dormant_user", "privileged_user", 1)).expect("write");
    assert_eq!(app.verify_access_review(&forged).await.0, 3);

    // The PDF a compliance officer files shows the findings.
    let pdf = app
        .call(
            Method::GET,
            &format!("/v1/access-reviews/{id}.pdf"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let pdf_file = app.dirs.path().join("review.pdf");
    std::fs::write(&pdf_file, pdf.bytes().await.expect("bytes")).expect("write");
    let out = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(&pdf_file)
        .arg("-")
        .output()
        .expect("pdftotext is installed (scripts/test installs poppler-utils)");
    // Words, whatever the layout wrapped.
    let pdf_text = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for needle in [
        format!("Access review {quarter}"),
        "Findings (5)".to_owned(),
        "dormant user".to_owned(),
        "expired key".to_owned(),
        "never used key".to_owned(),
        format!("sleeper@{}.example.com", t.slug),
        "lapsed".to_owned(),
        "chargeback under review".to_owned(),
        one["access_review"]["report_sha256"]
            .as_str()
            .expect("sha")
            .to_owned(),
    ] {
        assert!(
            pdf_text.contains(&needle),
            "{needle:?} not in the PDF:\n{pdf_text}"
        );
    }

    // A second run for the same quarter changes nothing.
    let again = app.run_access_review(quarter, t.id).await;
    assert_eq!((again.made, again.queued), (0, 0));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = app.access_reviews(&owner).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["report_sha256"], one["access_review"]["report_sha256"]);
    assert_eq!(app.audit_count(t.id, "access_review.issued", None).await, 1);
}

#[tokio::test]
async fn missed_quarters_are_caught_up_once_and_an_open_review_past_its_due_date_is_overdue_in_ops() {
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let t = app.create_tenant("veteran").await;
    let young = app.create_tenant("newcomer").await;
    let owner = app.owner_token(&t).await;
    sqlx::query("UPDATE tenants SET created_at = now() - interval '500 days' WHERE id = $1")
        .bind(t.id)
        .execute(app.control.pool())
        .await
        .expect("date back");
    let queue = docket_tests::billing::queue(&app);
    let now = Utc::now();
    let runs = docket_platform::access_reviews::schedule::due(&app.control, &queue, now)
        .await
        .expect("due");
    assert_eq!(runs.iter().map(|r| r.made).sum::<u64>(), 4, "{runs:?}");
    let issued = app.wait_reviews_issued(&owner, WAIT).await;
    let quarters: Vec<&str> = issued.iter().map(|r| r["quarter"].as_str().expect("q")).collect();
    let mut q = Quarter::of(now);
    let expected: Vec<String> = (0..4)
        .map(|_| {
            q = q.previous();
            q.to_string()
        })
        .collect();
    assert_eq!(
        quarters, expected,
        "newest first, the four quarters before this one"
    );
    let again = docket_platform::access_reviews::schedule::due(&app.control, &queue, now)
        .await
        .expect("due");
    assert_eq!(again.iter().map(|r| r.made + r.queued as u64).sum::<u64>(), 0);
    let young_owner = app.owner_token(&young).await;
    assert!(
        app.access_reviews(&young_owner).await.is_empty(),
        "no quarter before it existed"
    );

    let op = app.operator_token().await;
    assert!(overdue(&app, &op).await.is_empty());
    let oldest = issued.last().expect("oldest")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    sqlx::query("UPDATE access_reviews SET issued_at = now() - interval '31 days' WHERE id = $1::uuid")
        .bind(&oldest)
        .execute(app.control.pool())
        .await
        .expect("age");
    let listed = overdue(&app, &op).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["review_id"], oldest.as_str());
    assert_eq!(listed[0]["tenant_slug"], t.slug.as_str());
    assert!(listed[0]["days_open"].as_i64() >= Some(31));
    let mine = app.access_reviews(&owner).await;
    assert!(
        mine.iter()
            .any(|r| r["id"] == oldest.as_str() && r["overdue"] == true)
    );
    let r = app
        .call(Method::GET, "/ops/access-reviews", Some(&owner), None)
        .await;
    assert_eq!(r.status(), 401, "tenants' tokens are not operators'");
}

async fn overdue(app: &docket_tests::TestApp, op: &str) -> Vec<Value> {
    let v: Value = app
        .call(Method::GET, "/ops/access-reviews", Some(op), None)
        .await
        .json()
        .await
        .expect("json");
    v["overdue"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_review_that_keeps_failing_ends_failed_and_an_operators_run_issues_it_afresh() {
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let t = app.create_tenant("unlucky").await;
    let owner = app.owner_token(&t).await;
    let quarter = Quarter::of(Utc::now());
    // Five attempts already spent: workers that crashed mid-report leave only their count.
    sqlx::query(
        "INSERT INTO access_reviews (id, tenant_id, quarter, period_start, period_end, status, attempts, requested_by)
         VALUES (gen_random_uuid(), $1, $2, $3, $4, 'running', 5, 'test')",
    )
    .bind(t.id)
    .bind(quarter.to_string())
    .bind(quarter.start())
    .bind(quarter.end())
    .execute(app.control.pool())
    .await
    .expect("review");
    sqlx::query("UPDATE access_reviews SET updated_at = now() - interval '1 hour' WHERE tenant_id = $1")
        .bind(t.id)
        .execute(app.control.pool())
        .await
        .expect("stale");
    let run = app.run_access_review(quarter, t.id).await;
    assert_eq!(
        (run.made, run.queued),
        (0, 1),
        "the stale running review is pushed again"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    let failed = loop {
        let all = app.access_reviews(&owner).await;
        if all[0]["status"] == "failed" {
            break all[0].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{all:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        failed["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("gave up after 5 attempts")),
        "{failed}"
    );
    // The calendar leaves it; an operator's run queues it again with a fresh count.
    assert_eq!(app.run_access_review(quarter, t.id).await.queued, 0);
    let req = docket_platform::access_reviews::schedule::RunRequest {
        quarter,
        only: Some(t.id),
        requested_by: "docketctl".into(),
        retry_failed: true,
    };
    docket_platform::access_reviews::schedule::run(
        &app.control,
        &docket_tests::billing::queue(&app),
        &req,
        Utc::now(),
    )
    .await
    .expect("operator run");
    let issued = app.wait_reviews_issued(&owner, WAIT).await;
    assert_eq!(issued[0]["status"], "open");
    assert_eq!(app.audit_count(t.id, "access_review.issued", None).await, 1);
}
