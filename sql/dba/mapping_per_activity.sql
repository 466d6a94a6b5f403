-- The code → activity mapping, per activity and system: each activity's codes, how many it has in that
-- system, and when each code was last assigned (mapped_at, UTC; NULL: on Present since its discovery).
-- Activities no code points at are listed once, with no system. Portable (PostgreSQL and SQLite).
SELECT act.id AS activity_id, act.name AS activity, s.name AS system,
       COUNT(c.id) OVER (PARTITION BY act.id, c.external_system_id) AS codes_in_system,
       c.code, c.mapped_at, c.first_seen_at, c.last_seen_at
FROM activities act
LEFT JOIN external_activity_codes c ON c.activity_id = act.id
LEFT JOIN external_systems s ON s.id = c.external_system_id
ORDER BY act.name, s.name, c.code;
