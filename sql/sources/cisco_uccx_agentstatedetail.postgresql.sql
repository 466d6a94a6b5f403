-- acdsync extraction query: Cisco Unified CCX, historical table AgentStateDetail (database db_cra).
-- shape = "events". Follows the UCCX Database Schema Guide (8.0(1), p.1-7: AgentStateDetail, Resource) and
-- the UCCX reason-code documentation (developer.cisco.com); see ../shared/SOURCES.md §5.
-- UCCX keeps db_cra in Informix; this file was tested with PostgreSQL 15 through psqlODBC on a fixture in the
-- same layout (tests/integration/vendors.rs), the closest engine run here. For Informix, keep the query and
-- use the Informix ODBC driver; bounds are given as local-looking UTC text.
--
-- Time zone: eventDateTime is GMT: it is selected as text with +00:00 and compared with the bounds as UTC
-- ({..._utc}), so time_zone is the site's zone (it names the local days synced).
-- Event types: 1 Log In, 2 Not Ready (reasonCode), 3 Ready, 4 Reserved, 5 Talking, 6 Work, 7 Log Out.
--   1 -> login; 7 -> logout; 2 -> state with the reason code (its number; 0 when none was given: "0");
--   3, 4, 5 -> state with no code (the agent at work); 6 -> state 'WORK' (after-call work).
-- Agents: the agent's login ID from Resource (one row per active and inactive resource; profileID joins the
-- right one). No sequence: events at one time are taken login, state, logout; UCCX keeps milliseconds.

SELECT r.resourceloginid AS agent_id,
       to_char(a.eventdatetime, 'YYYY-MM-DD HH24:MI:SS.MS') || '+00:00' AS event_time,
       CASE a.eventtype WHEN 1 THEN 'login' WHEN 7 THEN 'logout' ELSE 'state' END AS event,
       CASE
         WHEN a.eventtype = 2 THEN CAST(a.reasoncode AS varchar(10))
         WHEN a.eventtype = 6 THEN 'WORK'
       END AS activity_code,
       CAST(NULL AS varchar(1)) AS scope,
       CAST(NULL AS bigint) AS sequence
FROM agentstatedetail a
JOIN resource r ON r.resourceid = a.agentid AND r.profileid = a.profileid
WHERE a.eventdatetime >= CAST({lookback_start_utc} AS timestamptz) AT TIME ZONE 'UTC'
  AND a.eventdatetime < CAST({window_end_utc} AS timestamptz) AT TIME ZONE 'UTC'
ORDER BY a.eventdatetime
