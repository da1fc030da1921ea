-- Identity (operators, tenant users' refresh tokens and API keys, login throttling),
-- signing keys, pseudonymization secrets and the platform audit chain.

-- ---------------------------------------------------------------- control plane
-- Platform staff. Reached only through the control-plane role.
CREATE TABLE operators (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    password_hash  text NOT NULL,
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX operators_email ON operators (lower(email));

-- Ed25519 signing keys for access tokens. The private half is encrypted with the master
-- key (AES-256-GCM, `master_kid` names which). At most one key is active; a retired key
-- stays accepted for the configured rotation window.
CREATE TABLE signing_keys (
    kid               text PRIMARY KEY,
    public_key        bytea NOT NULL CHECK (length(public_key) = 32),
    private_key_enc   bytea NOT NULL,
    master_kid        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    retired_at        timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired_at IS NULL;

-- The platform's own audit chain (operator actions, and refusals that name no tenant).
CREATE TABLE platform_audit_events (
    seq          bigint PRIMARY KEY CHECK (seq >= 1),
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
    hash         text NOT NULL
);
CREATE TRIGGER platform_audit_events_immutable BEFORE UPDATE OR DELETE ON platform_audit_events
  FOR EACH ROW EXECUTE FUNCTION docket_audit_immutable();
CREATE TRIGGER platform_audit_events_no_truncate BEFORE TRUNCATE ON platform_audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION docket_audit_immutable();

-- ---------------------------------------------------------------- tenant data
-- Opaque refresh tokens, stored hashed. One family per login; rotated on every use; a
-- spent token presented again revokes its whole family.
CREATE TABLE refresh_tokens (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    user_id      uuid NOT NULL REFERENCES users (id),
    family_id    uuid NOT NULL,
    token_hash   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);

-- Machine credentials: shown once, stored hashed.
CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role          text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    key_hash      text NOT NULL,
    created_by    uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);

-- Failed-login throttle per account (keyed by a pseudonym of the email, so unknown
-- accounts are throttled the same way and the table holds no addresses).
CREATE TABLE login_throttle (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    account       text NOT NULL,
    failures      integer NOT NULL DEFAULT 0,
    locked_until  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, account)
);

-- Per-tenant secret for pseudonymizing personal data in audit rows, encrypted with the
-- master key. Destroying it (erasure) unlinks audit rows from people; the chain still
-- verifies because hashes cover the pseudonyms, not the people.
CREATE TABLE tenant_secrets (
    tenant_id          uuid PRIMARY KEY REFERENCES tenants (id),
    pseudonym_key_enc  bytea,
    master_kid         text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    destroyed_at       timestamptz
);

SELECT docket_enable_tenant_rls('refresh_tokens');
SELECT docket_enable_tenant_rls('api_keys');
SELECT docket_enable_tenant_rls('login_throttle');
SELECT docket_enable_tenant_rls('tenant_secrets');

-- ---------------------------------------------------------------- privileges
GRANT SELECT, INSERT ON signing_keys TO docket_app;
GRANT SELECT, INSERT ON platform_audit_events TO docket_app;
GRANT SELECT, INSERT, UPDATE ON refresh_tokens, api_keys, login_throttle TO docket_app;
GRANT SELECT, INSERT ON tenant_secrets TO docket_app;

GRANT SELECT, INSERT, UPDATE ON operators, signing_keys TO docket_control;
GRANT SELECT, INSERT ON platform_audit_events TO docket_control;
GRANT SELECT, INSERT, UPDATE, DELETE ON refresh_tokens, api_keys, login_throttle, tenant_secrets TO docket_control;
