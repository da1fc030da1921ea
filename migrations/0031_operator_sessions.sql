-- Operator panel sessions (issue 22). The browser holds a random token in an HttpOnly
-- cookie; only its SHA-256 is stored, so a copy of this table signs nobody in. Each session
-- has its own CSRF token, checked on every state-changing form. A session ends at sign-out
-- (ended_at), after an idle period, or at its absolute expiry, whichever comes first; the
-- operator being disabled ends it too (checked on every request). Control plane only:
-- operators belong to no tenant.
CREATE TABLE operator_sessions (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash    text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    operator_id   uuid NOT NULL REFERENCES operators (id),
    csrf_token    text NOT NULL CHECK (length(csrf_token) >= 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    ended_at      timestamptz
);
CREATE INDEX operator_sessions_operator ON operator_sessions (operator_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON operator_sessions TO docket_control;
