-- An import's documents deleted since (issue 20): their rows are gone, so the import keeps
-- the count, and its progress report still adds up to its total.
ALTER TABLE imports ADD COLUMN deleted_documents integer NOT NULL DEFAULT 0 CHECK (deleted_documents >= 0);
