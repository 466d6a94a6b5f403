-- The mass-delete guard (src/sync/guard.rs): a full sync that would delete most of its window, or that read
-- nothing for a window holding sessions, is refused and rolled back; its run is `refused`, with the numbers
-- in `error`. A sync let through by --allow-mass-delete says what it let through in mass_delete_override.
ALTER TABLE import_runs DROP CONSTRAINT import_runs_status_known;
ALTER TABLE import_runs ADD CONSTRAINT import_runs_status_known
    CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned', 'interrupted', 'refused'));
COMMENT ON COLUMN import_runs.status IS 'running; succeeded; failed (error holds why; nothing of the run was kept); abandoned (the process was killed or crashed: marked by the next run of the system); interrupted (SIGTERM or SIGINT: stopped at a safe point and rolled back); refused (the mass-delete guard: the sync would have deleted most of its window; rolled back, error holds the numbers).';
ALTER TABLE import_runs ADD COLUMN mass_delete_override text;
COMMENT ON COLUMN import_runs.mass_delete_override IS 'NULL, or what the mass-delete guard would have refused and --allow-mass-delete (or allow_mass_delete = true) let through.';
