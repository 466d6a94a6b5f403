-- Agent IDs no employee owns yet, most recently seen first.
SELECT s.name AS system, a.id, a.external_id, a.first_seen_at, a.last_seen_at
FROM external_agent_ids a
JOIN external_systems s ON s.id = a.external_system_id
WHERE a.employee_id IS NULL
ORDER BY a.last_seen_at DESC, s.name, a.external_id;
