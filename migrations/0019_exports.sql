-- Data-portability exports (issue 19): everything a tenant owns, written to its own bucket
-- as a package with a signed manifest.
--
-- * exports: one row per export; `destination` holds where (never secrets); the write
--   credentials are sealed under the master key, bound to the export (only the workers,
--   holding the master key, open them; no endpoint returns them), and erased (NULL) when
--   the export ends. `snapshot_at` / `audit_seq` fix what the package holds: rows
--   added after the export started are not half-included.
-- * export_files: the files already written (path, size, SHA-256): a resumed export skips
--   them, and the manifest is built from them.

CREATE TABLE exports (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    destination    jsonb NOT NULL,
    credentials    bytea,
    status         text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    snapshot_at    timestamptz,
    audit_seq      bigint,
    files_total    integer NOT NULL DEFAULT 0,
    files_done     integer NOT NULL DEFAULT 0,
    bytes_done     bigint NOT NULL DEFAULT 0,
    attempts       integer NOT NULL DEFAULT 0,
    manifest_sha256 text,
    error_code     text,
    error_message  text,
    requested_by   text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    UNIQUE (id, tenant_id)
);
CREATE INDEX exports_tenant_created ON exports (tenant_id, created_at DESC);
SELECT docket_enable_tenant_rls('exports');

CREATE TABLE export_files (
    tenant_id  uuid NOT NULL,
    export_id  uuid NOT NULL,
    path       text NOT NULL,
    bytes      bigint NOT NULL CHECK (bytes >= 0),
    sha256     text NOT NULL,
    -- JSONL files: their lines (the manifest's counts are the sums, so they match the files).
    rows       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (export_id, path),
    FOREIGN KEY (export_id, tenant_id) REFERENCES exports (id, tenant_id)
);
SELECT docket_enable_tenant_rls('export_files');

GRANT SELECT, INSERT, UPDATE ON exports TO docket_app;
GRANT SELECT, INSERT ON export_files TO docket_app;
