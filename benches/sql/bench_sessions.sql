-- acdsync scale benchmark (benches/scale/): the query of sql/sources/postgresql_sessions.sql: the generic
-- query with the times selected as text (psqlODBC would otherwise parse and re-print every timestamp: about
-- a third of the fetch) and ORDER BY started_at (acdsync merges the rows in start order). The table is the one the benchmark generates in the database acdsync_bench_src:
--   acd_agent_states (id bigserial, agent_id text, activity_code text, started_at timestamp,
--                     ended_at timestamp, change_id bigint), indexed on started_at and on change_id.
-- The benchmark runs this file through acdsync (window_parameters = "bound"), and its floors run the same text
-- with the window bounds written as literals (psql \copy) or bound the way acdsync binds them (raw ODBC fetch).

SELECT agent_id,
       activity_code,
       CAST(started_at AS text),
       CAST(ended_at AS text)
FROM acd_agent_states
WHERE started_at >= {lookback_start}
  AND started_at < {window_end}
  AND (started_at >= {window_start} OR ended_at IS NULL OR ended_at >= {window_start})
ORDER BY started_at
