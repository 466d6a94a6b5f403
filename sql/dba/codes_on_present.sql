-- Activity codes waiting for a mapping: on the system activity Present (id 1) since their discovery
-- (mapped_at IS NULL: no admin ever assigned them; a code put on Present on purpose has a mapped_at).
SELECT s.name AS system, c.id, c.code, c.first_seen_at, c.last_seen_at
FROM external_activity_codes c
JOIN external_systems s ON s.id = c.external_system_id
WHERE c.activity_id = 1 AND c.mapped_at IS NULL
ORDER BY s.name, c.code;
