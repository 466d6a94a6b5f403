-- acdsync extraction query: Wazo Platform (formerly XiVO) queue_log, PostgreSQL database `asterisk`.
-- shape = "events". Follows wazo-platform xivo-dao@da488883 (xivo_dao/alchemy/queue_log.py) and wazo-agentd@79bf874a
-- (wazo_agentd/queuelog.py, service/action/{login,logoff,pause}.py); see ../shared/SOURCES.md §2.
-- Tested with PostgreSQL 15 through psqlODBC (tests/integration/events.rs).
--
-- Layout (wazo-20.14 and later): queue_log(time timestamptz, callid, queuename, agent, event, data1..data5, id
-- integer PK). Before wazo-20.14 `time` was varchar(80): write CAST(time AS timestamptz) for `time` below.
-- Time zone: `time` is an instant (timestamptz): it is selected as UTC text with its offset, and compared with
-- the window's bounds as instants ({lookback_start_utc}, {window_end_utc}). Set time_zone to the site's zone
-- anyway (it names the local days synced).
--
-- Agents are named `Agent/<number>`. Wazo logs a login as AGENTCALLBACKLOGIN (queue NONE) and then ADDMEMBER per
-- queue, whose agent column may hold the queue interface (`Local/id-<n>@agentcallback`) instead: this file reads
-- the agent's login and logoff and its pauses, which all carry `Agent/<number>`, and leaves ADDMEMBER and
-- REMOVEMEMBER out. A pause (AMI QueuePause with no queue) writes PAUSEALL and one PAUSE per queue with one
-- reason: the PAUSE rows are read, one session. Ordered by id, which follows real time.

SELECT agent AS agent_id,
       to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00:00' AS event_time,
       CASE
         WHEN event = 'AGENTCALLBACKLOGIN' THEN 'login'
         WHEN event = 'AGENTCALLBACKLOGOFF' THEN 'logout'
         ELSE 'state'
       END AS event,
       CASE
         WHEN event = 'PAUSE' THEN COALESCE(NULLIF(TRIM(data1), ''), 'PAUSE')
       END AS activity_code,
       NULLIF(queuename, 'NONE') AS scope,
       id AS sequence
FROM queue_log
WHERE time >= CAST({lookback_start_utc} AS timestamptz)
  AND time < CAST({window_end_utc} AS timestamptz)
  AND event IN ('AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF', 'PAUSE', 'UNPAUSE')
  AND NOT (event = 'UNPAUSE' AND data1 = 'Auto-Unpause')
ORDER BY id
