//! Whole-tenant deletion on every isolation tier: an owner asks, confirms with the code,
//! the tenant is suspended for the grace period, the calendar's step queues the sweep, and
//! the tenant is gone from every store (the test's own scan: superuser SQL over every
//! table, the object folder, every vector placement and the tenant's own shard files,
//! every Redis key), its keys destroyed, its credentials refused, its certificate
//! verifiable offline by whoever holds the certificate token; another tenant untouched; the
//! dry run changes nothing; the slug is reserved until the retention period ends. Asking,
//! cancelling and the sweep's table catalog: `tenant_deletion_requests.rs`.

use chrono::Utc;
use docket_platform::deletions::tenant;
use docket_platform::ids::TenantId;
use docket_tests::actors::expect_error;
use docket_tests::deleting::{kept_by_tenant_deletion, points};
use docket_tests::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

async fn secrets(app: &TestApp, t: TenantId) -> (bool, bool, bool) {
    sqlx::query_as(
        "SELECT data_key_enc IS NULL, pseudonym_key_enc IS NULL, destroyed_at IS NOT NULL
         FROM tenant_secrets WHERE tenant_id = $1",
    )
    .bind(t)
    .fetch_one(&app.pool_as("docket_test_super").await)
    .await
    .expect("tenant_secrets")
}

/// The whole scenario on `tier`.
async fn a_tenant_is_deleted_everywhere(tier: &str) {
    let app = spawn_app().await;
    let (_worker, _ctx, store) = app.spawn_worker_with_handles().await;
    let t = app.create_tenant_on("leaving", "enterprise", tier).await;
    let other = app.create_tenant_on("staying", "business", "shared").await;
    let tokens = app.tokens(&t.slug, &t.owner_email).await;
    let token = tokens["access_token"].as_str().expect("token").to_owned();
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_owned();
    let other_token = app.owner_token(&other).await;
    app.upload_ready(&token, "contract.pdf", docket_tests::contract(3))
        .await;
    let note = b"The Supplier shall deliver the goods within thirty days of each purchase order.";
    app.upload_ready(&token, "note.txt", note.to_vec()).await;
    app.upload_ready(&other_token, "contract.pdf", docket_tests::contract(3))
        .await;
    app.ask(&token, "Which state's law governs this agreement?", json!({}))
        .await;
    app.ask(
        &other_token,
        "Which state's law governs this agreement?",
        json!({}),
    )
    .await;
    let export = app.request_export(&token, json!({"download": true})).await;
    let exported = app.wait_export(&token, &export, Duration::from_secs(180)).await;
    assert_eq!(exported["status"], "done", "{exported}");
    // An import in progress: no feeder runs, so its documents wait to be fed.
    let import = app.import_synthetic(&token, "batch", 7, 3).await;
    let started = Instant::now();
    while app.import_status(&token, &import).await["status"] == "unpacking" {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "import never unpacked"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let key: Value = app
        .call(
            Method::POST,
            "/v1/api-keys",
            Some(&token),
            Some(json!({"name": "ci", "role": "member"})),
        )
        .await
        .json()
        .await
        .expect("json");
    let api_key = key["key"].as_str().expect("key").to_owned();
    let (_, member) = app.user_with_role(&t, &token, "member").await;
    let (_, admin) = app.user_with_role(&t, &token, "admin").await;
    let id = t.id.to_string();
    assert!(points(&store, t.id, None).await > 0);

    // Only an owner may; nobody else sees the request route succeed.
    for who in [&member, &admin] {
        expect_error(
            app.call(
                Method::POST,
                "/v1/deletions",
                Some(who),
                Some(json!({"scope": "tenant"})),
            )
            .await,
            403,
            "forbidden",
        )
        .await;
    }
    expect_error(
        app.call(
            Method::POST,
            "/v1/deletions",
            Some(&token),
            Some(json!({"scope": "document"})),
        )
        .await,
        400,
        "unsupported_scope",
    )
    .await;

    // Dry run: counts, nothing changed anywhere.
    let mine = app.tenant_rows(t.id).await;
    let my_objects = app.objects_naming(&id);
    let my_points = points(&store, t.id, None).await;
    // Queue payloads are what the dry run could touch (rate-limit keys come and go).
    let queued =
        |keys: Vec<String>| -> Vec<String> { keys.into_iter().filter(|k| k.contains("queue:")).collect() };
    let my_keys = queued(app.redis_naming(&id).await);
    let r = app
        .call(
            Method::POST,
            "/v1/deletions",
            Some(&token),
            Some(json!({"scope": "tenant", "dry_run": true})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let plan: Value = r.json().await.expect("json");
    let s = &plan["stores"];
    assert_eq!(s["postgresql.documents"], mine["documents"], "{plan}");
    assert_eq!(s["postgresql.chunks"], mine["chunks"], "{plan}");
    assert_eq!(s["postgresql.users"], 3, "{plan}");
    assert_eq!(s[format!("vectors.{tier}")], my_points, "{plan}");
    assert_eq!(s["objects.tenant"], my_objects.len(), "{plan}");
    let cli = docketctl::deletion_plan(&app.config, &app.control, &t.slug, None)
        .await
        .expect("docketctl deletion plan");
    // Redis key counts move on their own (rate-limit windows open and expire): the rest
    // must be identical.
    let without_keys = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().map(|o| o.remove("redis.keys"));
        v
    };
    assert_eq!(
        without_keys(&cli["stores"]),
        without_keys(&plan["stores"]),
        "the CLI's dry run is the API's"
    );
    assert_eq!(app.tenant_rows(t.id).await, mine, "the dry run changed rows");
    assert_eq!(app.objects_naming(&id), my_objects);
    assert_eq!(points(&store, t.id, None).await, my_points);
    assert_eq!(queued(app.redis_naming(&id).await), my_keys);

    let others = app.tenant_rows(other.id).await;
    let others_objects = app.objects_naming(&other.id.to_string());
    let others_points = points(&store, other.id, None).await;

    // Asked and confirmed: suspended for the grace period, the deletion still readable.
    let (deletion, cert_token) = app.delete_tenant_confirmed(&token).await;
    expect_error(
        app.call(Method::GET, "/v1/documents", Some(&token), None).await,
        403,
        "tenant_suspended",
    )
    .await;
    let d: Value = app
        .call(
            Method::GET,
            &format!("/v1/deletions/{deletion}"),
            Some(&token),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(d["status"], "scheduled", "{d}");
    // The calendar's step: nothing before the grace period ends, the sweep after.
    let queue = app.job_queue();
    assert_eq!(
        tenant::queue_due(&app.control, &queue, Utc::now())
            .await
            .expect("due"),
        0
    );
    let later = Utc::now() + chrono::Duration::days(8);
    assert_eq!(
        tenant::queue_due(&app.control, &queue, later).await.expect("due"),
        1
    );

    let text = app.tenant_certificate(&deletion, &cert_token).await;
    let cert: Value = serde_json::from_str(&text).expect("certificate json");
    let c = &cert["certificate"];
    assert_eq!(c["scope"], "tenant", "{cert}");
    assert_eq!(c["stores"]["postgresql.documents"], mine["documents"], "{cert}");
    assert_eq!(c["stores"][format!("vectors.{tier}")], my_points, "{cert}");
    assert_eq!(c["residue"]["found"], json!([]), "{cert}");
    assert_eq!(c["keys_destroyed"].as_array().map(Vec::len), Some(2), "{cert}");
    assert!(
        !text.contains(&id),
        "the certificate names the tenant only hashed"
    );
    // Verifies offline; a forged one does not.
    let file = app.dirs.path().join("tenant-certificate.json");
    std::fs::write(&file, &text).expect("write");
    let (code, report) = app.verify_certificate(&file).await;
    assert_eq!((code, &report["ok"]), (0, &json!(true)), "{report}");
    let mut forged = cert.clone();
    forged["certificate"]["stores"]["postgresql.chunks"] = json!(0);
    std::fs::write(&file, forged.to_string()).expect("write");
    assert_eq!(
        app.verify_certificate(&file).await.0,
        3,
        "a forged certificate verifies"
    );
    // Operators fetch the same certificate by the deletion's id.
    let op = app.operator_token().await;
    let r = app
        .call(
            Method::GET,
            &format!("/ops/deletions/{deletion}/certificate"),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("text"), text);

    // Every credential of the tenant is refused as unknown.
    expect_error(
        app.call(Method::GET, "/v1/me", Some(&token), None).await,
        401,
        "tenant_deleted",
    )
    .await;
    assert_eq!(
        app.call(Method::GET, "/v1/me", Some(&api_key), None)
            .await
            .status(),
        401
    );
    let r = app
        .call(
            Method::POST,
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        app.login(&t.slug, &t.owner_email, &t.password).await.status(),
        401
    );
    assert_eq!(
        app.call(Method::GET, &format!("/v1/imports/{import}"), Some(&token), None)
            .await
            .status(),
        401
    );

    // The deletion's own finished task names the tenant: the calendar's next steps remove it.
    app.forget_tenant_deletion_tasks().await;

    // The test's own residue scan, after those requests.
    let left: BTreeMap<String, i64> = app
        .tenant_rows(t.id)
        .await
        .into_iter()
        .filter(|(table, n)| *n > 0 && !kept_by_tenant_deletion(table))
        .collect();
    assert_eq!(left, BTreeMap::new(), "rows of the tenant left");
    assert_eq!(app.objects_naming(&id), Vec::<String>::new(), "objects left");
    assert_eq!(
        app.redis_naming(&id).await,
        Vec::<String>::new(),
        "redis keys left"
    );
    assert_eq!(points(&store, t.id, None).await, 0, "vector points left");
    if tier != "shared" {
        let own = app.config.vector_dir.join(tier).join(&id);
        assert!(
            !own.exists(),
            "the tenant's own shard files stay at {}",
            own.display()
        );
    }
    assert_eq!(
        secrets(&app, t.id).await,
        (true, true, true),
        "keys not destroyed"
    );
    let status: String = sqlx::query_scalar("SELECT status FROM tenants WHERE id = $1")
        .bind(t.id)
        .fetch_one(app.control.pool())
        .await
        .expect("tenant");
    assert_eq!(status, "deleted");
    // The chain still verifies (its hashes cover pseudonyms, not people).
    let verified = docketctl::audit_verify(&app.control, None).await.expect("verify");
    assert_eq!(verified["ok"], true, "{verified}");

    // The other tenant: every store as it was, and it still answers.
    assert_eq!(app.tenant_rows(other.id).await, others);
    assert_eq!(app.objects_naming(&other.id.to_string()), others_objects);
    assert_eq!(points(&store, other.id, None).await, others_points);
    assert_eq!(
        app.call(Method::GET, "/v1/documents", Some(&other_token), None)
            .await
            .status(),
        200
    );

    // The slug is reserved until the retention period ends, then reusable.
    let again = docketctl::TenantCreate {
        slug: t.slug.clone(),
        name: "Newcomer Inc.".into(),
        plan: "team".into(),
        tier: "shared".into(),
        owner_email: Some(format!("owner@new.{}.example.com", t.slug)),
        owner_password: Some(t.password.clone()),
    };
    let refused = docketctl::tenant_create(&app.control, &app.auditor(), &again).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| format!("{e:#}").contains("reserved")),
        "{refused:?}"
    );
    sqlx::query("UPDATE tenants SET slug_reserved_until = now() - interval '1 second' WHERE id = $1")
        .bind(t.id)
        .execute(&app.pool_as("docket_test_super").await)
        .await
        .expect("age the reservation");
    let created = docketctl::tenant_create(&app.control, &app.auditor(), &again)
        .await
        .expect("the slug is free after its reservation");
    assert_ne!(created["tenant_id"], json!(id));
    let owner = again.owner_email.clone().expect("email");
    assert_eq!(app.login(&t.slug, &owner, &t.password).await.status(), 200);
}

#[tokio::test]
async fn a_shared_tenant_is_deleted_from_every_store_with_a_certificate() {
    a_tenant_is_deleted_everywhere("shared").await;
}

#[tokio::test]
async fn a_dedicated_tenant_is_deleted_from_every_store_with_a_certificate() {
    a_tenant_is_deleted_everywhere("dedicated").await;
}

#[tokio::test]
async fn an_isolated_tenant_is_deleted_from_every_store_with_a_certificate() {
    a_tenant_is_deleted_everywhere("isolated").await;
}
