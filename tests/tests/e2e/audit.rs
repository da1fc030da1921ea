//! The audit trail: append-only, an unbroken chain under concurrency, tampering detected.

use docket_platform::audit::{Actor, Event, Outcome};
use docket_tests::actors::expect_error;
use docket_tests::spawn_app;
use reqwest::Method;
use serde_json::Value;
use sqlx::Connection;

#[tokio::test]
async fn fifty_concurrent_events_make_one_unbroken_chain() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let auditor = app.auditor();
    let mut tasks = vec![];
    for i in 0..50 {
        let (db, auditor) = (app.db.clone(), auditor.clone());
        let tenant = t.id;
        tasks.push(tokio::spawn(async move {
            let ev = Event::new("test.concurrent", Outcome::Allowed, Actor::System).detail("i", i);
            auditor.tenant_standalone(&db, tenant, ev).await.expect("append")
        }));
    }
    for task in tasks {
        task.await.expect("join");
    }
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM audit_events WHERE tenant_id = $1 ORDER BY seq")
        .bind(t.id)
        .fetch_all(app.control.pool())
        .await
        .expect("seqs");
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "no gaps, no forks"
    );
    assert!(seqs.len() >= 51);
    let report = docketctl::audit_verify(&app.control, Some(t.id))
        .await
        .expect("verify");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["chains"][0]["events"], seqs.len());
}

async fn tamper(app: &docket_tests::TestApp, sql: &str, tenant: docket_platform::ids::TenantId) {
    let su = app.pool_as("docket_test_super").await;
    let mut conn = su.acquire().await.expect("conn");
    // What an attacker with superuser rights would do: switch triggers off first.
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .expect("replica");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(tenant)
        .execute(&mut *conn)
        .await
        .expect("tamper");
}

#[tokio::test]
async fn audit_verify_reports_the_first_broken_link() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    for _ in 0..5 {
        app.owner_token(&t).await; // auth.login events
    }
    let clean = docketctl::audit_verify(&app.control, None).await.expect("verify");
    assert_eq!(clean["ok"], true, "{clean}");

    // A row inserted with a wrong hash.
    let su = app.pool_as("docket_test_super").await;
    sqlx::query(
        "INSERT INTO audit_events (tenant_id, seq, occurred_at, actor_kind, action, outcome, prev_hash, hash)
         SELECT tenant_id, max(seq) + 1, now(), 'system', 'forged', 'allowed', 'deadbeef', 'deadbeef'
         FROM audit_events WHERE tenant_id = $1 GROUP BY tenant_id",
    )
    .bind(t.id)
    .execute(&su)
    .await
    .expect("insert as superuser");
    let last: i64 = sqlx::query_scalar("SELECT max(seq) FROM audit_events WHERE tenant_id = $1")
        .bind(t.id)
        .fetch_one(&su)
        .await
        .expect("max");
    let report = docketctl::audit_verify(&app.control, Some(t.id))
        .await
        .expect("verify");
    assert_eq!(report["ok"], false);
    assert_eq!(report["chains"][0]["first_break"]["seq"], last, "{report}");

    // A row edited in place (triggers disabled): its hash no longer matches.
    tamper(
        &app,
        "UPDATE audit_events SET action = 'nothing to see' WHERE tenant_id = $1 AND seq = 3",
        t.id,
    )
    .await;
    let report = docketctl::audit_verify(&app.control, Some(t.id))
        .await
        .expect("verify");
    assert_eq!(report["chains"][0]["first_break"]["seq"], 3, "{report}");
    assert!(
        report["chains"][0]["first_break"]["problem"]
            .as_str()
            .expect("p")
            .contains("hash")
    );

    // A deleted row (triggers disabled): the gap is named.
    tamper(
        &app,
        "DELETE FROM audit_events WHERE tenant_id = $1 AND seq = 2",
        t.id,
    )
    .await;
    let report = docketctl::audit_verify(&app.control, Some(t.id))
        .await
        .expect("verify");
    assert_eq!(report["chains"][0]["first_break"]["seq"], 2, "{report}");
    assert!(
        report["chains"][0]["first_break"]["problem"]
            .as_str()
            .expect("p")
            .contains("missing")
    );
}

#[tokio::test]
async fn audit_rows_cannot_be_changed_by_the_service_or_the_owner() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    for role in ["docket_app", "docket_owner", "docket_control"] {
        let pool = app.pool_as(role).await;
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(t.id.to_string())
            .execute(&mut *tx)
            .await
            .expect("ctx");
        for sql in [
            "UPDATE audit_events SET action = 'x'",
            "DELETE FROM audit_events",
            "UPDATE platform_audit_events SET action = 'x'",
            "DELETE FROM platform_audit_events",
        ] {
            let mut sp = tx.begin().await.expect("savepoint");
            let err = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *sp)
                .await
                .expect_err(sql);
            let msg = err.to_string();
            assert!(
                msg.contains("permission denied") || msg.contains("append-only"),
                "{role}: {sql}: {msg}"
            );
            sp.rollback().await.expect("rollback");
        }
    }
    // Even a superuser is stopped by the trigger unless triggers are switched off.
    let su = app.pool_as("docket_test_super").await;
    let err = sqlx::query("DELETE FROM audit_events")
        .execute(&su)
        .await
        .expect_err("trigger");
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[tokio::test]
async fn tenants_read_their_own_trail_with_filters() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme").await;
    let owner = app.owner_token(&t).await;
    let (_, admin) = app.user_with_role(&t, &owner, "admin").await;
    let (_, member) = app.user_with_role(&t, &owner, "member").await;
    expect_error(
        app.call(Method::GET, "/v1/audit-events", Some(&member), None)
            .await,
        403,
        "forbidden",
    )
    .await;

    let all: Value = app
        .call(Method::GET, "/v1/audit-events?limit=200", Some(&admin), None)
        .await
        .json()
        .await
        .expect("json");
    let events = all["events"].as_array().expect("events");
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().expect("seq")).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(
        events
            .iter()
            .all(|e| e["hash"].as_str().is_some_and(|h| h.len() == 64))
    );

    let logins: Value = app
        .call(
            Method::GET,
            "/v1/audit-events?action=auth.login",
            Some(&admin),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    let n = logins["events"].as_array().expect("e").len();
    assert_eq!(n, 3, "owner, admin and member logged in once each");

    let by_owner: Value = app
        .call(
            Method::GET,
            &format!("/v1/audit-events?actor=user:{}", t.owner_id),
            Some(&admin),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    let owner_events = by_owner["events"].as_array().expect("e");
    assert!(
        owner_events.len() >= 3,
        "owner login + two user creations: {by_owner}"
    );
    assert!(
        owner_events
            .iter()
            .all(|e| e["actor_id"] == owner_events[0]["actor_id"])
    );
    assert!(
        owner_events[0]["actor_id"]
            .as_str()
            .expect("pseudonym")
            .starts_with("p_")
    );

    let page: Value = app
        .call(Method::GET, "/v1/audit-events?limit=2", Some(&admin), None)
        .await
        .json()
        .await
        .expect("json");
    let cursor = page["next_cursor"].as_i64().expect("cursor");
    let next: Value = app
        .call(
            Method::GET,
            &format!("/v1/audit-events?limit=2&cursor={cursor}"),
            Some(&admin),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(next["events"][0]["seq"].as_i64().expect("seq") < cursor);

    expect_error(
        app.call(Method::GET, "/v1/audit-events?limit=0", Some(&admin), None)
            .await,
        400,
        "invalid_limit",
    )
    .await;
    expect_error(
        app.call(Method::GET, "/v1/audit-events?actor=bob", Some(&admin), None)
            .await,
        400,
        "invalid_actor",
    )
    .await;
    expect_error(
        app.call(Method::GET, "/v1/audit-events?from=yesterday", Some(&admin), None)
            .await,
        400,
        "invalid_query",
    )
    .await;
}
