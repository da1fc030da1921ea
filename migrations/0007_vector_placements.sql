-- Where a tenant's vectors are (its tier as the vector store sees it). `tenants.isolation_tier`
-- is what an operator asked for; this row is what searches use. A tier move copies the
-- vectors into the new placement, then switches this row in one UPDATE, then purges the old
-- placement — so searches never see a half-filled placement.
CREATE TABLE vector_placements (
    tenant_id    uuid PRIMARY KEY REFERENCES tenants (id),
    tier         text NOT NULL CHECK (tier IN ('shared', 'dedicated', 'isolated')),
    switched_at  timestamptz NOT NULL DEFAULT now(),
    -- The placement a move left and has not purged yet (NULL when settled).
    moving_from  text CHECK (moving_from IN ('shared', 'dedicated', 'isolated'))
);
SELECT docket_enable_tenant_rls('vector_placements');
GRANT SELECT, INSERT, UPDATE, DELETE ON vector_placements TO docket_app, docket_control;
