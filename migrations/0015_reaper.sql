-- The reaper (issue 17): jobs whose queue entry vanished (Redis restarted without
-- persistence, a flushed database) are pushed again under the same task id, or failed.
--
-- `generation` counts how often a job row was queued afresh (a retry, a re-index): with the
-- job id it makes the queue's task id, so a re-push of the same generation is a no-op while
-- the queue still holds it, and a new generation is a new task.
ALTER TABLE jobs ADD COLUMN generation integer NOT NULL DEFAULT 0;
-- Re-pushes of a lost entry: capped, then the job fails with a readable error.
ALTER TABLE jobs ADD COLUMN repushes integer NOT NULL DEFAULT 0;
CREATE INDEX jobs_unfinished ON jobs (updated_at) WHERE status IN ('queued', 'running');

ALTER TABLE queries ADD COLUMN repushes integer NOT NULL DEFAULT 0;
CREATE INDEX queries_unfinished ON queries (created_at) WHERE status IN ('queued', 'running');

ALTER TABLE imports ADD COLUMN repushes integer NOT NULL DEFAULT 0;
