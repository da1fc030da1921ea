-- Corrections (issue 18): an operator's adjustment (a credit, negative, or a charge) waits
-- for the tenant's next invoice, where it becomes an `adjustment` line; a finalized invoice
-- is never edited. An invoice whose credits exceed its charges has a negative total: it is
-- a credit note.
CREATE TABLE invoice_adjustments (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id),
    amount_cents        bigint NOT NULL CHECK (amount_cents <> 0),
    description         text NOT NULL CHECK (length(description) BETWEEN 1 AND 200),
    reason              text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    applied_invoice_id  uuid,
    applied_at          timestamptz
);
CREATE INDEX invoice_adjustments_pending ON invoice_adjustments (tenant_id) WHERE applied_invoice_id IS NULL;
SELECT docket_enable_tenant_rls('invoice_adjustments');
GRANT SELECT, INSERT ON invoice_adjustments TO docket_app;
GRANT UPDATE (applied_invoice_id, applied_at) ON invoice_adjustments TO docket_app;

ALTER TABLE invoices DROP CONSTRAINT invoices_total_cents_check;
