-- Back to the statuses before the guard: a refused run wrote nothing, as a failed one.
UPDATE import_runs SET status = 'failed' WHERE status = 'refused';
ALTER TABLE import_runs DROP COLUMN mass_delete_override;
ALTER TABLE import_runs DROP CONSTRAINT import_runs_status_known;
ALTER TABLE import_runs ADD CONSTRAINT import_runs_status_known
    CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned', 'interrupted'));
COMMENT ON COLUMN import_runs.status IS 'running; succeeded; failed (error holds why; nothing of the run was kept); abandoned (the process was killed or crashed: marked by the next run of the system); interrupted (SIGTERM or SIGINT: stopped at a safe point and rolled back).';
