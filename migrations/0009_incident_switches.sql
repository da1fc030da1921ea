-- Operators' incident switches: an endpoint class turned off for everyone or for one tenant,
-- with a reason and an optional expiry. Kept after being lifted (history). Not tenant data
-- (operators own it), so no RLS; `target_tenant` is NULL for a global switch.
CREATE TABLE incident_switches (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    class          text NOT NULL CHECK (class IN ('query', 'upload', 'read', 'admin')),
    target_tenant  uuid REFERENCES tenants (id),
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz,
    lifted_at      timestamptz
);
CREATE INDEX incident_switches_active ON incident_switches (class) WHERE lifted_at IS NULL;
GRANT SELECT ON incident_switches TO docket_app;
GRANT SELECT, INSERT, UPDATE ON incident_switches TO docket_control;
