-- With a Qdrant server every worker holds the vectors, and each used to re-index every
-- document at start-up. Now one worker at a time checks the index against the database
-- (an advisory lock), and a check finished recently is not repeated by the others of the
-- same roll-out. One row; no tenant data.
CREATE TABLE vector_reconciliations (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    finished_at  timestamptz NOT NULL,
    worker       text NOT NULL
);
GRANT SELECT, INSERT, UPDATE ON vector_reconciliations TO docket_app;
