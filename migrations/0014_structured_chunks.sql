-- Structure-aware chunks and the lexical half of hybrid retrieval.
--
-- `heading`: the section headings a chunk belongs to but does not start with (carried into
-- its embedding and its lexemes). `lexemes`: the chunk's words for BM25-style ranking,
-- derived from its own row, so it is tenant data exactly as the chunk is (same RLS policy,
-- same deletion, same export) and is rewritten whenever a chunk is. The index leads with
-- the tenant, so document frequencies and matches are counted inside one tenant only.

CREATE EXTENSION IF NOT EXISTS btree_gin;

ALTER TABLE chunks ADD COLUMN heading text NOT NULL DEFAULT '';
ALTER TABLE chunks ADD COLUMN lexemes tsvector
  GENERATED ALWAYS AS (to_tsvector('english', heading || ' ' || text)) STORED;
CREATE INDEX chunks_tenant_lexemes ON chunks USING gin (tenant_id, lexemes);

-- Which chunking rules a document's chunks were made by (`docketctl reindex` moves older
-- ones to the current rules); 1: fixed-size token windows, before this migration.
ALTER TABLE documents ADD COLUMN chunking_version integer NOT NULL DEFAULT 1;
