//! A tenant verifies its own chain offline: `GET /v1/audit-events/export`, the published
//! keys and a signed checkpoint, checked by the real `docketctl audit verify --file` with an
//! empty environment (no deployment behind it).

use chrono::Utc;
use docket_platform::audit::checkpoint;
use docket_platform::blobs::BlobStore;
use docket_platform::identity::keyring::KeyRing;
use docket_tests::actors::expect_error;
use docket_tests::{TestApp, sibling_binary, spawn_app};
use reqwest::Method;
use serde_json::Value;
use std::path::{Path, PathBuf};

async fn take_checkpoints(app: &TestApp) {
    let blobs = BlobStore::from_config(&app.config.objects).expect("blobs");
    let keys = KeyRing::new(
        app.db.clone(),
        app.config.master_key.clone(),
        app.config.auth.key_rotation_window,
    );
    checkpoint::take(&app.control, &blobs, &keys, Utc::now())
        .await
        .expect("take checkpoints");
}

/// Downloads `path` with `token` into `dir/name`.
async fn save(
    app: &TestApp,
    token: &str,
    path: &str,
    dir: &Path,
    name: &str,
) -> (PathBuf, reqwest::Response) {
    let r = app.call(Method::GET, path, Some(token), None).await;
    assert_eq!(r.status(), 200, "{path}");
    let file = dir.join(name);
    (file, r)
}

fn verify(file: &Path, checkpoint: Option<&Path>, keys: &Path) -> (i32, Value) {
    let mut cmd = std::process::Command::new(sibling_binary("docketctl"));
    cmd.env_clear().args(["audit", "verify", "--file"]).arg(file);
    if let Some(cp) = checkpoint {
        cmd.arg("--checkpoint").arg(cp).arg("--public-key").arg(keys);
    }
    let out = cmd.output().expect("docketctl runs");
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), report)
}

#[tokio::test]
async fn an_exported_chain_verifies_offline_and_a_dropped_tail_is_named_against_its_checkpoint() {
    let app = spawn_app().await;
    let t = app.create_tenant("exported").await;
    let owner = app.owner_token(&t).await;
    let (_, member) = app.user_with_role(&t, &owner, "member").await;
    let r = app
        .call(Method::GET, "/v1/audit-events/export", Some(&member), None)
        .await;
    expect_error(r, 403, "forbidden").await;

    take_checkpoints(&app).await;
    let dir = app.dirs.path();
    let keys: Value = app
        .get("/.well-known/docket-keys.json")
        .await
        .json()
        .await
        .expect("keys");
    let keys_file = dir.join("keys.json");
    std::fs::write(&keys_file, keys.to_string()).expect("keys");
    let (cp_file, r) = save(&app, &owner, "/v1/audit-checkpoints", dir, "checkpoints.json").await;
    let checkpoints: Value = r.json().await.expect("json");
    let signed = checkpoints["checkpoints"][0]["checkpoint"]["seq"]
        .as_i64()
        .expect("seq");
    std::fs::write(&cp_file, checkpoints.to_string()).expect("cp");

    let (file, r) = save(&app, &owner, "/v1/audit-events/export", dir, "audit.jsonl").await;
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let body = r.bytes().await.expect("body");
    std::fs::write(&file, &body).expect("file");
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    let header: Value = serde_json::from_str(text.lines().next().expect("header")).expect("json");
    assert_eq!(header["format"], "docket-audit-export/1");
    assert_eq!(header["chain"], t.id.to_string());
    let head = header["head_seq"].as_i64().expect("head");
    assert!(head > signed, "the export records itself after the checkpoint");
    assert_eq!(
        text.lines().count() as i64,
        head + 1,
        "every row once, header first"
    );
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.contains("\"audit.export\"")),
        "the file holds the record of its own export"
    );

    let (code, report) = verify(&file, Some(&cp_file), &keys_file);
    assert_eq!((code, &report["ok"]), (0, &Value::Bool(true)), "{report}");
    assert_eq!(report["chain"]["events"], head);
    assert_eq!(report["checkpoint_seq"], signed);

    // A checkpoint whose signature does not hold is a finding, not a crash.
    let bad_cp = dir.join("bad-checkpoint.json");
    let mut tampered = checkpoints.clone();
    tampered["checkpoints"][0]["checkpoint"]["seq"] = Value::from(signed + 1);
    std::fs::write(&bad_cp, tampered.to_string()).expect("cp");
    let (code, report) = verify(&file, Some(&bad_cp), &keys_file);
    assert_eq!(code, 3, "{report}");
    assert!(
        report["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("signature does not match")),
        "{report}"
    );

    // One edited line: the chain breaks there.
    let edited = text.replacen("\"auth.login\"", "\"auth.logout\"", 1);
    assert_ne!(edited, text, "the chain has a sign-in to edit");
    let edited_file = dir.join("edited.jsonl");
    std::fs::write(&edited_file, &edited).expect("edited");
    let (code, report) = verify(&edited_file, None, &keys_file);
    assert_eq!(code, 3, "{report}");
    assert!(report["chain"]["first_break"]["seq"].is_i64(), "{report}");

    // A cut download: the header's head is not reached.
    let cut: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
    let cut_file = dir.join("cut.jsonl");
    std::fs::write(&cut_file, cut).expect("cut");
    let (code, report) = verify(&cut_file, None, &keys_file);
    assert_eq!(code, 3);
    assert!(
        report["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("cut short")),
        "{report}"
    );

    // Rows from the checkpoint's position on dropped by a superuser; the next export is a
    // consistent chain by itself, and only the checkpoint names what is missing.
    let su = app.pool_as("docket_test_super").await;
    let mut tx = su.begin().await.expect("begin");
    for sql in [
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_immutable".to_owned(),
        format!(
            "DELETE FROM audit_events WHERE tenant_id = '{}' AND seq >= {}",
            t.id,
            signed - 2
        ),
        "ALTER TABLE audit_events ENABLE TRIGGER audit_events_immutable".to_owned(),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .expect("superuser");
    }
    tx.commit().await.expect("commit");
    let (file, r) = save(&app, &owner, "/v1/audit-events/export", dir, "after.jsonl").await;
    std::fs::write(&file, r.bytes().await.expect("body")).expect("file");
    let (code, report) = verify(&file, None, &keys_file);
    assert_eq!(code, 0, "consistent by itself: {report}");
    let (code, report) = verify(&file, Some(&cp_file), &keys_file);
    assert_eq!(code, 3, "{report}");
    let problem = report["problems"][0].as_str().expect("problem");
    assert!(
        problem.contains(&format!("rows {}..={signed} are missing", signed - 1)),
        "{problem}"
    );
}
