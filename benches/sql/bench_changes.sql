-- acdsync scale benchmark, incremental section: the changes query of an incremental system
-- ([system.incremental] sql_file, watermark = "integer"): every row inserted or updated since the watermark,
-- with its change_key as the 5th column. The index on change_id keeps it from reading the whole table.
-- No ORDER BY: changes are merged by key, in any order.

SELECT agent_id,
       activity_code,
       CAST(started_at AS text),
       CAST(ended_at AS text),
       change_id
FROM acd_agent_states
WHERE change_id > {watermark}
