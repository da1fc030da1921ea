-- Generative answers (issue 23). A query records the mode it was asked in (the request's,
-- or the tenant's default when it applies) and the mode that produced its answer:
-- `extractive`, `generative`, or `extractive_fallback` when a generative question was
-- answered by quoting instead (the model failed, declined, too little of what it wrote was
-- grounded, a cited document vanished, or plan or consent changed meanwhile:
-- `fallback_code` says which). The API calls these `requested_mode` and `mode`. The model's own token
-- counts are kept apart from the retrieval tokens, so the ledger, quotas and invoices see
-- them as their own kinds (`llm_tokens_in`, `llm_tokens_out`).
ALTER TABLE queries
    ADD COLUMN mode text NOT NULL DEFAULT 'extractive' CHECK (mode IN ('extractive', 'generative')),
    ADD COLUMN answer_mode text CHECK (answer_mode IN ('extractive', 'generative', 'extractive_fallback')),
    ADD COLUMN fallback_code text,
    ADD COLUMN notices text[] NOT NULL DEFAULT '{}',
    ADD COLUMN llm_tokens_in integer,
    ADD COLUMN llm_tokens_out integer,
    ADD COLUMN grounding jsonb;

-- Every answer before this migration was extractive: said so, so `mode` in the API is null
-- only for questions not answered (queued, running, failed).
UPDATE queries SET answer_mode = 'extractive' WHERE status IN ('answered', 'no_answer');

-- `/metrics` counts fallbacks by code across tenants (control role) without reading every
-- query.
CREATE INDEX queries_fallbacks ON queries (fallback_code) WHERE fallback_code IS NOT NULL;

-- The tenant's default for questions that do not name a mode (owners change it).
ALTER TABLE tenants
    ADD COLUMN default_answer_mode text NOT NULL DEFAULT 'extractive'
        CHECK (default_answer_mode IN ('extractive', 'generative'));
GRANT UPDATE (default_answer_mode) ON tenants TO docket_app;
