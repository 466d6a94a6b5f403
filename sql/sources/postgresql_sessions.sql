-- acdsync extraction query: generic SESSIONS shape, for a site's own table of agent states in PostgreSQL,
-- read through psqlODBC. The same as generic_sessions.sql, with the times selected as text: psqlODBC parses
-- every timestamp it returns and prints it again for a text buffer, about a third of the fetch at 1.5 million
-- rows (BENCHMARKS.md); as text it passes the server's rendering through. Use it with the connection string
-- options UseDeclareFetch=1;Fetch=10000 (without them psqlODBC holds the whole result in memory).
-- For a timestamptz column, CAST(col AS text) keeps the offset, which acdsync then uses (docs/time.md).
--
-- Contract (sql/sources/README.md): return exactly 4 columns, in this order,
--   1. agent_id       text       the agent's ID in the ACD (login ID, agent number)      NOT NULL
--   2. activity_code  text       the reason / activity code of the state, NULL for none  (shown as Present)
--   3. started_at     timestamp  start, local time of the system's time_zone (or text with an offset, or epoch seconds)
--   4. ended_at       timestamp  end, same form; NULL while the state is still open
-- one row per session (a login, or one state inside it), for every session that overlaps the window:
--   starts before {window_end}, not earlier than {lookback_start}, and starts in the window, is open, or ends in it;
-- in start order (ORDER BY the start column): acdsync merges the result with the stored sessions as it reads
-- it, without holding the day in memory, and stops with an error naming the row if the order is broken.
-- Placeholders (local wall time of the system, written by acdsync, never user text):
--   {window_start}    local midnight starting the first day synced
--   {window_end}      local midnight after the last day synced (exclusive)
--   {lookback_start}  {window_start} minus max_session_hours (how long a session may last)
-- With window_parameters = "bound" each becomes a bound ODBC timestamp parameter (?); with "literal" a quoted
-- 'YYYY-MM-DD HH:MM:SS' literal, for drivers that stop streaming when parameters are bound (SQLite ODBC).
--
-- Adapt the table and column names to your database; keep the column order and the WHERE logic.
-- Table used here:
--   CREATE TABLE acd_agent_states (agent_id text, activity_code text, started_at timestamp, ended_at timestamp);
-- An index on started_at keeps this query from reading the whole history, and gives the order for free.

SELECT agent_id,
       activity_code,
       CAST(started_at AS text) AS started_at,
       CAST(ended_at AS text) AS ended_at
FROM acd_agent_states
WHERE started_at >= {lookback_start}
  AND started_at < {window_end}
  AND (started_at >= {window_start} OR ended_at IS NULL OR ended_at >= {window_start})
ORDER BY started_at
