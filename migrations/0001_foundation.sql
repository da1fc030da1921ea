-- Foundation schema. Roles docket_owner (owns everything, runs migrations), docket_app (the
-- service: no owner, no superuser, no BYPASSRLS) and docket_control (cross-tenant control
-- plane: BYPASSRLS, used by docketctl, /ops and the scheduler) are created by
-- scripts/bootstrap-db before migrations run; they are cluster-wide, this file is per database.


-- Sets up tenant row-level security on a table in one place, so that no table gets a
-- slightly different (weaker) policy by copy-paste.
CREATE FUNCTION docket_enable_tenant_rls(tbl regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
  EXECUTE format(
    'CREATE POLICY tenant_isolation ON %s
       USING (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)
       WITH CHECK (tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)',
    tbl);
END $$;

-- ---------------------------------------------------------------- control plane
CREATE TABLE plans (
    id                   text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_]{1,31}$'),
    name                 text NOT NULL,
    price_cents_monthly  bigint NOT NULL CHECK (price_cents_monthly >= 0),
    features             jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

INSERT INTO plans (id, name, price_cents_monthly, features) VALUES
  ('free',       'Free',       0,      '[]'),
  ('team',       'Team',       4900,   '["api_keys"]'),
  ('business',   'Business',   49900,  '["api_keys","bulk_import","exports","dedicated_tier"]'),
  ('enterprise', 'Enterprise', 250000, '["api_keys","bulk_import","exports","dedicated_tier","isolated_tier","generative_answers"]');

CREATE TABLE tenants (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug            text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    plan_id         text NOT NULL REFERENCES plans (id),
    isolation_tier  text NOT NULL DEFAULT 'shared' CHECK (isolation_tier IN ('shared', 'dedicated', 'isolated')),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleting', 'deleted')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Liveness of background processes, read by the API's /readyz (the API never opens the
-- vector store itself: it checks that the process owning it reports it healthy).
CREATE TABLE service_heartbeats (
    name        text PRIMARY KEY,
    kind        text NOT NULL,
    components  jsonb NOT NULL DEFAULT '{}'::jsonb,
    last_seen   timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- tenant data
CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash  text,
    role           text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email));

CREATE TABLE documents (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    filename       text NOT NULL,
    content_type   text NOT NULL,
    byte_size      bigint NOT NULL CHECK (byte_size >= 0),
    sha256         text NOT NULL,
    status         text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
    stage          text CHECK (stage IN ('parse', 'chunk', 'embed', 'index')),
    pages          integer,
    chunks         integer,
    error_code     text,
    error_message  text,
    created_by     uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX documents_tenant_sha ON documents (tenant_id, sha256);

CREATE TABLE jobs (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    kind           text NOT NULL,
    target_id      uuid,
    status         text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts       integer NOT NULL DEFAULT 0,
    error_code     text,
    error_message  text,
    request_id     text,
    actor          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_tenant_target ON jobs (tenant_id, target_id);

-- One hash chain per tenant. Append-only: see the trigger below and the grants.
CREATE TABLE audit_events (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    seq          bigint NOT NULL CHECK (seq >= 1),
    id           uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    occurred_at  timestamptz NOT NULL,
    actor_kind   text NOT NULL,
    actor_id     text,
    action       text NOT NULL,
    target       text,
    outcome      text NOT NULL CHECK (outcome IN ('allowed', 'refused', 'failed')),
    reason       text,
    request_id   text,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hash    text NOT NULL,
    hash         text NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

-- The usage ledger: invoices are computed from it; the idempotency key makes a retried job
-- or request count once.
CREATE TABLE usage_events (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    kind             text NOT NULL,
    quantity         bigint NOT NULL CHECK (quantity >= 0),
    actor            text,
    idempotency_key  text NOT NULL,
    occurred_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX usage_events_tenant_time ON usage_events (tenant_id, occurred_at);

SELECT docket_enable_tenant_rls('users');
SELECT docket_enable_tenant_rls('documents');
SELECT docket_enable_tenant_rls('jobs');
SELECT docket_enable_tenant_rls('audit_events');
SELECT docket_enable_tenant_rls('usage_events');

-- Audit rows can never change, whoever asks (the owner and superusers included, short of
-- disabling triggers, which `docketctl audit verify` then detects as a broken chain).
CREATE FUNCTION docket_audit_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_immutable BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION docket_audit_immutable();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION docket_audit_immutable();

-- ---------------------------------------------------------------- privileges
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO docket_app, docket_control;

GRANT SELECT ON plans, tenants TO docket_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON service_heartbeats TO docket_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON users, documents, jobs TO docket_app;
GRANT SELECT, INSERT ON audit_events, usage_events TO docket_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON plans, tenants, service_heartbeats TO docket_control;
GRANT SELECT, INSERT, UPDATE, DELETE ON users, documents, jobs TO docket_control;
GRANT SELECT, INSERT ON audit_events, usage_events TO docket_control;
