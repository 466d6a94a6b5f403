-- The latest 20 runs per system, newest first: what each read and wrote, and why a run failed.
SELECT r.id, s.name AS system, r.first_day, r.last_day, r.status, r.started_at, r.finished_at,
       r.rows_read, r.sessions_inserted, r.sessions_updated, r.sessions_deleted, r.sessions_unchanged,
       r.rows_rejected, r.new_agent_ids, r.new_activity_codes, r.error
FROM import_runs r
JOIN external_systems s ON s.id = r.external_system_id
WHERE r.id IN (SELECT r2.id FROM import_runs r2 WHERE r2.external_system_id = r.external_system_id
               ORDER BY r2.started_at DESC LIMIT 20)
ORDER BY s.name, r.started_at DESC;
