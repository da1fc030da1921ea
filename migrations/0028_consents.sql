-- Consent records (issue 21): a tenant's decisions for named processing purposes. One row
-- per decision; the current state of a purpose is its latest row. Never edited in place:
-- no role may UPDATE (grant withheld, and the trigger refuses even the owner). DELETE is
-- granted for the whole-tenant deletion sweep only; every decision is also an audit event,
-- and the audit chain is what outlives the tenant as the proof.
CREATE TABLE consents (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             uuid NOT NULL UNIQUE,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    purpose        text NOT NULL CHECK (purpose IN ('external_llm_processing', 'usage_analytics')),
    granted        boolean NOT NULL,
    terms_version  text NOT NULL CHECK (terms_version ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    decided_by     text NOT NULL,
    decided_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX consents_current ON consents (tenant_id, purpose, seq DESC);
SELECT docket_enable_tenant_rls('consents');

CREATE FUNCTION docket_consent_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'a consent record is never edited; record a new decision instead'
    USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER consents_immutable BEFORE UPDATE ON consents
  FOR EACH ROW EXECUTE FUNCTION docket_consent_immutable();

GRANT SELECT, INSERT, DELETE ON consents TO docket_app;
GRANT SELECT ON consents TO docket_control;
