//! Row-level security: the database enforces tenant isolation on its own, whatever the
//! application code does.

use docket_platform::ids::TenantId;
use docket_tests::{seed, spawn_app};
use sqlx::{PgPool, Row};

/// Every table in `public` that has a `tenant_id` column, from the catalog.
async fn tenant_tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("catalog")
}

async fn two_seeded_tenants(app: &docket_tests::TestApp) -> (TenantId, TenantId) {
    let a = seed::tenant(&app.control, "alpha").await;
    let b = seed::tenant(&app.control, "beta").await;
    seed::rows_in_every_tenant_table(&app.control, a).await;
    seed::rows_in_every_tenant_table(&app.control, b).await;
    (a, b)
}

#[tokio::test]
async fn every_tenant_table_has_forced_rls_and_a_tenant_policy() {
    let app = spawn_app().await;
    let owner = app.pool_as("docket_owner").await;
    let tables = tenant_tables(&owner).await;
    assert!(tables.len() >= 5, "expected the tenant tables, found {tables:?}");
    for t in &tables {
        let row = sqlx::query(
            "SELECT c.relrowsecurity, c.relforcerowsecurity,
                    (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid
                       AND pg_get_expr(p.polqual, p.polrelid) LIKE '%current_setting(''app.tenant_id''%'
                       AND pg_get_expr(p.polwithcheck, p.polrelid) LIKE '%current_setting(''app.tenant_id''%') AS policies,
                    (SELECT a.attnotnull FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id') AS not_null
             FROM pg_class c WHERE c.relname = $1 AND c.relnamespace = 'public'::regnamespace",
        )
        .bind(t)
        .fetch_one(&owner)
        .await
        .expect("pg_class");
        assert!(row.get::<bool, _>(0), "{t}: row level security not ENABLEd");
        assert!(row.get::<bool, _>(1), "{t}: row level security not FORCEd");
        assert!(
            row.get::<i64, _>(2) >= 1,
            "{t}: no policy on app.tenant_id (USING and WITH CHECK)"
        );
        assert!(row.get::<bool, _>(3), "{t}: tenant_id is nullable");
    }
}

#[tokio::test]
async fn without_tenant_context_the_app_role_sees_nothing() {
    let app = spawn_app().await;
    two_seeded_tenants(&app).await;
    let app_pool = app.pool_as("docket_app").await;
    for t in tenant_tables(&app_pool).await {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {t}")))
            .fetch_one(&app_pool)
            .await
            .expect("count");
        assert_eq!(n, 0, "{t}: rows visible without a tenant context");
    }
}

#[tokio::test]
async fn tenant_context_shows_only_that_tenants_rows() {
    let app = spawn_app().await;
    let (a, b) = two_seeded_tenants(&app).await;
    let tables = tenant_tables(app.control.pool()).await;
    for t in &tables {
        // Not vacuous: both tenants really have rows in this table.
        let tenants: Vec<uuid::Uuid> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT DISTINCT tenant_id FROM {t}")))
                .fetch_all(app.control.pool())
                .await
                .expect("control read");
        assert_eq!(
            tenants.len(),
            2,
            "{t}: seed::rows_in_every_tenant_table must seed this table"
        );

        let mut tx = app.db.begin_tenant(a).await.expect("begin");
        let seen: Vec<uuid::Uuid> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT tenant_id FROM {t}")))
                .fetch_all(tx.conn())
                .await
                .expect("select *");
        assert!(!seen.is_empty(), "{t}: A sees none of its own rows");
        assert!(
            seen.iter().all(|x| *x == a.as_uuid()),
            "{t}: A sees another tenant's rows"
        );
        let b_rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {t} WHERE tenant_id = $1"
        )))
        .bind(b.as_uuid())
        .fetch_one(tx.conn())
        .await
        .expect("by tenant");
        assert_eq!(b_rows, 0, "{t}: B's rows fetchable by A");
    }
    // Fetching B's row by its id returns nothing.
    let b_user: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE tenant_id = $1")
        .bind(b.as_uuid())
        .fetch_one(app.control.pool())
        .await
        .expect("b user");
    let mut tx = app.db.begin_tenant(a).await.expect("begin");
    let found: Option<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1")
        .bind(b_user)
        .fetch_optional(tx.conn())
        .await
        .expect("by id");
    assert_eq!(found, None);
    // Updating or deleting B's row from A's context touches nothing.
    let updated = sqlx::query("UPDATE users SET role = 'owner' WHERE id = $1")
        .bind(b_user)
        .execute(tx.conn())
        .await
        .expect("update");
    assert_eq!(updated.rows_affected(), 0);
    let deleted = sqlx::query("DELETE FROM chunks WHERE tenant_id = $1")
        .bind(b.as_uuid())
        .execute(tx.conn())
        .await
        .expect("delete");
    assert_eq!(deleted.rows_affected(), 0);
}

#[tokio::test]
async fn inserting_another_tenants_row_is_refused() {
    let app = spawn_app().await;
    let (a, b) = two_seeded_tenants(&app).await;
    let mut tx = app.db.begin_tenant(a).await.expect("begin");
    let err =
        sqlx::query("INSERT INTO users (tenant_id, email, role) VALUES ($1, 'x@example.com', 'member')")
            .bind(b.as_uuid())
            .execute(tx.conn())
            .await
            .expect_err("policy refuses");
    assert!(err.to_string().contains("row-level security"), "{err}");
    // Moving A's own row to B is refused too.
    let mut tx = app.db.begin_tenant(a).await.expect("begin");
    let err = sqlx::query("UPDATE users SET tenant_id = $1")
        .bind(b.as_uuid())
        .execute(tx.conn())
        .await
        .expect_err("policy refuses");
    assert!(err.to_string().contains("row-level security"), "{err}");
}

#[tokio::test]
async fn the_app_role_cannot_weaken_security() {
    let app = spawn_app().await;
    let (a, _) = two_seeded_tenants(&app).await;
    let pool = app.pool_as("docket_app").await;
    let attrs = sqlx::query(
        "SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&pool)
    .await
    .expect("role");
    assert!(!attrs.get::<bool, _>(0) && !attrs.get::<bool, _>(1) && !attrs.get::<bool, _>(2));
    let owned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)",
    )
    .fetch_one(&pool)
    .await
    .expect("owned");
    assert_eq!(owned, 0, "the service role must own no relation");
    for sql in [
        "ALTER TABLE users DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE users NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON documents",
        "ALTER TABLE documents ADD COLUMN sneaky text",
        "CREATE POLICY open ON users USING (true)",
        "TRUNCATE usage_events",
        "UPDATE audit_events SET action = 'x'",
        "DELETE FROM audit_events",
        "UPDATE tenants SET status = 'active'",
        // Grants nobody's code uses are gone (migration 0017); deletion took back DELETE
        // on what it sweeps (0023, 0026), checked below.
        "DELETE FROM plans",
    ] {
        let err = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .expect_err(sql);
        let msg = err.to_string();
        assert!(
            msg.contains("must be owner") || msg.contains("permission denied"),
            "{sql}: unexpected error {msg}"
        );
    }
    // What deletion may delete, it deletes only inside a tenant's scope: without one, row
    // security leaves it nothing.
    for sql in [
        "DELETE FROM documents",
        "DELETE FROM jobs",
        "DELETE FROM embedding_cache",
        "DELETE FROM users",
        "DELETE FROM api_keys",
        "DELETE FROM queries",
    ] {
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .expect(sql);
        assert_eq!(done.rows_affected(), 0, "{sql} outside a tenant's scope");
    }
    // The tenant's status moves only as its deletion records allow: not back to active
    // from a suspension, not to deleted without a finished tenant deletion.
    for next in ["active", "deleting", "deleted"] {
        let mut tx = app.db.begin_tenant(a).await.expect("begin");
        let err = sqlx::query("SELECT docket_tenant_deletion_state($1)")
            .bind(next)
            .execute(tx.conn())
            .await
            .expect_err(next);
        assert!(
            err.to_string().contains("no matching tenant deletion"),
            "{next}: {err}"
        );
    }
    // Turning row security off makes queries fail rather than see everything.
    let mut conn = pool.acquire().await.expect("conn");
    sqlx::query("SET row_security = off")
        .execute(&mut *conn)
        .await
        .expect("set");
    let err = sqlx::query("SELECT count(*) FROM users")
        .execute(&mut *conn)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("row-level security"), "{err}");
}

/// The tenants table itself: the service role sees and updates only the row of the tenant
/// in scope; it can resolve a slug to an id (login) and list ids (start-up checks) through
/// two narrow functions, and nothing more.
#[tokio::test]
async fn the_service_role_sees_only_its_own_tenant_row() {
    let app = spawn_app().await;
    let (a, b) = two_seeded_tenants(&app).await;
    let pool = app.pool_as("docket_app").await;
    let unscoped: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(unscoped, 0, "no scope, no rows");
    let mut tx = app.db.begin_tenant(a).await.expect("begin");
    let visible: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM tenants")
        .fetch_all(tx.conn())
        .await
        .expect("select");
    assert_eq!(visible, vec![a.as_uuid()]);
    // The one column owners may write, on another tenant's row: no row matches.
    let updated = sqlx::query("UPDATE tenants SET refuse_flagged_input = true WHERE id = $1")
        .bind(b.as_uuid())
        .execute(tx.conn())
        .await
        .expect("update");
    assert_eq!(updated.rows_affected(), 0);
    let own = sqlx::query("UPDATE tenants SET refuse_flagged_input = true WHERE id = $1")
        .bind(a.as_uuid())
        .execute(tx.conn())
        .await
        .expect("update");
    assert_eq!(own.rows_affected(), 1, "its own row stays writable");
    drop(tx);
    // What the narrow functions give: an id for a slug, and ids.
    let slug: String = sqlx::query_scalar("SELECT slug FROM tenants WHERE id = $1")
        .bind(b.as_uuid())
        .fetch_one(app.control.pool())
        .await
        .expect("slug");
    let found: Option<uuid::Uuid> = sqlx::query_scalar("SELECT docket_tenant_id($1)")
        .bind(&slug)
        .fetch_one(&pool)
        .await
        .expect("by slug");
    assert_eq!(found, Some(b.as_uuid()));
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT docket_tenant_ids()")
        .fetch_all(&pool)
        .await
        .expect("ids");
    assert!(ids.contains(&a.as_uuid()) && ids.contains(&b.as_uuid()));
    // The control role keeps its cross-tenant view.
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(app.control.pool())
        .await
        .expect("control");
    assert!(all >= 2);
    // And the platform code path: a tenant read by id is scoped to that tenant.
    let t = docket_platform::tenants::get(&app.db, b).await.expect("get");
    assert_eq!(t.map(|t| t.id), Some(b));
}
