-- The tenants table under row-level security for the service role, and grants trimmed to
-- what the code does.
--
-- Before: docket_app read every tenant's row (slug, plan, status) and could update one
-- column of any row, guarded only by a handler's WHERE. Now it sees and updates only the
-- row of the tenant in scope (app.tenant_id). The control role (BYPASSRLS) keeps its view
-- of every tenant. Two cross-tenant needs of the service remain, each a narrow function
-- that returns identifiers only:
--   * login knows a slug, not a tenant: docket_tenant_id(slug) → id;
--   * the worker's start-up checks walk every tenant: docket_tenant_ids() → ids.
-- RLS is enabled, not forced: the functions run as the table owner, which bypasses it.

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_self ON tenants
  USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
  WITH CHECK (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid);

CREATE FUNCTION docket_tenant_id(slug_in text) RETURNS uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT id FROM tenants WHERE slug = slug_in
$$;
CREATE FUNCTION docket_tenant_ids() RETURNS SETOF uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT id FROM tenants ORDER BY created_at
$$;
REVOKE ALL ON FUNCTION docket_tenant_id(text), docket_tenant_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION docket_tenant_id(text), docket_tenant_ids() TO docket_app, docket_control;

-- Operators' rate overrides are written inside the tenant's scope: the control role narrows
-- itself to the service role (SET LOCAL ROLE docket_app) for the write, so the row policy
-- checks the tenant again. No service code path writes this table.
GRANT INSERT, UPDATE, DELETE ON rate_overrides TO docket_app;

-- DELETE nobody issues. (Deletion of documents and tenants, when it comes, grants what it
-- needs in its own migration.)
REVOKE DELETE ON users, documents, jobs, vector_placements, embedding_cache FROM docket_app;
REVOKE DELETE ON plans, tenants, users, documents, jobs, refresh_tokens, api_keys,
  login_throttle, tenant_secrets, chunks, embedding_cache, vector_placements, queries,
  usage_monthly, rate_overrides
  FROM docket_control;
