-- acdsync extraction query: Genesys PureConnect (Interaction Center, CIC), reporting table AgentActivityLog.
-- shape = "events". Follows the PureConnect data dictionary (help.genesys.com/pureconnect/datadictionary:
-- tables/AgentActivityLog, AgentStatusData); see ../shared/SOURCES.md §8.
-- CIC keeps its reporting database in Microsoft SQL Server or Oracle; this file was tested with PostgreSQL 15
-- through psqlODBC on a fixture in the same layout (tests/integration/vendors.rs), the closest engine run
-- here. For SQL Server, write the two expressions marked (PostgreSQL) as in the comments beside them.
--
-- What the table holds: one row per change of an agent's status (a client login or logout, a status such as
-- Available, Do Not Disturb, After Call Work, At Lunch), with the status entered (StatusKey) and whether the
-- agent is logged in to the client after it (LoggedIn, 0 or 1). Login and logout write statuses that last no
-- time. It records statuses, not ACD states; a status lasts until the agent's next row.
-- Time zone: StatusDateTimeGMT is UTC: it is selected as text with +00:00 and compared with the bounds as UTC
-- ({..._utc}), so time_zone is the site's zone (it names the local days synced). StatusDateTime (local to the
-- CIC server) is not read.
-- Events: a row with LoggedIn = 0 -> logout; any other row -> state, its code the status (StatusKey, as named in
-- Interaction Administrator; map 'Available' and the others to activities in the WFM database). An agent's
-- first row after a logout opens its session (a state of an agent not logged in is its login).
-- Order: rows are unique by site, user, StatusDateTimeGMT and SeqNo (0, 1, 2 ... for several changes in one
-- second); the sequence is the second (epoch) times 1000 plus SeqNo, which keeps that order.
-- Agents: UserId, the CIC user (map it to employees). Multi-site installations: add SiteId to the WHERE clause.

SELECT a.UserId AS agent_id,
       to_char(a.StatusDateTimeGMT, 'YYYY-MM-DD HH24:MI:SS.MS') || '+00:00' AS event_time,
       -- (PostgreSQL) SQL Server: CONVERT(varchar(23), a.StatusDateTimeGMT, 121) + '+00:00'
       CASE WHEN a.LoggedIn = 0 THEN 'logout' ELSE 'state' END AS event,
       a.StatusKey AS activity_code,
       CAST(NULL AS varchar(1)) AS scope,
       CAST(FLOOR(EXTRACT(EPOCH FROM a.StatusDateTimeGMT)) AS bigint) * 1000 + a.SeqNo AS sequence
       -- (PostgreSQL) SQL Server: DATEDIFF_BIG(SECOND, '1970-01-01', a.StatusDateTimeGMT) * 1000 + a.SeqNo
FROM AgentActivityLog a
WHERE a.StatusDateTimeGMT >= CAST({lookback_start_utc} AS timestamptz) AT TIME ZONE 'UTC'
  AND a.StatusDateTimeGMT < CAST({window_end_utc} AS timestamptz) AT TIME ZONE 'UTC'
  -- (PostgreSQL) SQL Server: a.StatusDateTimeGMT >= CAST(LEFT({lookback_start_utc}, 19) AS datetime2), and the same
  -- for {window_end_utc} (the bounds are UTC text YYYY-MM-DD HH:MM:SS+00:00)
ORDER BY sequence
