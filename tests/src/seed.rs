//! Seed data written through the control-plane role, for tests that need two tenants with
//! rows in every tenant table.

use docket_platform::db::ControlDb;
use docket_platform::ids::{TenantId, TenantSlug};
use docket_platform::tenants::{self, IsolationTier, NewTenant};
use uuid::Uuid;

/// Creates a tenant with a random slug.
pub async fn tenant(control: &ControlDb, prefix: &str) -> TenantId {
    let slug = format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let mut tx = control.pool().begin().await.expect("begin");
    let t = tenants::create(
        &mut tx,
        &NewTenant {
            slug: TenantSlug::parse(&slug).expect("slug"),
            name: format!("{prefix} Inc."),
            plan_id: "team".into(),
            tier: IsolationTier::Shared,
        },
    )
    .await
    .expect("create tenant");
    tx.commit().await.expect("commit");
    t.id
}

/// One row in every tenant table for `tenant` (control role, which bypasses RLS). A new
/// tenant table needs a line here, or the RLS test that checks every table fails.
pub async fn rows_in_every_tenant_table(control: &ControlDb, tenant: TenantId) {
    let t = tenant.as_uuid();
    let statements = [
        "INSERT INTO users (tenant_id, email, role) VALUES ($1, 'user-' || $1::text || '@example.com', 'member')",
        "INSERT INTO documents (tenant_id, filename, content_type, byte_size, sha256) VALUES ($1, 'a.pdf', 'application/pdf', 1, md5($1::text))",
        "INSERT INTO jobs (tenant_id, kind) VALUES ($1, 'parse')",
        "INSERT INTO audit_events (tenant_id, seq, occurred_at, actor_kind, action, outcome, prev_hash, hash)
           VALUES ($1, 1, now(), 'system', 'seed', 'allowed', '', 'seed')",
        "INSERT INTO usage_events (tenant_id, kind, quantity, idempotency_key) VALUES ($1, 'pages_parsed', 3, 'seed')",
        // usage_monthly gets its row from the ledger's trigger above.
        "INSERT INTO queries (id, tenant_id, actor, question, top_k_applied) VALUES (gen_random_uuid(), $1, 'system', 'seed?', 1)",
    ];
    for sql in statements.iter().chain(IDENTITY_SEEDS.iter()) {
        sqlx::query(*sql)
            .bind(t)
            .execute(control.pool())
            .await
            .unwrap_or_else(|e| panic!("seed {sql}: {e}"));
    }
    let mut tx = control.begin_tenant(tenant).await.expect("scope");
    for sql in SCOPED_SEEDS {
        sqlx::query(sql)
            .bind(t)
            .execute(tx.conn())
            .await
            .unwrap_or_else(|e| panic!("seed {sql}: {e}"));
    }
    tx.commit().await.expect("commit");
}

/// Statements that put one row of `$1`'s into each later tenant table (identity, vectors,
/// limits, imports; the plan and status history get theirs from the tenant's creation).
pub(crate) const IDENTITY_SEEDS: [&str; 10] = [
    "INSERT INTO embedding_cache (tenant_id, sha256, model, vector) VALUES ($1, 'seed', 'seed', '\\x00')",
    "INSERT INTO vector_placements (tenant_id, tier) VALUES ($1, 'shared')",
    "INSERT INTO rate_overrides (tenant_id, class, per_minute, burst, expires_at, reason) VALUES ($1, 'read', 1, 1, now(), 'seed')",
    "INSERT INTO chunks (id, tenant_id, document_id, ordinal, text, page_start, page_end, token_count, sha256)
       SELECT gen_random_uuid(), $1, id, 0, 'seed', 1, 1, 1, 'x' FROM documents WHERE tenant_id = $1 LIMIT 1",
    "INSERT INTO refresh_tokens (id, tenant_id, user_id, family_id, token_hash, expires_at)
       SELECT gen_random_uuid(), $1, id, gen_random_uuid(), 'x', now() FROM users WHERE tenant_id = $1 LIMIT 1",
    "INSERT INTO api_keys (id, tenant_id, name, role, key_hash) VALUES (gen_random_uuid(), $1, 'seed', 'viewer', 'x')",
    "INSERT INTO login_throttle (tenant_id, account) VALUES ($1, 'seed')",
    "INSERT INTO tenant_secrets (tenant_id, master_kid) VALUES ($1, 'seed')",
    "INSERT INTO imports (id, tenant_id, source, actor) VALUES (gen_random_uuid(), $1, 'zip', 'system')",
    "INSERT INTO import_failures (tenant_id, import_id, entry, filename, code, message)
       SELECT $1, id, 0, 'seed.bin', 'unsupported_media_type', 'seed' FROM imports WHERE tenant_id = $1 LIMIT 1",
];

/// Rows only the service role writes (invoices and Stripe customers by the `invoice` job,
/// exports), written in the tenant's scope.
pub(crate) const SCOPED_SEEDS: [&str; 11] = [
    "INSERT INTO invoices (id, tenant_id, period, number, plan_id, currency, total_cents, active_days)
       VALUES (gen_random_uuid(), $1, '2026-01-01', 'SEED-' || $1::text, 'team', 'usd', 4900, 31)",
    "INSERT INTO invoice_lines (tenant_id, invoice_id, ordinal, kind, description, quantity, unit, amount_cents)
       SELECT $1, id, 0, 'base', 'Team plan', 31, 'days', 4900 FROM invoices WHERE tenant_id = $1 LIMIT 1",
    "INSERT INTO stripe_customers (tenant_id, customer_id) VALUES ($1, 'cus_seed_' || $1::text)",
    "INSERT INTO exports (id, tenant_id, destination, requested_by) VALUES (gen_random_uuid(), $1, '{}', 'system')",
    "INSERT INTO export_files (tenant_id, export_id, path, bytes, sha256)
       SELECT $1, id, 'seed.json', 1, 'x' FROM exports WHERE tenant_id = $1 LIMIT 1",
    "INSERT INTO invoice_failures (tenant_id, period, code, message) VALUES ($1, '2026-01-01', 'seed', 'seed')",
    "INSERT INTO invoice_adjustments (id, tenant_id, amount_cents, description, reason, created_by)
       VALUES (gen_random_uuid(), $1, -100, 'seed', 'seed', 'seed')",
    "INSERT INTO deletions (id, tenant_id, scope, target_sha256, requested_by)
       VALUES (gen_random_uuid(), $1, 'document', 'seed', 'system')",
    "INSERT INTO consents (id, tenant_id, purpose, granted, terms_version, decided_by)
       VALUES (gen_random_uuid(), $1, 'usage_analytics', true, '1', 'system')",
    "INSERT INTO access_reviews (id, tenant_id, quarter, period_start, period_end, status, requested_by)
       VALUES (gen_random_uuid(), $1, '2026Q1', '2026-01-01', '2026-04-01', 'open', 'system')",
    "INSERT INTO access_review_decisions (id, tenant_id, review_id, finding_id, decision, decided_by)
       SELECT gen_random_uuid(), $1, id, 'seed', 'revoke', 'system' FROM access_reviews WHERE tenant_id = $1 LIMIT 1",
];
