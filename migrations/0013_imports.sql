-- Bulk imports (issue 8). An import's documents wait here, in PostgreSQL, until the feeder
-- admits them into the job queues in bounded, per-tenant-capped slices: the queue never
-- holds a whole import (apalis-redis fails past ~8,000 due jobs in one queue).

-- How many of a tenant's imported documents may be in the pipeline at once (its share of
-- the workers), and how large one import may be.
ALTER TABLE plans
  ADD COLUMN import_concurrency  integer NOT NULL DEFAULT 2 CHECK (import_concurrency BETWEEN 1 AND 1000),
  ADD COLUMN max_import_entries  integer NOT NULL DEFAULT 50000 CHECK (max_import_entries BETWEEN 1 AND 1000000),
  ADD COLUMN max_import_bytes    bigint NOT NULL DEFAULT 4294967296 CHECK (max_import_bytes > 0);
UPDATE plans SET import_concurrency = CASE id WHEN 'business' THEN 8 WHEN 'enterprise' THEN 16 ELSE 2 END;

CREATE TABLE imports (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL REFERENCES tenants (id),
    source               text NOT NULL CHECK (source IN ('zip', 's3', 'folder')),
    -- unpacking: entries are being turned into documents; running: all entries known, the
    -- feeder is working through them; then done, cancelled or failed (the source itself
    -- could not be read).
    status               text NOT NULL DEFAULT 'unpacking'
                         CHECK (status IN ('unpacking', 'running', 'done', 'cancelled', 'failed')),
    -- Where it reads from, without secrets (bucket, prefix, endpoint; or the archive name).
    source_detail        jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- S3 credentials, sealed under the master key with the import id as associated data;
    -- erased as soon as the listing is finished.
    sealed_credentials   bytea,
    -- Entries found so far (for a zip: known from its central directory at once).
    total                integer NOT NULL DEFAULT 0 CHECK (total >= 0),
    -- Entries turned into documents, duplicates or failures so far; where a restarted
    -- unpack resumes (zip: entry index; S3: `cursor`, the last key done).
    unpacked             integer NOT NULL DEFAULT 0 CHECK (unpacked >= 0),
    cursor               text,
    duplicates           integer NOT NULL DEFAULT 0 CHECK (duplicates >= 0),
    unpack_attempts      integer NOT NULL DEFAULT 0,
    error_code           text,
    error_message        text,
    actor                text NOT NULL,
    created_by           uuid,
    request_id           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    started_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX imports_tenant_created ON imports (tenant_id, created_at DESC);
SELECT docket_enable_tenant_rls('imports');
GRANT SELECT, INSERT, UPDATE ON imports TO docket_app;
GRANT SELECT, INSERT, UPDATE ON imports TO docket_control;

-- Entries that never became documents (unsupported type, too large, empty, unreadable).
CREATE TABLE import_failures (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    import_id   uuid NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    entry       integer NOT NULL,
    filename    text NOT NULL,
    code        text NOT NULL,
    message     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (import_id, entry)
);
SELECT docket_enable_tenant_rls('import_failures');
GRANT SELECT, INSERT ON import_failures TO docket_app;
GRANT SELECT, INSERT ON import_failures TO docket_control;

-- An imported document: `feed_state` waiting (in PostgreSQL only) → admitted (its parse
-- job row exists, the push may not have happened) → pushed. Interactive uploads leave it
-- NULL: they go straight to the priority lane.
ALTER TABLE documents
  ADD COLUMN import_id    uuid REFERENCES imports (id),
  ADD COLUMN import_entry integer,
  ADD COLUMN feed_state   text CHECK (feed_state IN ('waiting', 'admitted', 'pushed')),
  ADD COLUMN admitted_at  timestamptz;
ALTER TABLE documents DROP CONSTRAINT documents_status_check;
ALTER TABLE documents ADD CONSTRAINT documents_status_check
  CHECK (status IN ('queued', 'processing', 'ready', 'failed', 'cancelled'));
-- The feeder's two questions: who has documents waiting (oldest first), and how many of
-- each tenant's are in the pipeline.
CREATE INDEX documents_feed_waiting ON documents (tenant_id, created_at, id) WHERE feed_state = 'waiting';
CREATE INDEX documents_feed_in_flight ON documents (tenant_id)
  WHERE feed_state IN ('admitted', 'pushed') AND status IN ('queued', 'processing');
CREATE INDEX documents_import ON documents (import_id, status) WHERE import_id IS NOT NULL;

-- A cancelled document never ran: it must not answer for its content as a duplicate (the
-- same file uploaded or imported again is processed), so the per-tenant content index
-- leaves it out.
DROP INDEX documents_tenant_sha;
CREATE UNIQUE INDEX documents_tenant_sha ON documents (tenant_id, sha256) WHERE status <> 'cancelled';
