//! A user's personal data erased (`DELETE /v1/users/{id}?erase=true`): the address is gone
//! from every table (the test's own superuser scan, the audit chain included), sessions and
//! the login throttle go, the account is refused, the certificate verifies; the dry run
//! changes nothing; someone whose address contains the erased one is untouched; members
//! cannot erase, admins cannot erase owners, nobody erases themselves, an erased account
//! cannot be enabled again, other tenants' users are not found.

use docket_tests::actors::expect_error;
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn a_users_personal_data_is_erased_everywhere_with_a_certificate() {
    let app = spawn_app().await;
    let t = app.create_tenant("erasure").await;
    let owner = app.owner_token(&t).await;
    let (member_id, member) = app.user_with_role(&t, &owner, "member").await;
    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(member_id)
        .fetch_one(app.control.pool())
        .await
        .expect("email");
    // Someone whose address contains this one's is someone else: kept.
    let (_, admin) = app.user_with_role(&t, &owner, "admin").await;
    let longer = format!("jo{email}");
    let r = app
        .call(
            Method::POST,
            "/v1/users",
            Some(&owner),
            Some(serde_json::json!({"email": longer, "password": t.password, "role": "viewer"})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let wrong = app.login(&t.slug, &email, "not the password at all").await;
    assert_eq!(wrong.status(), 401);
    let path = format!("/v1/users/{member_id}?erase=true");

    // Dry run: counts, nothing changed.
    let before = app.tenant_rows(t.id).await;
    let r = app
        .call(
            Method::DELETE,
            &format!("{path}&dry_run=true"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let plan: Value = r.json().await.expect("json");
    assert!(
        plan["stores"]["postgresql.refresh_tokens"].as_i64() >= Some(1),
        "{plan}"
    );
    assert_eq!(plan["stores"]["postgresql.login_throttle"], 1, "{plan}");
    assert_eq!(app.tenant_rows(t.id).await, before, "the dry run changed rows");
    assert!(!app.rows_naming(&email).await.is_empty());

    // Who may not.
    expect_error(
        app.call(Method::DELETE, &path, Some(&member), None).await,
        403,
        "forbidden",
    )
    .await;
    let owner_path = format!("/v1/users/{}?erase=true", t.owner_id);
    expect_error(
        app.call(Method::DELETE, &owner_path, Some(&admin), None).await,
        403,
        "role_not_grantable",
    )
    .await;
    let outsider = app.create_tenant("outsider").await;
    let outsider_token = app.owner_token(&outsider).await;
    expect_error(
        app.call(Method::DELETE, &path, Some(&outsider_token), None).await,
        404,
        "not_found",
    )
    .await;
    expect_error(
        app.call(
            Method::DELETE,
            &format!("/v1/users/{member_id}?dry_run=true"),
            Some(&owner),
            None,
        )
        .await,
        400,
        "invalid_query",
    )
    .await;

    // The erasure.
    let r = app.call(Method::DELETE, &path, Some(&owner), None).await;
    assert_eq!(r.status(), 200);
    let done: Value = r.json().await.expect("json");
    assert_eq!(done["status"], "done", "{done}");
    // The test's scan is a substring search: only the longer address still contains it.
    let held = app.rows_naming(&email).await;
    assert_eq!(held.get("users"), Some(&1), "{held:?}");
    assert_eq!(held.len(), 1, "the address is still held: {held:?}");
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE email = $1")
        .bind(&longer)
        .fetch_one(app.control.pool())
        .await
        .expect("kept");
    assert_eq!(kept, 1, "the other user was touched");
    let in_audit: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events a WHERE strpos(a::text, $1) > 0")
            .bind(&email)
            .fetch_one(&app.pool_as("docket_test_super").await)
            .await
            .expect("audit");
    assert_eq!(in_audit, 0, "the audit chain holds the address");
    let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM refresh_tokens WHERE user_id = $1")
        .bind(member_id)
        .fetch_one(app.control.pool())
        .await
        .expect("sessions");
    assert_eq!(sessions, 0);
    assert_eq!(app.login(&t.slug, &email, &t.password).await.status(), 401);
    let me = app.call(Method::GET, "/v1/me", Some(&member), None).await;
    assert_eq!(me.status(), 401, "the erased user's token still works");

    let deletion = done["deletion_id"].as_str().expect("id");
    let text = app
        .call(
            Method::GET,
            &format!("/v1/deletions/{deletion}/certificate"),
            Some(&owner),
            None,
        )
        .await
        .text()
        .await
        .expect("certificate");
    assert!(
        !text.contains(&email) && !text.contains(&member_id.to_string()),
        "{text}"
    );
    let file = app.dirs.path().join("user-certificate.json");
    std::fs::write(&file, &text).expect("write");
    let (code, report) = app.verify_certificate(&file).await;
    assert_eq!((code, report["scope"].as_str()), (0, Some("user")), "{report}");
    expect_error(
        app.call(Method::DELETE, &path, Some(&owner), None).await,
        409,
        "user_erased",
    )
    .await;
    assert_eq!(
        app.audit_count(t.id, "deletions.certificate_issued", None).await,
        1
    );
    let report = docketctl::audit_verify(&app.control, Some(t.id))
        .await
        .expect("verify");
    assert_eq!(report["ok"], true, "{report}");

    // An erased account cannot come back; nobody erases themselves.
    expect_error(
        app.call(
            Method::PATCH,
            &format!("/v1/users/{member_id}"),
            Some(&owner),
            Some(serde_json::json!({"status": "active"})),
        )
        .await,
        409,
        "user_erased",
    )
    .await;
    expect_error(
        app.call(Method::DELETE, &owner_path, Some(&owner), None).await,
        409,
        "cannot_modify_self",
    )
    .await;
    assert_eq!(
        app.login(&t.slug, &t.owner_email, &t.password).await.status(),
        200
    );
}
