-- acdsync extraction query: generic EVENTS shape (shape = "events"), for a site's own table of agent events
-- (for example one an ESL or AMI listener writes: FreeSWITCH mod_callcenter keeps no history of its own).
--
-- Contract (sql/sources/README.md, "The events shape"): return exactly 6 columns, in this order,
--   1. agent_id       text     the agent's ID in the ACD                                      NOT NULL
--   2. event_time     time     when it happened: local time of the system's time_zone (or text with an offset,
--                              or epoch seconds)                                              NOT NULL
--   3. event          text     'login', 'state' or 'logout' (map your own event names here)  NOT NULL
--   4. activity_code  text     for 'state': the reason code, NULL for ready (no code); for 'login': the code the
--                              agent starts in, usually NULL
--   5. scope          text     the queue (or group) the event is about, NULL for the agent as a whole
--   6. sequence       integer  a number that follows real time (an id from a sequence), or NULL
-- every event from {lookback_start} (max_session_hours before the window) to {window_end} (acdsync gives this
-- query a window_end max_session_hours after the window, so that a session open at midnight gets its end),
-- in the order they happened: ORDER BY the sequence column if there is one (needed in the hour the clocks go
-- back), else by the time.
-- Placeholders as in generic_sessions.sql ({lookback_start}, {window_end}, local wall time; _utc forms too).
--
-- Table used here:
--   CREATE TABLE acd_agent_events (id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, event_time TIMESTAMP NOT NULL,
--                                  event TEXT NOT NULL, activity_code TEXT, scope TEXT);
--   CREATE INDEX acd_agent_events_time ON acd_agent_events (event_time);
-- Tested through the SQLite, PostgreSQL and MariaDB ODBC drivers (tests/integration/events.rs).

SELECT agent_id,
       event_time,
       event,
       activity_code,
       scope,
       id AS sequence
FROM acd_agent_events
WHERE event_time >= {lookback_start}
  AND event_time < {window_end}
ORDER BY id
