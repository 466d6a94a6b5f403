-- acdsync extraction query: Avaya CMS, agent login/logout history (table haglog, through CMS ODBC).
-- shape = "sessions": one session per login, with no code (CMS keeps AUX reason codes elsewhere).
-- Follows the CentreVu CMS ODBC manual, "Agent Login/Logout Database Items" pp.3-122/123, and Avaya's
-- Dictionary of CMS Database Items (Logout reason, R21); see ../shared/SOURCES.md §7. The column list is
-- CentreVu-era; check it on your release.
-- CMS keeps haglog in Informix; this file was tested with PostgreSQL 15 through psqlODBC on a fixture in the
-- same layout (tests/integration/vendors.rs), the closest engine run here. On Informix write the epoch
-- bounds with Informix's date arithmetic instead of EXTRACT(EPOCH ...).
--
-- Time zone: LOGIN and LOGOUT are UNIX epoch seconds (instants); set time_zone to the site's zone (it names the
-- local days synced).
-- haglog has one row per split/skill an agent logs into (the same LOGID, LOGIN and LOGOUT): grouped into one
-- session per login. Rows are written at logout, so an agent still logged in has no row yet (its session
-- appears at its logout). INFLAG '<' (already logged in when the link came up) and OUTFLAG '>' (logged out
-- while the link was down) mark times that are the link's, not the agent's.

SELECT TRIM(logid) AS agent_id,
       CAST(NULL AS varchar(1)) AS activity_code,
       login AS started_at,
       MAX(logout) AS ended_at
FROM haglog
WHERE login >= EXTRACT(EPOCH FROM CAST({lookback_start_utc} AS timestamptz))
  AND login < EXTRACT(EPOCH FROM CAST({window_end_utc} AS timestamptz))
  AND (login >= EXTRACT(EPOCH FROM CAST({window_start_utc} AS timestamptz))
       OR logout >= EXTRACT(EPOCH FROM CAST({window_start_utc} AS timestamptz)))
GROUP BY TRIM(logid), login
ORDER BY login
