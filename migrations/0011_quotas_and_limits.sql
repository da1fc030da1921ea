-- The rest of a plan's entitlements (issue 6): a monthly token quota (NULL: unlimited), the
-- overage price per 1,000 tokens past it (NULL: the quota is a hard stop, requests are
-- refused), the largest top_k a question may ask for, storage and single-upload limits.
ALTER TABLE plans
  ADD COLUMN monthly_token_quota  bigint CHECK (monthly_token_quota IS NULL OR monthly_token_quota >= 0),
  ADD COLUMN overage_cents_per_1k numeric(10, 4) CHECK (overage_cents_per_1k IS NULL OR overage_cents_per_1k >= 0),
  ADD COLUMN max_top_k            integer NOT NULL DEFAULT 10 CHECK (max_top_k BETWEEN 1 AND 100),
  ADD COLUMN max_storage_bytes    bigint CHECK (max_storage_bytes IS NULL OR max_storage_bytes >= 0),
  ADD COLUMN max_upload_bytes     bigint NOT NULL DEFAULT 104857600 CHECK (max_upload_bytes > 0);
UPDATE plans SET
  monthly_token_quota = CASE id WHEN 'free' THEN 200000 WHEN 'team' THEN 5000000 WHEN 'business' THEN 50000000 ELSE NULL END,
  overage_cents_per_1k = CASE id WHEN 'free' THEN NULL WHEN 'team' THEN 0.2 WHEN 'business' THEN 0.1 ELSE 0.05 END,
  max_top_k = CASE id WHEN 'free' THEN 5 WHEN 'team' THEN 10 WHEN 'business' THEN 20 ELSE 50 END,
  max_storage_bytes = CASE id WHEN 'free' THEN 104857600 WHEN 'team' THEN 10737418240
                              WHEN 'business' THEN 536870912000 ELSE NULL END,
  max_upload_bytes = CASE id WHEN 'free' THEN 10485760 WHEN 'team' THEN 52428800 ELSE 104857600 END;

-- The tenant's input-safety policy: prompt-injection patterns in a question are always
-- flagged in the audit trail; with this set they are also refused.
ALTER TABLE tenants ADD COLUMN refuse_flagged_input boolean NOT NULL DEFAULT false;

-- Monthly totals of the ledger, kept by a trigger in the same transaction as each ledger row
-- (so they can never disagree with it, and a duplicate that the idempotency key rejects
-- adds nothing). The quota check reads one row instead of summing a month of events;
-- `docket_rebuild_usage_monthly` recomputes it from the ledger, which stays the truth.
CREATE TABLE usage_monthly (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    month      date NOT NULL,
    kind       text NOT NULL,
    quantity   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, month, kind)
);
SELECT docket_enable_tenant_rls('usage_monthly');
GRANT SELECT, INSERT, UPDATE ON usage_monthly TO docket_app, docket_control;

CREATE FUNCTION docket_usage_monthly_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO usage_monthly (tenant_id, month, kind, quantity)
  VALUES (NEW.tenant_id, date_trunc('month', NEW.occurred_at AT TIME ZONE 'UTC')::date, NEW.kind, NEW.quantity)
  ON CONFLICT (tenant_id, month, kind) DO UPDATE SET quantity = usage_monthly.quantity + EXCLUDED.quantity;
  RETURN NULL;
END $$;
CREATE TRIGGER usage_events_monthly AFTER INSERT ON usage_events
  FOR EACH ROW EXECUTE FUNCTION docket_usage_monthly_add();

-- Recomputes one tenant's monthly totals from the ledger (run inside that tenant's scope).
CREATE FUNCTION docket_rebuild_usage_monthly(t uuid) RETURNS void LANGUAGE sql AS $$
  DELETE FROM usage_monthly WHERE tenant_id = t;
  INSERT INTO usage_monthly (tenant_id, month, kind, quantity)
  SELECT tenant_id, date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date, kind, sum(quantity)
  FROM usage_events WHERE tenant_id = t GROUP BY 1, 2, 3;
$$;
GRANT DELETE ON usage_monthly TO docket_app, docket_control;

-- Bring existing ledgers in.
INSERT INTO usage_monthly (tenant_id, month, kind, quantity)
SELECT tenant_id, date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date, kind, sum(quantity)
FROM usage_events GROUP BY 1, 2, 3;

-- Owners set their own safety policy (only this column; the rest of the row is operators').
GRANT UPDATE (refuse_flagged_input, updated_at) ON tenants TO docket_app;
