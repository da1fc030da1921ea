-- Per-tenant data keys for encryption at rest (envelope encryption): 32 random bytes per
-- tenant, sealed under the master key named by master_kid. Setting it to NULL (crypto-
-- shredding) makes every object of the tenant unrecoverable.
ALTER TABLE tenant_secrets ADD COLUMN data_key_enc bytea;
-- Tenants created before data keys existed get theirs on first use.
GRANT UPDATE (data_key_enc) ON tenant_secrets TO docket_app;
