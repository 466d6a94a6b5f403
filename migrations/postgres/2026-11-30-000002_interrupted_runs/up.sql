-- A run stopped by SIGTERM or SIGINT at a safe point (rolled back, its lock released) is `interrupted`.
ALTER TABLE import_runs DROP CONSTRAINT import_runs_status_known;
ALTER TABLE import_runs ADD CONSTRAINT import_runs_status_known
    CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned', 'interrupted'));
COMMENT ON COLUMN import_runs.status IS 'running; succeeded; failed (error holds why; nothing of the run was kept); abandoned (the process was killed or crashed: marked by the next run of the system); interrupted (SIGTERM or SIGINT: stopped at a safe point and rolled back).';
