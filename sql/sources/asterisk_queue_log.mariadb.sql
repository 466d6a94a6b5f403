-- acdsync extraction query: Asterisk queue_log, realtime table, on MariaDB / MySQL (the realtime table of contrib/ast-db-manage: time DATETIME, DATETIME(6) since the 2026 precision migration). Tested with MariaDB 10.11 through MariaDB Connector/ODBC.
-- shape = "events". Follows Asterisk 12 to 23 (app_queue.c, app_agent_pool.c, main/logger.c at master f0c1c1a7;
-- https://docs.asterisk.org/Operation/Logging/Queue-Logs/), see ../shared/SOURCES.md §1 for what each event holds.
--
-- Time zone: queue_log.time is the Asterisk server's local wall time (set the system's time_zone to that
-- zone), or UTC when logger.conf has queue_log_realtime_use_gmt = yes (then time_zone = "UTC").
-- Agent IDs: PAUSE/UNPAUSE name the member name, ADDMEMBER/REMOVEMEMBER the interface (PJSIP/1001) unless
-- queues.conf has log_membername_as_agent = yes: set it (or map interfaces to member names below), so that one
-- agent has one ID. AGENTLOGIN/AGENTLOGOFF (app_agent_pool) name the agents.conf id, which may differ from the
-- member name its pauses carry (Agent/1001): map one to the other here if so.
-- Tables with a single `data` column instead of data1..data5 (the logger's fallback): write data for data1.
--
-- Events read (all others, calls and QUEUESTART included, are left out by the WHERE clause):
--   ADDMEMBER, AGENTLOGIN, AGENTCALLBACKLOGIN   -> login  (ADDMEMBER with data1 = 'PAUSED': starts in code PAUSE)
--   REMOVEMEMBER, AGENTLOGOFF, AGENTCALLBACKLOGOFF -> logout
--   PAUSE                                       -> state, code = the reason (data1), 'PAUSE' when none is given
--   UNPAUSE                                     -> state, no code (ready)
-- PAUSEALL and UNPAUSEALL are left out: Asterisk also writes a PAUSE or UNPAUSE for each queue the member is in,
-- and before Asterisk 15 the PAUSEALL has no reason. An UNPAUSE with reason 'Auto-Unpause' (queues.conf
-- log_unpause_on_reason_change) is left out too: the new PAUSE follows it in the same instant.
-- The queue is the scope; queue NONE (AGENTLOGIN) is the agent as a whole. The PAUSE of each queue carries one
-- reason: one session. Ordered by id, which follows real time (tables without id, from before Asterisk 12:
-- ORDER BY time, and NULL AS sequence; the hour the clocks go back then cannot be told apart).

SELECT agent AS agent_id,
       time AS event_time,
       CASE
         WHEN event IN ('ADDMEMBER', 'AGENTLOGIN', 'AGENTCALLBACKLOGIN') THEN 'login'
         WHEN event IN ('REMOVEMEMBER', 'AGENTLOGOFF', 'AGENTCALLBACKLOGOFF') THEN 'logout'
         ELSE 'state'
       END AS event,
       CASE
         WHEN event = 'PAUSE' THEN COALESCE(NULLIF(TRIM(data1), ''), 'PAUSE')
         WHEN event = 'ADDMEMBER' AND data1 = 'PAUSED' THEN 'PAUSE'
       END AS activity_code,
       NULLIF(queuename, 'NONE') AS scope,
       id AS sequence
FROM queue_log
WHERE time >= {lookback_start}
  AND time < {window_end}
  AND event IN ('ADDMEMBER', 'REMOVEMEMBER', 'PAUSE', 'UNPAUSE',
                'AGENTLOGIN', 'AGENTLOGOFF', 'AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF')
  AND NOT (event = 'UNPAUSE' AND data1 = 'Auto-Unpause')
ORDER BY id
