-- SQLite (on PostgreSQL, use sessions_per_day.sql, which reads each system's own zone). Sessions and hours
-- per day and system. SQLite has no time zone database: these are UTC days. For the local days of one zone,
-- run the shell in that zone and read the days with 'localtime' (one zone for every system):
--   TZ=Europe/Paris sqlite3 wfm.db, and date(s.started_at, 'localtime') in both places below.
-- A session counts on the day it starts, whole; hours add up the closed sessions (open ones count, with no
-- hours).
SELECT es.name AS system,
       date(s.started_at) AS day,
       COUNT(*) AS sessions,
       COUNT(s.ended_at) AS closed_sessions,
       round(SUM((julianday(s.ended_at) - julianday(s.started_at)) * 24), 2) AS hours
FROM agent_sessions s
JOIN external_systems es ON es.id = s.external_system_id
GROUP BY es.name, date(s.started_at)
ORDER BY es.name, day;
