-- acdsync scale benchmark, incremental section: the full query of an incremental system. The same rows as
-- bench_sessions.sql, plus a 5th column, change_key (the source's change_id, which the source sets from a
-- sequence on every insert and update): acdsync keeps the largest one it has read as the watermark.

SELECT agent_id,
       activity_code,
       CAST(started_at AS text),
       CAST(ended_at AS text),
       change_id
FROM acd_agent_states
WHERE started_at >= {lookback_start}
  AND started_at < {window_end}
  AND (started_at >= {window_start} OR ended_at IS NULL OR ended_at >= {window_start})
ORDER BY started_at
