-- Quarterly access reviews (issue 21). One review per tenant and quarter (UTC), made by the
-- `access_review` job from the membership tables and the audit trail: the report is stored
-- signed (`report` is the signed document exactly as issued; it names accounts by id only,
-- and its PDF is rendered from it when asked for), then an owner decides every flagged
-- finding and completes it.
--
-- * status: queued (row made, job pushed) → running → open (report issued, awaiting the
--   owner's decisions) → completed; failed records why the job gave up (the calendar and
--   `docketctl access-review run` queue it again).
-- * access_review_decisions: one decision per finding, never edited (a decision applied
--   — a user disabled, a key revoked — cannot be taken back by editing its record).
CREATE TABLE access_reviews (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    quarter         text NOT NULL CHECK (quarter ~ '^[0-9]{4}Q[1-4]$'),
    period_start    timestamptz NOT NULL,
    period_end      timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'open', 'completed', 'failed')),
    requested_by    text NOT NULL,
    report          text,
    report_sha256   text,
    findings        integer,
    attempts        integer NOT NULL DEFAULT 0,
    error_message   text,
    completed_by    text,
    completed_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    issued_at       timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, quarter)
);
CREATE INDEX access_reviews_open ON access_reviews (issued_at) WHERE status = 'open';
SELECT docket_enable_tenant_rls('access_reviews');

-- An issued report is never replaced: its signature makes any change detectable, and this
-- makes it impossible short of disabling the trigger.
CREATE FUNCTION docket_access_review_report_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.report IS NOT NULL AND (NEW.report IS DISTINCT FROM OLD.report
                                 OR NEW.report_sha256 IS DISTINCT FROM OLD.report_sha256) THEN
    RAISE EXCEPTION 'an issued access review report is never changed'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER access_reviews_report_immutable BEFORE UPDATE ON access_reviews
  FOR EACH ROW EXECUTE FUNCTION docket_access_review_report_immutable();

CREATE TABLE access_review_decisions (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    review_id    uuid NOT NULL REFERENCES access_reviews (id),
    finding_id   text NOT NULL,
    decision     text NOT NULL CHECK (decision IN ('keep', 'revoke')),
    reason       text CHECK (reason IS NULL OR length(reason) BETWEEN 1 AND 1000),
    decided_by   text NOT NULL,
    decided_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (review_id, finding_id),
    CHECK (decision = 'revoke' OR reason IS NOT NULL)
);
SELECT docket_enable_tenant_rls('access_review_decisions');
CREATE FUNCTION docket_access_review_decision_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'an access review decision is never edited'
    USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER access_review_decisions_immutable BEFORE UPDATE ON access_review_decisions
  FOR EACH ROW EXECUTE FUNCTION docket_access_review_decision_immutable();

GRANT SELECT, INSERT, UPDATE, DELETE ON access_reviews TO docket_app;
GRANT SELECT, INSERT, DELETE ON access_review_decisions TO docket_app;
-- The calendar makes the rows of due quarters for every tenant; /ops lists overdue ones.
GRANT SELECT, INSERT, UPDATE ON access_reviews TO docket_control;
GRANT SELECT ON access_review_decisions TO docket_control;

-- A quarter's events are read by time (the report, and the audit list's from/to filter),
-- and every account's last sign-in from the sign-ins alone, however old the chain. (Built
-- in the migration's transaction: writes to the audit table wait while it builds.)
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, occurred_at);
CREATE INDEX audit_events_sign_ins ON audit_events (tenant_id, actor_id, occurred_at)
  WHERE action = 'auth.login' AND outcome = 'allowed';
