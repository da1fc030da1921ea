//! Document deletion: gone from every store (the test's own scan: superuser SQL over every
//! table, the object folder, every vector placement, every Redis key), with a signed
//! certificate `docketctl certificate verify` accepts and a forged one it refuses; the
//! dry run changes nothing; another tenant is untouched; who may delete. Faults and races:
//! `deletion_faults.rs`.

use docket_platform::deletions::subject_sha256;
use docket_tests::actors::expect_error;
use docket_tests::deleting::{chunks_of, cited, points};
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn a_document_is_deleted_from_every_store_and_its_certificate_verifies_offline() {
    let app = spawn_app().await;
    let (_worker, _ctx, store) = app.spawn_worker_with_handles().await;
    let t = app.create_tenant_on("deleter", "business", "shared").await;
    let other = app.create_tenant_on("bystander", "business", "shared").await;
    let token = app.owner_token(&t).await;
    let other_token = app.owner_token(&other).await;
    let doc = app
        .upload_ready(&token, "contract.pdf", docket_tests::contract(3))
        .await;
    let id = doc["id"].as_str().expect("id").to_owned();
    let note = b"The Supplier shall deliver the goods within thirty days of each purchase order.";
    let kept = app.upload_ready(&token, "note.txt", note.to_vec()).await;
    // The same file in another tenant: same content hashes, nothing shared.
    let theirs = app
        .upload_ready(&other_token, "contract.pdf", docket_tests::contract(3))
        .await;
    let question = "Which state's law governs this agreement?";
    let before = app.ask(&token, question, json!({})).await;
    let export = app.request_export(&token, json!({"download": true})).await;
    let exported = app.wait_export(&token, &export, Duration::from_secs(180)).await;
    assert_eq!(exported["status"], "done", "{exported}");
    assert!(
        !app.objects_naming(&format!("exports/{export}/documents/{id}"))
            .is_empty()
    );

    let chunks = chunks_of(&app, &id).await;
    let doc_uuid: uuid::Uuid = id.parse().expect("uuid");
    let stored_points = points(&store, t.id, Some(doc_uuid)).await;
    assert!(
        chunks > 2 && stored_points as i64 == chunks,
        "{chunks} chunks, {stored_points} points"
    );
    let mine = app.tenant_rows(t.id).await;
    let others = app.tenant_rows(other.id).await;
    let others_objects = app.objects_naming(&other.id.to_string());
    let others_points = points(&store, other.id, None).await;
    let my_objects = app.objects_naming(&t.id.to_string());
    let queued = app.redis_naming(&id).await;

    // Dry run: exact counts, nothing removed.
    let (status, plan) = app.delete_document(&token, &id, true).await;
    assert_eq!(status, 200, "{plan}");
    let s = &plan["stores"];
    assert_eq!(s["postgresql.documents"], 1, "{plan}");
    assert_eq!(s["postgresql.chunks"], chunks, "{plan}");
    assert_eq!(s["lexical_index"], chunks, "{plan}");
    assert_eq!(s["vectors.shared"], chunks, "{plan}");
    assert_eq!(s["objects.document"], 4, "{plan}");
    assert!(s["objects.export_packages"].as_i64() >= Some(4), "{plan}");
    let cli = docketctl::deletion_plan(&app.config, &app.control, &t.slug, Some(doc_uuid))
        .await
        .expect("docketctl deletion plan");
    assert_eq!(cli["stores"], plan["stores"], "the CLI's dry run is the API's");
    assert_eq!(app.tenant_rows(t.id).await, mine, "the dry run changed rows");
    assert_eq!(app.objects_naming(&t.id.to_string()), my_objects);
    assert_eq!(points(&store, t.id, Some(doc_uuid)).await, stored_points);
    assert_eq!(app.redis_naming(&id).await, queued);
    assert_eq!(app.document(&token, &id).await["status"], "ready");

    // The deletion.
    let (status, asked) = app.delete_document(&token, &id, false).await;
    assert_eq!(status, 202, "{asked}");
    let deletion = asked["deletion_id"].as_str().expect("deletion id").to_owned();
    let done = app
        .wait_deletion(&token, &deletion, Duration::from_secs(120))
        .await;
    assert_eq!(done["status"], "done", "{done}");
    let swept = &done["swept"];
    assert_eq!(swept["postgresql.chunks"], chunks, "{done}");
    assert_eq!(swept["vectors.shared"], stored_points, "{done}");
    assert_eq!(swept["objects.document"], 4, "{done}");
    assert!(swept["objects.export_packages"].as_i64() >= Some(4), "{done}");
    assert_eq!(done["target_sha256"], subject_sha256("document", doc_uuid));

    // The test's own residue scan.
    assert_eq!(
        app.rows_naming(&id).await,
        Default::default(),
        "rows still name it"
    );
    assert_eq!(
        app.objects_naming(&id),
        Vec::<String>::new(),
        "objects still name it"
    );
    assert_eq!(
        app.redis_naming(&id).await,
        Vec::<String>::new(),
        "redis still names it"
    );
    assert_eq!(points(&store, t.id, Some(doc_uuid)).await, 0, "points left");
    expect_error(
        app.call(Method::GET, &format!("/v1/documents/{id}"), Some(&token), None)
            .await,
        404,
        "not_found",
    )
    .await;
    // Its answers are erased; it is never cited again; the other document still answers.
    let after: Option<String> = sqlx::query_scalar("SELECT answer FROM queries WHERE id = $1::uuid")
        .bind(before["query_id"].as_str().expect("query id"))
        .fetch_one(app.control.pool())
        .await
        .expect("query");
    if cited(&before, &id) {
        assert_eq!(after, None, "the answer quoting it stays");
    }
    let again = app.ask(&token, question, json!({})).await;
    assert!(!cited(&again, &id), "{again}");
    assert_eq!(
        app.document(&token, kept["id"].as_str().expect("id")).await["status"],
        "ready"
    );
    let package_gone: bool =
        sqlx::query_scalar("SELECT package_deleted_at IS NOT NULL FROM exports WHERE id = $1::uuid")
            .bind(&export)
            .fetch_one(app.control.pool())
            .await
            .expect("export");
    assert!(package_gone, "the download package holding it stays");

    // Nothing of the other tenant moved.
    assert_eq!(app.tenant_rows(other.id).await, others);
    assert_eq!(app.objects_naming(&other.id.to_string()), others_objects);
    assert_eq!(points(&store, other.id, None).await, others_points);
    assert_eq!(
        app.document(&other_token, theirs["id"].as_str().expect("id"))
            .await["status"],
        "ready"
    );

    // The certificate: verifies offline, names ids only hashed, a forgery fails.
    let r = app
        .call(
            Method::GET,
            &format!("/v1/deletions/{deletion}/certificate"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.expect("certificate");
    assert!(!text.contains(&id) && !text.contains(&t.id.to_string()), "{text}");
    let file = app.dirs.path().join("certificate.json");
    std::fs::write(&file, &text).expect("write");
    let (code, report) = app.verify_certificate(&file).await;
    assert_eq!((code, &report["ok"]), (0, &json!(true)), "{report}");
    assert_eq!(report["stores"]["postgresql.chunks"], chunks, "{report}");
    let cert: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(cert["certificate"]["residue"]["found"], json!([]));
    assert!(
        cert["certificate"]["residue"]["checked"]
            .as_array()
            .expect("checked")
            .len()
            > 20
    );
    let forged = text.replacen(
        &format!("\"postgresql.chunks\": {chunks}"),
        "\"postgresql.chunks\": 0",
        1,
    );
    assert_ne!(forged, text);
    std::fs::write(&file, &forged).expect("write");
    let (code, report) = app.verify_certificate(&file).await;
    assert_eq!(code, 3, "{report}");
    assert!(
        report["problems"][0]
            .as_str()
            .expect("problem")
            .contains("does not match"),
        "{report}"
    );

    // Operators see it (status and counts, the subject hashed).
    let op = app.operator_token().await;
    let ops: Value = app
        .call(Method::GET, "/ops/deletions", Some(&op), None)
        .await
        .json()
        .await
        .expect("json");
    let listed = ops["deletions"].as_array().expect("deletions");
    assert!(
        listed
            .iter()
            .any(|d| d["id"] == deletion && d["status"] == "done" && d["tenant_id"] == t.id.to_string()),
        "{ops}"
    );
    assert!(
        !ops.to_string().contains(&id),
        "operators see the subject only hashed"
    );

    // Audited, and the chain still verifies.
    for (action, at_least) in [
        ("deletions.requested", 1),
        ("deletions.started", 1),
        ("deletions.store_swept", 10),
        ("deletions.finished", 1),
        ("deletions.certificate_issued", 1),
    ] {
        assert!(app.audit_count(t.id, action, None).await >= at_least, "{action}");
    }
    let report = docketctl::audit_verify(&app.control, Some(t.id))
        .await
        .expect("verify");
    assert_eq!(report["ok"], true, "{report}");
}

#[tokio::test]
async fn members_delete_only_their_own_documents_and_other_tenants_documents_are_not_found() {
    let app = spawn_app().await;
    let _worker = app.spawn_worker().await;
    let t = app.create_tenant("rules").await;
    let owner = app.owner_token(&t).await;
    let (_, member) = app.user_with_role(&t, &owner, "member").await;
    let (_, viewer) = app.user_with_role(&t, &owner, "viewer").await;
    let outsider = app.create_tenant("outsider").await;
    let outsider_token = app.owner_token(&outsider).await;
    let doc = app
        .upload_ready(&owner, "owner.txt", b"The owner's own contract text.".to_vec())
        .await;
    let id = doc["id"].as_str().expect("id");

    let (status, v) = app.delete_document(&member, id, false).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("not_document_owner")),
        "{v}"
    );
    let (status, v) = app.delete_document(&viewer, id, false).await;
    assert_eq!(status, 403, "{v}");
    let (status, v) = app.delete_document(&outsider_token, id, false).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );
    let (status, v) = app.delete_document(&owner, "not-an-id", false).await;
    assert_eq!(status, 404, "{v}");
    expect_error(
        app.call(
            Method::DELETE,
            &format!("/v1/documents/{id}?force=yes"),
            Some(&owner),
            None,
        )
        .await,
        400,
        "invalid_query",
    )
    .await;
    assert_eq!(
        app.document(&owner, id).await["status"],
        "ready",
        "a refusal changed it"
    );

    // A member deletes what they uploaded; asking twice is the same deletion.
    let mine = app
        .upload_ready(&member, "member.txt", b"The member's contract text.".to_vec())
        .await;
    let mine = mine["id"].as_str().expect("id");
    let (status, first) = app.delete_document(&member, mine, false).await;
    assert_eq!(status, 202, "{first}");
    let (status, second) = app.delete_document(&member, mine, false).await;
    if status == 202 {
        assert_eq!(second["deletion_id"], first["deletion_id"]);
    } else {
        assert_eq!(status, 404, "{second}");
    }
    let deletion = first["deletion_id"].as_str().expect("id");
    // Another tenant cannot read the deletion or its certificate.
    for path in [
        format!("/v1/deletions/{deletion}"),
        format!("/v1/deletions/{deletion}/certificate"),
    ] {
        expect_error(
            app.call(Method::GET, &path, Some(&outsider_token), None).await,
            404,
            "not_found",
        )
        .await;
    }
    let done = app
        .wait_deletion(&member, deletion, Duration::from_secs(120))
        .await;
    assert_eq!(done["status"], "done", "{done}");
    let (status, _) = app.delete_document(&member, mine, false).await;
    assert_eq!(status, 404, "a deleted document is gone");
    let listed: Value = app
        .call(Method::GET, "/v1/deletions", Some(&owner), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["deletions"].as_array().map(Vec::len), Some(1), "{listed}");
}
