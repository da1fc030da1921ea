-- Billing (issue 18): what a month costs each tenant, computed from the ledger once per
-- tenant and month and never edited afterwards.
--
-- * plans.currency: every amount of a plan is in integer minor units of this currency.
-- * plan_history / status_history: when each tenant's plan and status changed, kept by a
--   trigger on tenants in the same transaction as the change, so proration can never
--   disagree with what happened. Rows are only ever added.
-- * invoices / invoice_lines: one invoice per tenant and period (a unique key: however
--   often or concurrently a run repeats, there is one). A finalized invoice's money never
--   changes (trigger); what may change afterwards is its payment state and its Stripe
--   delivery state. Corrections belong on a later invoice (line kind `adjustment`), never
--   in an edit.
-- * billing_runs: the operator's record of each run (platform table, no tenant data).

ALTER TABLE plans ADD COLUMN currency text NOT NULL DEFAULT 'usd' CHECK (currency ~ '^[a-z]{3}$');

CREATE TABLE plan_history (
    id         bigserial PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    plan_id    text NOT NULL REFERENCES plans (id),
    from_ts    timestamptz NOT NULL
);
CREATE INDEX plan_history_tenant ON plan_history (tenant_id, from_ts);

CREATE TABLE status_history (
    id         bigserial PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    status     text NOT NULL CHECK (status IN ('active', 'suspended', 'deleting', 'deleted')),
    from_ts    timestamptz NOT NULL
);
CREATE INDEX status_history_tenant ON status_history (tenant_id, from_ts);

-- clock_timestamp(), not now(): two changes in one transaction keep their order.
CREATE FUNCTION docket_tenant_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.plan_id IS DISTINCT FROM OLD.plan_id THEN
    INSERT INTO plan_history (tenant_id, plan_id, from_ts) VALUES (NEW.id, NEW.plan_id, clock_timestamp());
  END IF;
  IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
    INSERT INTO status_history (tenant_id, status, from_ts) VALUES (NEW.id, NEW.status, clock_timestamp());
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER tenants_history AFTER INSERT OR UPDATE OF plan_id, status ON tenants
  FOR EACH ROW EXECUTE FUNCTION docket_tenant_history();

-- Existing tenants: their plan since creation; their status since creation, and a later
-- status since their last update (the best the old schema knows).
INSERT INTO plan_history (tenant_id, plan_id, from_ts) SELECT id, plan_id, created_at FROM tenants;
INSERT INTO status_history (tenant_id, status, from_ts) SELECT id, 'active', created_at FROM tenants;
INSERT INTO status_history (tenant_id, status, from_ts)
  SELECT id, status, greatest(updated_at, created_at + interval '1 microsecond') FROM tenants WHERE status <> 'active';
-- Row-level security only after the backfill: the owner running migrations has no
-- BYPASSRLS, and FORCEd policies would refuse its inserts (no tenant in scope).
SELECT docket_enable_tenant_rls('plan_history');
SELECT docket_enable_tenant_rls('status_history');

CREATE SEQUENCE invoice_numbers;

CREATE TABLE invoices (
    id                 uuid PRIMARY KEY,
    tenant_id          uuid NOT NULL REFERENCES tenants (id),
    -- The month billed (its first day).
    period             date NOT NULL CHECK (period = date_trunc('month', period)::date),
    number             text NOT NULL UNIQUE,
    plan_id            text NOT NULL,
    currency           text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    total_cents        bigint NOT NULL CHECK (total_cents >= 0),
    active_days        integer NOT NULL CHECK (active_days BETWEEN 0 AND 31),
    status             text NOT NULL DEFAULT 'finalized'
                       CHECK (status IN ('finalized', 'paid', 'payment_failed', 'void')),
    stripe_status      text NOT NULL DEFAULT 'not_configured'
                       CHECK (stripe_status IN ('not_configured', 'pending', 'retrying', 'pushed', 'failed')),
    stripe_attempts    integer NOT NULL DEFAULT 0,
    stripe_attempted_at timestamptz,
    stripe_error       text,
    stripe_customer_id text,
    stripe_invoice_id  text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    paid_at            timestamptz,
    UNIQUE (tenant_id, period),
    UNIQUE (id, tenant_id)
);
CREATE INDEX invoices_period ON invoices (period);
SELECT docket_enable_tenant_rls('invoices');

CREATE TABLE invoice_lines (
    tenant_id     uuid NOT NULL,
    invoice_id    uuid NOT NULL,
    ordinal       integer NOT NULL CHECK (ordinal >= 0),
    kind          text NOT NULL CHECK (kind IN ('base', 'usage', 'overage', 'adjustment')),
    description   text NOT NULL,
    quantity      bigint NOT NULL,
    unit          text NOT NULL,
    amount_cents  bigint NOT NULL,
    PRIMARY KEY (invoice_id, ordinal),
    -- A line belongs to an invoice of the same tenant.
    FOREIGN KEY (invoice_id, tenant_id) REFERENCES invoices (id, tenant_id)
);
SELECT docket_enable_tenant_rls('invoice_lines');

-- A finalized invoice is never edited: its money, period and number are fixed, its lines
-- are fixed, and neither is deleted. Payment and delivery state may move on.
CREATE FUNCTION docket_invoice_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'invoice_lines' THEN
    RAISE EXCEPTION 'invoice lines are immutable (corrections are adjustment lines on a later invoice)'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'invoices are never deleted' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF (NEW.id, NEW.tenant_id, NEW.period, NEW.number, NEW.plan_id, NEW.currency, NEW.total_cents,
      NEW.active_days, NEW.created_at)
     IS DISTINCT FROM
     (OLD.id, OLD.tenant_id, OLD.period, OLD.number, OLD.plan_id, OLD.currency, OLD.total_cents,
      OLD.active_days, OLD.created_at) THEN
    RAISE EXCEPTION 'a finalized invoice is never edited (corrections are adjustment lines on a later invoice)'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER invoices_immutable BEFORE UPDATE OR DELETE ON invoices
  FOR EACH ROW EXECUTE FUNCTION docket_invoice_immutable();
CREATE TRIGGER invoice_lines_immutable BEFORE UPDATE OR DELETE ON invoice_lines
  FOR EACH ROW EXECUTE FUNCTION docket_invoice_immutable();

-- Lines are written with their invoice, in the transaction that creates it (its created_at
-- is that transaction's now()); a line added to an existing invoice is refused. Neither
-- table can be truncated.
CREATE FUNCTION docket_invoice_line_with_invoice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM invoices WHERE id = NEW.invoice_id AND created_at = now()) THEN
    RAISE EXCEPTION 'lines are added only with their invoice (corrections are adjustment lines on a later invoice)'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER invoice_lines_with_invoice BEFORE INSERT ON invoice_lines
  FOR EACH ROW EXECUTE FUNCTION docket_invoice_line_with_invoice();
CREATE FUNCTION docket_invoice_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'invoices are never deleted' USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER invoices_no_truncate BEFORE TRUNCATE ON invoices
  FOR EACH STATEMENT EXECUTE FUNCTION docket_invoice_no_truncate();
CREATE TRIGGER invoice_lines_no_truncate BEFORE TRUNCATE ON invoice_lines
  FOR EACH STATEMENT EXECUTE FUNCTION docket_invoice_no_truncate();

-- The Stripe customer of each tenant (one, reused for every invoice).
CREATE TABLE stripe_customers (
    tenant_id    uuid PRIMARY KEY REFERENCES tenants (id),
    customer_id  text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);
SELECT docket_enable_tenant_rls('stripe_customers');

-- Stripe webhook events already handled (by Stripe's event id): a replay is refused.
CREATE TABLE stripe_events (
    id           text PRIMARY KEY,
    type         text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE billing_runs (
    id            uuid PRIMARY KEY,
    period        date NOT NULL,
    origin        text NOT NULL CHECK (origin IN ('schedule', 'operator')),
    only_tenant   uuid,
    dry_run       boolean NOT NULL,
    requested_by  text NOT NULL,
    status        text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'finished', 'failed')),
    tenants       integer NOT NULL DEFAULT 0,
    queued        integer NOT NULL DEFAULT 0,
    existing      integer NOT NULL DEFAULT 0,
    error         text,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX billing_runs_period ON billing_runs (period, started_at);

-- The service role: tenants' invoices inside their scope (the invoice job, the API); the
-- history is written by the trigger in whatever transaction changes a tenant.
GRANT SELECT, INSERT ON plan_history, status_history TO docket_app, docket_control;
GRANT USAGE ON SEQUENCE plan_history_id_seq, status_history_id_seq TO docket_app, docket_control;
GRANT SELECT, INSERT ON invoices, invoice_lines TO docket_app;
GRANT UPDATE (status, stripe_status, stripe_attempts, stripe_attempted_at, stripe_error,
              stripe_customer_id, stripe_invoice_id, paid_at) ON invoices TO docket_app;
GRANT SELECT, INSERT ON stripe_customers TO docket_app;
GRANT SELECT ON stripe_customers TO docket_control;
GRANT SELECT, INSERT ON stripe_events TO docket_control;
GRANT USAGE ON SEQUENCE invoice_numbers TO docket_app;
GRANT SELECT ON invoices, invoice_lines TO docket_control;
GRANT SELECT, INSERT, UPDATE ON billing_runs TO docket_control;
