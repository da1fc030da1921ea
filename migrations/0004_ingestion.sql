-- Ingestion: idempotent uploads, per-stage job records, chunks.

ALTER TABLE documents ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX documents_tenant_idempotency ON documents (tenant_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX documents_tenant_created ON documents (tenant_id, created_at DESC, id DESC);

-- One job row per (document, stage): re-enqueueing a stage reuses its row, so attempts
-- and timings accumulate where the API reads them.
ALTER TABLE jobs ADD COLUMN max_attempts integer NOT NULL DEFAULT 5;
CREATE UNIQUE INDEX jobs_tenant_target_kind ON jobs (tenant_id, target_id, kind);

CREATE TABLE chunks (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    document_id  uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal      integer NOT NULL CHECK (ordinal >= 0),
    text         text NOT NULL,
    page_start   integer NOT NULL,
    page_end     integer NOT NULL,
    token_count  integer NOT NULL,
    sha256       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (document_id, ordinal)
);
CREATE INDEX chunks_tenant_document ON chunks (tenant_id, document_id);
SELECT docket_enable_tenant_rls('chunks');

GRANT SELECT, INSERT, UPDATE, DELETE ON chunks TO docket_app, docket_control;
