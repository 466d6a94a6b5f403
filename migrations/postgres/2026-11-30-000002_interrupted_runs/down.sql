UPDATE import_runs SET status = 'failed' WHERE status = 'interrupted';
ALTER TABLE import_runs DROP CONSTRAINT import_runs_status_known;
ALTER TABLE import_runs ADD CONSTRAINT import_runs_status_known
    CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned'));
COMMENT ON COLUMN import_runs.status IS NULL;
