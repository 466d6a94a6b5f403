DROP INDEX import_runs_system_mode_idx;
ALTER TABLE import_runs DROP COLUMN watermark, DROP COLUMN mode;
ALTER TABLE external_systems DROP COLUMN watermark, DROP COLUMN watermark_kind, DROP COLUMN watermark_updated_at;

DROP TRIGGER agent_sessions_keep_codes_renumber ON external_activity_codes;
DROP TRIGGER agent_sessions_keep_codes ON external_activity_codes;
DROP FUNCTION agent_sessions_keep_codes();
DROP TRIGGER agent_sessions_keep_agent_ids_renumber ON external_agent_ids;
DROP TRIGGER agent_sessions_keep_agent_ids ON external_agent_ids;
DROP FUNCTION agent_sessions_keep_agent_ids();
DROP TRIGGER agent_sessions_references_update ON agent_sessions;
DROP TRIGGER agent_sessions_references_insert ON agent_sessions;
DROP FUNCTION agent_sessions_check_references();
ALTER TABLE agent_sessions
    ADD CONSTRAINT agent_sessions_agent_fk FOREIGN KEY (external_agent_id, external_system_id)
        REFERENCES external_agent_ids (id, external_system_id),
    ADD CONSTRAINT agent_sessions_code_fk FOREIGN KEY (external_activity_code_id, external_system_id)
        REFERENCES external_activity_codes (id, external_system_id);
