-- acdsync extraction query: FreeSWITCH mod_callcenter agent statuses, from a table a site's listener writes.
-- shape = "events".
-- mod_callcenter keeps no history: its `agents` table holds each agent's current status only, and a status
-- change is an UPDATE of agents.status (signalwire/freeswitch@cc93a683, src/mod/applications/mod_callcenter;
-- see ../shared/SOURCES.md §3). Polling that table loses what changes between polls. The way to a history is
-- an event listener (ESL, `event plain CUSTOM callcenter::info`) that writes one row per `agent-status-change`
-- event into a table such as:
--   CREATE TABLE cc_agent_status_log (id INTEGER PRIMARY KEY,      -- in the order the events arrive
--                                     agent TEXT NOT NULL,         -- CC-Agent
--                                     status TEXT NOT NULL,        -- CC-Agent-Status
--                                     event_epoch_us BIGINT NOT NULL); -- Event-Date-Timestamp (microseconds, UTC)
-- This file reads that table (tested through the SQLite ODBC driver, tests/integration/events.rs).
--
-- Statuses: 'Logged Out' -> logout; the first other status after it -> login (in that status); 'Available' and
-- 'Available (On Demand)' -> ready (no code); 'On Break' -> state 'On Break' (mod_callcenter has no reason
-- codes; max-no-answer puts the agent On Break too). An agent's first status read, if not 'Logged Out', logs it
-- in too (a state of an agent not seen logging in). Needs window functions (SQLite 3.25+).
-- Time zone: the times are UTC epoch (written here as seconds with a fraction): set time_zone to the site's
-- zone (it names the local days synced); the bounds are compared as epoch seconds.

SELECT agent AS agent_id,
       CAST(event_epoch_us / 1000000 AS TEXT) || '.' || substr('000000' || (event_epoch_us % 1000000), -6) AS event_time,
       CASE
         WHEN status = 'Logged Out' THEN 'logout'
         WHEN LAG(status) OVER (PARTITION BY agent ORDER BY id) = 'Logged Out' THEN 'login'
         ELSE 'state'
       END AS event,
       CASE status WHEN 'On Break' THEN 'On Break' END AS activity_code,
       NULL AS scope,
       id AS sequence
FROM cc_agent_status_log
WHERE event_epoch_us >= CAST(strftime('%s', {lookback_start_utc}) AS INTEGER) * 1000000
  AND event_epoch_us < CAST(strftime('%s', {window_end_utc}) AS INTEGER) * 1000000
ORDER BY id
