-- acdsync changes query: incremental mode ([system.incremental] sql_file) for the generic sessions table.
--
-- Contract (sql/sources/README.md, docs/incremental.md): the same 4 columns as the window query, plus a 5th,
-- the row's change key, for every row inserted or changed since the watermark:
--   1. agent_id  2. activity_code  3. started_at  4. ended_at  (as in generic_sessions.sql)
--   5. change_key  an integer the source raises on every insert and update (a sequence), or a timestamp it
--                  sets on every insert and update; acdsync keeps the largest one it imported as the watermark
-- Placeholder: {watermark}, the largest change key imported so far (bound as BIGINT or TIMESTAMP, or written
-- as a literal from acdsync's own value with window_parameters = "literal"). The window placeholders may be
-- used too (e.g. to skip very old rows), but need not be. Rows may come in any order.
--
-- Table used here: acd_agent_states with a column change_id set from a sequence on every insert and update,
-- for instance by a trigger:
--   CREATE SEQUENCE acd_change_seq;
--   ALTER TABLE acd_agent_states ADD COLUMN change_id bigint NOT NULL DEFAULT nextval('acd_change_seq');
--   CREATE INDEX ON acd_agent_states (change_id);
--   CREATE FUNCTION acd_bump_change_id() RETURNS trigger LANGUAGE plpgsql AS
--     $$ BEGIN NEW.change_id := nextval('acd_change_seq'); RETURN NEW; END $$;
--   CREATE TRIGGER acd_bump_change_id BEFORE UPDATE ON acd_agent_states
--     FOR EACH ROW EXECUTE FUNCTION acd_bump_change_id();
-- The index on change_id keeps each run from reading the table.

SELECT agent_id,
       activity_code,
       started_at,
       ended_at,
       change_id
FROM acd_agent_states
WHERE change_id > {watermark}
