-- acdsync changes query: incremental mode ([system.incremental] sql_file, watermark = "integer") for the
-- generic events table, beside generic_events.sql as the window query (shape = "events").
--
-- Contract (sql/sources/README.md, "The events shape"; docs/incremental.md, "Event sources"): the same 6
-- columns as the window query, for every event whose sequence is above {watermark} (the largest sequence
-- imported so far), ORDER BY the sequence. The sequence is the change key: NOT NULL, following real time, and
-- handed out in the order rows become visible (a sequence or identity column on a table written by one
-- writer). acdsync goes on from where each agent stood at the watermark (table event_agent_states), so a run
-- reads only the events written since the last one: it costs the same at 17:00 as at 08:00.
-- Events are only ever added: an event corrected or deleted in the source is read again by the periodic full
-- sync of today (full_sync_every), not by the changes runs.
--
-- Table used here: acd_agent_events, as in generic_events.sql (its primary key is the index this needs).
-- Tested through the SQLite and PostgreSQL ODBC drivers (tests/integration/events_changes.rs,
-- tests/integration/events_orders.rs).

SELECT agent_id,
       event_time,
       event,
       activity_code,
       scope,
       id AS sequence
FROM acd_agent_events
WHERE id > {watermark}
ORDER BY id
