-- Anchored audit (issue 21): the scheduler signs every chain's head and stores the
-- checkpoint in object storage (platform/audit-checkpoints/…), outside the database's
-- reach. This table only remembers the last checkpoint per chain, so an unchanged head is
-- not signed again; verification reads the signed objects, never this table. Platform
-- data (the chain column is `platform` or a tenant id; no tenant content), read and written
-- by the control role only.
CREATE TABLE audit_checkpoint_heads (
    chain       text PRIMARY KEY,
    seq         bigint NOT NULL,
    hash        text NOT NULL,
    taken_at    timestamptz NOT NULL,
    object_key  text NOT NULL
);
GRANT SELECT, INSERT, UPDATE ON audit_checkpoint_heads TO docket_control;
