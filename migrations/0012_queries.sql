-- Questions and their answers (issue 7). The question text lives here, in the tenant's
-- own row, never in the audit trail. `citations` is the filtered list the API returns.
CREATE TABLE queries (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    asked_by        uuid REFERENCES users (id),
    actor           text NOT NULL,
    question        text NOT NULL CHECK (length(question) BETWEEN 1 AND 4000),
    document_ids    uuid[] NOT NULL DEFAULT '{}',
    top_k_applied   integer NOT NULL CHECK (top_k_applied BETWEEN 1 AND 100),
    top_k_clamped   boolean NOT NULL DEFAULT false,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'answered', 'no_answer', 'failed')),
    answer          text,
    citations       jsonb NOT NULL DEFAULT '[]'::jsonb,
    tokens_in       integer,
    tokens_out      integer,
    latency_ms      integer,
    attempts        integer NOT NULL DEFAULT 0,
    error_code      text,
    error_message   text,
    flags           text[] NOT NULL DEFAULT '{}',
    request_id      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX queries_history ON queries (tenant_id, created_at DESC, id DESC);
SELECT docket_enable_tenant_rls('queries');
GRANT SELECT, INSERT, UPDATE ON queries TO docket_app;
GRANT SELECT, DELETE ON queries TO docket_control;
