-- Vectors already computed for a tenant, by chunk text hash: retries and boilerplate that
-- repeats across contracts are never embedded twice. A derived cache (the per-document
-- vector objects in storage are what indexing reads).
CREATE TABLE embedding_cache (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    sha256      text NOT NULL,
    model       text NOT NULL,
    vector      bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, model, sha256)
);
SELECT docket_enable_tenant_rls('embedding_cache');
GRANT SELECT, INSERT, DELETE ON embedding_cache TO docket_app, docket_control;
