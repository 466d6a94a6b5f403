-- Agent IDs per employee, with their ownership periods [valid_from, valid_to) (UTC; NULL: from the
-- beginning, open-ended) and whether each is past, current or future now. An ID handed on shows under
-- each of its owners. Employees who never owned an ID are listed once, with no ID. Portable (PostgreSQL and
-- SQLite: CURRENT_TIMESTAMP is UTC text there, in the form the timestamps are stored in).
SELECT e.id AS employee_id, e.name AS employee, e.external_ref,
       s.name AS system, a.external_id AS agent_id, o.valid_from, o.valid_to,
       CASE WHEN o.id IS NULL THEN NULL
            WHEN o.valid_to IS NOT NULL AND o.valid_to <= CURRENT_TIMESTAMP THEN 'past'
            WHEN o.valid_from IS NOT NULL AND o.valid_from > CURRENT_TIMESTAMP THEN 'future'
            ELSE 'current' END AS period
FROM employees e
LEFT JOIN agent_id_owners o ON o.employee_id = e.id
LEFT JOIN external_agent_ids a ON a.id = o.external_agent_id
LEFT JOIN external_systems s ON s.id = a.external_system_id
ORDER BY e.name, e.id, s.name, a.external_id, o.valid_from IS NOT NULL, o.valid_from;
