-- Agent IDs waiting for an owner, most recently seen first: those with no owner from now on (no open-ended
-- period: external_agent_ids.employee_id IS NULL), and those with sessions that started when nobody owned the
-- ID (before its first period, or in a gap between two), which external_activity shows with no employee.
-- Portable (PostgreSQL and SQLite).
SELECT w.system, w.id, w.external_id, w.open_period_owner, w.sessions_without_owner,
       w.first_seen_at, w.last_seen_at
FROM (SELECT s.name AS system, a.id, a.external_id, a.employee_id AS open_period_owner,
             a.first_seen_at, a.last_seen_at,
             (SELECT COUNT(*) FROM agent_sessions x
               WHERE x.external_agent_id = a.id
                 AND NOT EXISTS (SELECT 1 FROM agent_id_owners o
                                 WHERE o.external_agent_id = a.id
                                   AND (o.valid_from IS NULL OR o.valid_from <= x.started_at)
                                   AND (o.valid_to IS NULL OR x.started_at < o.valid_to))) AS sessions_without_owner
      FROM external_agent_ids a
      JOIN external_systems s ON s.id = a.external_system_id) w
WHERE w.open_period_owner IS NULL OR w.sessions_without_owner > 0
ORDER BY w.last_seen_at DESC, w.system, w.external_id;
