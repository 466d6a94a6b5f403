-- Speed and incremental mode (issue 6).
--
-- 1. agent_sessions' references to the mapping tables are checked once per statement, set-based, instead
--    of once per row: the per-row checks of the two foreign keys cost more than the rest of a day's bulk
--    load (measured in BENCHMARKS.md). The rules stay in the database, under the same names: a session
--    names an agent ID and a code of its own system, and neither can be deleted (or renumbered) while a
--    session names it.
ALTER TABLE agent_sessions DROP CONSTRAINT agent_sessions_agent_fk;
ALTER TABLE agent_sessions DROP CONSTRAINT agent_sessions_code_fk;

CREATE FUNCTION agent_sessions_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    -- No row locks here (a foreign key takes one per row, which is most of its cost): a delete of an agent ID
    -- or code takes a SHARE lock on agent_sessions first (below), so it waits for this transaction, and a
    -- delete committed before this statement makes the check below fail.
    SELECT n.external_agent_id, n.external_system_id INTO bad
    FROM (SELECT DISTINCT external_agent_id, external_system_id FROM new_sessions) n
    WHERE NOT EXISTS (SELECT 1 FROM external_agent_ids a
                      WHERE a.id = n.external_agent_id AND a.external_system_id = n.external_system_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'agent_sessions_agent_fk: external_agent_id % is not an agent ID of external system %',
            bad.external_agent_id, bad.external_system_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT n.external_activity_code_id, n.external_system_id INTO bad
    FROM (SELECT DISTINCT external_activity_code_id, external_system_id FROM new_sessions
          WHERE external_activity_code_id IS NOT NULL) n
    WHERE NOT EXISTS (SELECT 1 FROM external_activity_codes c
                      WHERE c.id = n.external_activity_code_id AND c.external_system_id = n.external_system_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'agent_sessions_code_fk: external_activity_code_id % is not an activity code of external system %',
            bad.external_activity_code_id, bad.external_system_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION agent_sessions_check_references() IS 'The foreign keys agent_sessions_agent_fk and agent_sessions_code_fk, checked once per statement over the rows it wrote.';
CREATE TRIGGER agent_sessions_references_insert
    AFTER INSERT ON agent_sessions REFERENCING NEW TABLE AS new_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION agent_sessions_check_references();
CREATE TRIGGER agent_sessions_references_update
    AFTER UPDATE ON agent_sessions REFERENCING NEW TABLE AS new_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION agent_sessions_check_references();

CREATE FUNCTION agent_sessions_keep_agent_ids() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Waits for transactions writing sessions (a sync), then sees what they wrote; holds writers off until
    -- this transaction ends.
    LOCK TABLE agent_sessions IN SHARE MODE;
    IF EXISTS (SELECT 1 FROM agent_sessions WHERE external_agent_id = OLD.id) THEN
        RAISE EXCEPTION 'agent_sessions_agent_fk: sessions of agent ID % are stored; it cannot be deleted or renumbered', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$;
CREATE TRIGGER agent_sessions_keep_agent_ids
    BEFORE DELETE ON external_agent_ids
    FOR EACH ROW EXECUTE FUNCTION agent_sessions_keep_agent_ids();
-- Only a real change of the key: an UPDATE that writes every column (an ORM's save) must not lock or fail.
CREATE TRIGGER agent_sessions_keep_agent_ids_renumber
    BEFORE UPDATE OF id, external_system_id ON external_agent_ids
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.external_system_id IS DISTINCT FROM NEW.external_system_id)
    EXECUTE FUNCTION agent_sessions_keep_agent_ids();

CREATE FUNCTION agent_sessions_keep_codes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE agent_sessions IN SHARE MODE;
    IF EXISTS (SELECT 1 FROM agent_sessions WHERE external_activity_code_id = OLD.id) THEN
        RAISE EXCEPTION 'agent_sessions_code_fk: sessions with activity code % are stored; it cannot be deleted or renumbered', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$;
CREATE TRIGGER agent_sessions_keep_codes
    BEFORE DELETE ON external_activity_codes
    FOR EACH ROW EXECUTE FUNCTION agent_sessions_keep_codes();
CREATE TRIGGER agent_sessions_keep_codes_renumber
    BEFORE UPDATE OF id, external_system_id ON external_activity_codes
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.external_system_id IS DISTINCT FROM NEW.external_system_id)
    EXECUTE FUNCTION agent_sessions_keep_codes();

-- 2. Incremental mode: each system's watermark, moved in the transaction that writes what it covers.
ALTER TABLE external_systems
    ADD COLUMN watermark text,
    ADD COLUMN watermark_kind text,
    ADD COLUMN watermark_updated_at timestamptz,
    ADD CONSTRAINT external_systems_watermark_kind_known CHECK (watermark_kind IN ('integer', 'timestamp')),
    ADD CONSTRAINT external_systems_watermark_has_kind CHECK ((watermark IS NULL) = (watermark_kind IS NULL));
COMMENT ON COLUMN external_systems.watermark IS 'Incremental mode: the largest change key imported (integer, or timestamp YYYY-MM-DD HH:MM:SS.ffffff as the source writes it). The next run reads rows with a larger key. Set it to NULL to make the next run a full sync that sets it again.';

ALTER TABLE import_runs
    ADD COLUMN mode text NOT NULL DEFAULT 'full',
    ADD COLUMN watermark text,
    ADD CONSTRAINT import_runs_mode_known CHECK (mode IN ('full', 'changes'));
COMMENT ON COLUMN import_runs.mode IS 'full: the sessions of the window were made equal to the source (inserts, updates, deletes); changes: incremental, only rows changed since the watermark were read (inserts and updates).';
COMMENT ON COLUMN import_runs.watermark IS 'The system''s watermark after this run (incremental mode).';
CREATE INDEX import_runs_system_mode_idx ON import_runs (external_system_id, mode, started_at);
