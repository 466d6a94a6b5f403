-- PostgreSQL (on SQLite, use sessions_per_day.sqlite.sql). Sessions and hours per local day and system: the
-- day is read in the system's time_zone, so a day is 23 or 25 hours long when the clocks change. A session
-- counts on the day it starts, whole; hours add up the closed sessions (open ones count, with no hours).
-- Add a WHERE on s.started_at to look at a few days of a large store.
SELECT es.name AS system,
       (s.started_at AT TIME ZONE es.time_zone)::date AS day,
       COUNT(*) AS sessions,
       COUNT(s.ended_at) AS closed_sessions,
       round(SUM(EXTRACT(EPOCH FROM s.ended_at - s.started_at)) / 3600, 2) AS hours
FROM agent_sessions s
JOIN external_systems es ON es.id = s.external_system_id
GROUP BY es.name, (s.started_at AT TIME ZONE es.time_zone)::date
ORDER BY es.name, day;
