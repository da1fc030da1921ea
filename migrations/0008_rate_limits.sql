-- Request rates per endpoint class, per plan (GCRA: a sustained rate per minute and a
-- burst). Editable rows, not constants: a plan change takes effect on the next request.
ALTER TABLE plans ADD COLUMN rate_limits jsonb NOT NULL DEFAULT '{}'::jsonb;
UPDATE plans SET rate_limits = CASE id
  WHEN 'free' THEN '{"query": {"per_minute": 10, "burst": 5}, "upload": {"per_minute": 10, "burst": 5},
                     "read": {"per_minute": 120, "burst": 30}, "admin": {"per_minute": 30, "burst": 10}}'
  WHEN 'team' THEN '{"query": {"per_minute": 60, "burst": 20}, "upload": {"per_minute": 120, "burst": 60},
                     "read": {"per_minute": 1200, "burst": 200}, "admin": {"per_minute": 300, "burst": 100}}'
  WHEN 'business' THEN '{"query": {"per_minute": 300, "burst": 60}, "upload": {"per_minute": 600, "burst": 200},
                         "read": {"per_minute": 3000, "burst": 500}, "admin": {"per_minute": 600, "burst": 200}}'
  ELSE '{"query": {"per_minute": 1200, "burst": 200}, "upload": {"per_minute": 2400, "burst": 500},
         "read": {"per_minute": 6000, "burst": 1000}, "admin": {"per_minute": 1200, "burst": 300}}'
END::jsonb;

-- An operator's temporary limit for one tenant and class; ignored once expired.
CREATE TABLE rate_overrides (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    class       text NOT NULL CHECK (class IN ('query', 'upload', 'read', 'admin')),
    per_minute  integer NOT NULL CHECK (per_minute > 0),
    burst       integer NOT NULL CHECK (burst > 0),
    expires_at  timestamptz NOT NULL,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, class)
);
SELECT docket_enable_tenant_rls('rate_overrides');
GRANT SELECT ON rate_overrides TO docket_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON rate_overrides TO docket_control;
