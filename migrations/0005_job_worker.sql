-- Which worker process runs (or last ran) a job: for operators chasing a stuck job, and for
-- the tests that kill a worker mid-job.
ALTER TABLE jobs ADD COLUMN worker text;
