-- The ownership history of one agent ID (edit the system and the ID below): each period [valid_from,
-- valid_to) (UTC; NULL: from the beginning, open-ended), its owner, and how many sessions started in it.
-- Sessions that started in no period (before the first, in a gap) have no employee in external_activity:
-- unmapped_agent_ids.sql counts them. Portable (PostgreSQL and SQLite).
SELECT s.name AS system, a.external_id AS agent_id, o.valid_from, o.valid_to,
       e.id AS employee_id, e.name AS employee, e.external_ref,
       (SELECT COUNT(*) FROM agent_sessions x
         WHERE x.external_agent_id = a.id
           AND (o.valid_from IS NULL OR o.valid_from <= x.started_at)
           AND (o.valid_to IS NULL OR x.started_at < o.valid_to)) AS sessions
FROM external_agent_ids a
JOIN external_systems s ON s.id = a.external_system_id
JOIN agent_id_owners o ON o.external_agent_id = a.id
JOIN employees e ON e.id = o.employee_id
WHERE s.name = 'demo-acd' AND a.external_id = '1001'
ORDER BY o.valid_from IS NOT NULL, o.valid_from;
