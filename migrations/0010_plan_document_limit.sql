-- How many documents a tenant may keep, per plan (NULL: no limit).
ALTER TABLE plans ADD COLUMN max_documents bigint CHECK (max_documents IS NULL OR max_documents >= 0);
UPDATE plans SET max_documents = CASE id
  WHEN 'free' THEN 50 WHEN 'team' THEN 5000 WHEN 'business' THEN 100000 ELSE NULL END;
