-- Rows the last run of each system could not import, with the reason and the values as read.
SELECT s.name AS system, x.import_run_id, x.source_row, x.field, x.reason,
       x.agent_id, x.activity_code, x.started_at, x.ended_at
FROM rejected_rows x
JOIN import_runs r ON r.id = x.import_run_id
JOIN external_systems s ON s.id = r.external_system_id
WHERE r.id = (SELECT MAX(r2.id) FROM import_runs r2 WHERE r2.external_system_id = r.external_system_id)
ORDER BY s.name, x.source_row;
