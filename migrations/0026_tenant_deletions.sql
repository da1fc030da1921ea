-- Whole-tenant deletion (issue 20): requested by an owner (confirmed with a one-time code)
-- or an operator, held for a grace period while the tenant is suspended and the request
-- can be cancelled, then swept from every store; the tenant's keys are destroyed last.
--
-- * deletions: new states `awaiting_confirmation` (an owner asked; the code was shown once,
--   only its SHA-256 is kept), `scheduled` (confirmed; `grace_ends_at` is when the calendar
--   queues the sweep) and `cancelled`. `tenant_status_before` is what a cancel restores.
--   `certificate_token_sha256`: the requester's credential for fetching the certificate
--   after the tenant (and so every one of its credentials) is gone. `own_task_forgotten_at`:
--   when the deletion's own finished `delete` task (it names the tenant) left the queue.
-- * tenants: `deleted_at`, and `slug_reserved_until`: the row stays (invoices, the ledger and
--   the audit chain name it) and keeps its slug until then; a tenant created with the slug
--   afterwards renames the old row's slug (`tenants::create`).

ALTER TABLE deletions DROP CONSTRAINT deletions_status_check;
ALTER TABLE deletions ADD CONSTRAINT deletions_status_check
  CHECK (status IN ('awaiting_confirmation', 'scheduled', 'queued', 'running', 'done', 'residue_found',
                    'failed', 'cancelled'));
ALTER TABLE deletions
  ADD COLUMN confirmation_sha256       text,
  ADD COLUMN confirm_before            timestamptz,
  ADD COLUMN grace_ends_at             timestamptz,
  ADD COLUMN tenant_status_before      text CHECK (tenant_status_before IN ('active', 'suspended')),
  ADD COLUMN certificate_token_sha256  text,
  ADD COLUMN reason                    text,
  ADD COLUMN own_task_forgotten_at     timestamptz;
-- One unfinished deletion per subject, the waiting states included (a tenant is deleted once).
DROP INDEX deletions_one_pending;
CREATE UNIQUE INDEX deletions_one_pending ON deletions (tenant_id, target_id)
  WHERE status IN ('awaiting_confirmation', 'scheduled', 'queued', 'running');
CREATE INDEX deletions_due ON deletions (grace_ends_at) WHERE status = 'scheduled';

ALTER TABLE tenants
  ADD COLUMN deleted_at           timestamptz,
  ADD COLUMN slug_reserved_until  timestamptz;

-- The service role moves its own tenant through deletion, and only as its deletion records
-- allow: into `deleting` while a tenant deletion is scheduled or under way, back to the
-- status it had when that deletion is cancelled, to `deleted` once it is done. It has no
-- other right on `tenants.status` (suspension stays an operator's act).
CREATE FUNCTION docket_tenant_deletion_state(next text, reserve_days integer DEFAULT 0) RETURNS text
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  t    uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
  prev text;
BEGIN
  IF t IS NULL THEN
    RAISE EXCEPTION 'docket_tenant_deletion_state needs a tenant scope';
  END IF;
  SELECT status INTO prev FROM tenants WHERE id = t FOR UPDATE;
  IF next = 'deleting' AND prev IN ('active', 'suspended', 'deleting') AND EXISTS (
       SELECT 1 FROM deletions WHERE tenant_id = t AND scope = 'tenant'
         AND status IN ('scheduled', 'queued', 'running')) THEN
    UPDATE tenants SET status = 'deleting', updated_at = now() WHERE id = t;
  ELSIF prev = 'deleting' AND next IN ('active', 'suspended') AND NOT EXISTS (
       SELECT 1 FROM deletions WHERE tenant_id = t AND scope = 'tenant'
         AND status IN ('scheduled', 'queued', 'running')) AND next = (
       SELECT tenant_status_before FROM deletions WHERE tenant_id = t AND scope = 'tenant'
         AND status = 'cancelled' ORDER BY finished_at DESC LIMIT 1) THEN
    UPDATE tenants SET status = next, updated_at = now() WHERE id = t;
  ELSIF prev = 'deleting' AND next = 'deleted' AND EXISTS (
       SELECT 1 FROM deletions WHERE tenant_id = t AND scope = 'tenant' AND status = 'done') THEN
    UPDATE tenants SET status = 'deleted', deleted_at = now(),
           slug_reserved_until = now() + make_interval(days => reserve_days), updated_at = now()
     WHERE id = t;
  ELSE
    RAISE EXCEPTION 'tenant % cannot go from % to % (no matching tenant deletion)', t, prev, next;
  END IF;
  RETURN prev;
END $$;
REVOKE ALL ON FUNCTION docket_tenant_deletion_state(text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION docket_tenant_deletion_state(text, integer) TO docket_app;

-- What the whole-tenant sweep removes (in the tenant's scope, under row-level security):
-- every tenant table but the retained ones (the audit chain, the usage ledger, invoices
-- and their history, the deletions). The sweep is driven by the catalog, so a table added
-- later without this grant makes the sweep fail loudly rather than be skipped; a test
-- checks every non-retained tenant table is deletable.
GRANT DELETE ON api_keys, exports, import_failures, imports, queries, users, vector_placements
  TO docket_app;
-- Crypto-shredding: the tenant's sealed keys are set to NULL and the row marked destroyed.
GRANT UPDATE (pseudonym_key_enc, data_key_enc, destroyed_at) ON tenant_secrets TO docket_app;
