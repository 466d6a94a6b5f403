-- Activity codes still on the system activity Present (id 1): new codes waiting for a mapping.
SELECT s.name AS system, c.id, c.code, c.first_seen_at, c.last_seen_at
FROM external_activity_codes c
JOIN external_systems s ON s.id = c.external_system_id
WHERE c.activity_id = 1
ORDER BY s.name, c.code;
