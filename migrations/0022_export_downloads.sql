-- Download packages (issue 19): an export kept in Docket's own storage, encrypted under
-- the tenant's prefix with its data key, fetched through a short-lived signed link.
--
-- * kind: where the package goes: the customer's bucket, or Docket's storage.
-- * package_expires_at: when a download package is deleted (set when it is done).
-- * package_deleted_at: when its objects were deleted (expired, or the export failed or
--   was cancelled); a link to it is refused from then on.

ALTER TABLE exports
    ADD COLUMN kind text NOT NULL DEFAULT 'bucket' CHECK (kind IN ('bucket', 'download')),
    ADD COLUMN package_expires_at timestamptz,
    ADD COLUMN package_deleted_at timestamptz;

-- The purge sweep looks for download packages that are due.
CREATE INDEX exports_download_packages ON exports (package_expires_at)
    WHERE kind = 'download' AND package_deleted_at IS NULL;
