-- acdsync changes query: Asterisk queue_log, realtime table, in incremental mode ([system.incremental]
-- sql_file, watermark = "integer"), beside asterisk_queue_log.<engine>.sql as the window query (shape = "events").
-- The same SQL on PostgreSQL, MariaDB / MySQL and SQLite. Tested with PostgreSQL 15 through psqlODBC and
-- MariaDB 10.11 through MariaDB Connector/ODBC (tests/integration/events_changes.rs).
--
-- Contract (sql/sources/README.md, "The events shape"; docs/incremental.md, "Event sources"): the same 6
-- columns as the window query, for every event with a sequence (queue_log.id) above {watermark}, the largest
-- sequence imported so far, ORDER BY the sequence. acdsync goes on from where each agent stood at the
-- watermark (table event_agent_states), so a run reads only the events logged since the last one.
-- The events mapped, the time zone and the agent IDs: as in the window query (read its header).
-- Safe when ids are handed out in the order rows become visible: Asterisk writes queue_log one row at a time
-- from one process. An index on id (the primary key) keeps each run from reading the table.

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
WHERE id > {watermark}
  AND event IN ('ADDMEMBER', 'REMOVEMEMBER', 'PAUSE', 'UNPAUSE',
                'AGENTLOGIN', 'AGENTLOGOFF', 'AGENTCALLBACKLOGIN', 'AGENTCALLBACKLOGOFF')
  AND NOT (event = 'UNPAUSE' AND data1 = 'Auto-Unpause')
ORDER BY id
