-- acdsync scale benchmark, incremental section: the changes query of an incremental system
-- ([system.incremental] sql_file, watermark = "integer"): every row inserted or updated since the watermark,
-- with its change_key as the 5th column. The index on change_id keeps it from reading the whole table.
-- ORDER BY started_at: the sync engine reads source rows in start order.

SELECT agent_id,
       activity_code,
       started_at,
       ended_at,
       change_id
FROM acd_agent_states
WHERE change_id > {watermark}
ORDER BY started_at
