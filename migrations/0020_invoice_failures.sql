-- Billing months that cannot be computed (plans of two currencies, an unknown plan): kept
-- per tenant and month so the calendar stops re-running them and operators see them. An
-- operator's run for the tenant tries again; success removes the row.
CREATE TABLE invoice_failures (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    period      date NOT NULL CHECK (period = date_trunc('month', period)::date),
    code        text NOT NULL,
    message     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, period)
);
SELECT docket_enable_tenant_rls('invoice_failures');
GRANT SELECT, INSERT, UPDATE, DELETE ON invoice_failures TO docket_app;
