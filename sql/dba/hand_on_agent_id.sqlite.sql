-- SQLite (on PostgreSQL, use hand_on_agent_id.sql). Hands agent ID 1001 of demo-acd on to another employee
-- from a date, in one transaction: the current owner keeps the sessions that started before, the new owner
-- gets those from then on. SQLite has no time zone database: write the instant the new owner starts in UTC,
-- 'YYYY-MM-DD HH:MM:SS' (local midnight of 16 January 2026 in Europe/Paris, UTC+1 in winter, is
-- 2026-01-15 23:00:00). End the open period first, then start the new one: the single-owner rule is checked
-- at each statement. If the open period starts after that instant, the first UPDATE is refused
-- (agent_id_owners_period_order): end or delete that period instead.
BEGIN;
INSERT INTO employees (name) VALUES ('Grace Hopper');                 -- if the employee is new
UPDATE agent_id_owners
   SET valid_to = '2026-01-15 23:00:00'
 WHERE valid_to IS NULL
   AND external_agent_id = (SELECT a.id FROM external_agent_ids a
                            JOIN external_systems s ON s.id = a.external_system_id
                            WHERE s.name = 'demo-acd' AND a.external_id = '1001');
INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from)
SELECT a.id, (SELECT id FROM employees WHERE name = 'Grace Hopper'), '2026-01-15 23:00:00'
FROM external_agent_ids a
JOIN external_systems s ON s.id = a.external_system_id
WHERE s.name = 'demo-acd' AND a.external_id = '1001';
COMMIT;
