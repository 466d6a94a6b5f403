-- acdsync scale benchmark (benches/scale.rs): the query of sql/sources/generic_sessions.sql, unchanged, plus
-- ORDER BY started_at at the end (the new sync engine reads source rows in start order; the generic file gets
-- the same ORDER BY). The table is the one the benchmark generates in the database acdsync_bench_src:
--   acd_agent_states (id bigserial, agent_id text, activity_code text, started_at timestamp,
--                     ended_at timestamp, change_id bigint), indexed on started_at and on change_id.
-- The benchmark runs this file through acdsync (window_parameters = "bound"), and its floors run the same text
-- with the window bounds written as literals (psql \copy) or bound the way acdsync binds them (raw ODBC fetch).

SELECT agent_id,
       activity_code,
       started_at,
       ended_at
FROM acd_agent_states
WHERE started_at >= {lookback_start}
  AND started_at < {window_end}
  AND (started_at >= {window_start} OR ended_at IS NULL OR ended_at >= {window_start})
ORDER BY started_at
