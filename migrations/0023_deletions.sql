-- Deletions (issue 20): a document (and later a user's personal data, the whole tenant)
-- removed from every store, checked by a residue scan, and proved by a signed certificate.
--
-- * documents.status 'deleting': set the moment a deletion is requested, so the document
--   stops answering at once (only `ready` documents are cited) and no stage starts on it
--   again; the row itself goes at the end of the sweep. A deleting document no longer
--   holds its content hash: the same file uploaded meanwhile is a new document.
-- * deletions: one row per deletion. `target_id` is the subject while the sweep runs and
--   is cleared when it ends (the certificate names it only hashed, as `target_sha256`);
--   `samples` are SHA-256s of chunks the residue scan looks for again; `swept` the count
--   removed per store, written once per store (a resumed sweep keeps the first count);
--   `certificate` the signed certificate exactly as issued.

ALTER TABLE documents DROP CONSTRAINT documents_status_check;
ALTER TABLE documents ADD CONSTRAINT documents_status_check
  CHECK (status IN ('queued', 'processing', 'ready', 'failed', 'cancelled', 'deleting'));
DROP INDEX documents_tenant_sha;
CREATE UNIQUE INDEX documents_tenant_sha ON documents (tenant_id, sha256)
  WHERE status NOT IN ('cancelled', 'deleting');

CREATE TABLE deletions (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id),
    scope               text NOT NULL CHECK (scope IN ('document', 'user', 'tenant')),
    target_id           uuid,
    target_sha256       text NOT NULL,
    status              text NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'running', 'done', 'residue_found', 'failed')),
    requested_by        text NOT NULL,
    samples             text[] NOT NULL DEFAULT '{}',
    swept               jsonb NOT NULL DEFAULT '{}'::jsonb,
    residue             jsonb,
    certificate         text,
    certificate_sha256  text,
    attempts            integer NOT NULL DEFAULT 0,
    error_code          text,
    error_message       text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deletions_tenant_created ON deletions (tenant_id, created_at DESC);
CREATE INDEX deletions_unfinished ON deletions (updated_at) WHERE status IN ('queued', 'running');
-- One deletion at a time per subject.
CREATE UNIQUE INDEX deletions_one_pending ON deletions (tenant_id, target_id) WHERE status IN ('queued', 'running');
SELECT docket_enable_tenant_rls('deletions');

GRANT SELECT, INSERT, UPDATE ON deletions TO docket_app;
GRANT SELECT, INSERT, UPDATE ON deletions TO docket_control;
-- What the sweep removes (migration 0017 withheld DELETE until deletion existed): the
-- document's row, its job records, cached vectors only it used, its file records in
-- finished exports. Chunks were deletable already (re-chunking).
GRANT DELETE ON documents, jobs, embedding_cache, export_files TO docket_app;
