-- Back to one employee per agent ID. external_agent_ids.employee_id already holds the owner of each ID's
-- open-ended period, which is what the old schema reads as "owned from the beginning"; the dated history
-- (periods that ended) has no place there and is dropped with agent_id_owners, as are employees.external_ref
-- and external_activity_codes.mapped_at.
CREATE OR REPLACE VIEW external_activity AS
SELECT s.id AS session_id,
       s.external_system_id,
       es.name AS external_system,
       a.external_id AS external_agent_id,
       a.employee_id,
       c.code AS activity_code,
       COALESCE(c.activity_id, 1) AS activity_id,
       act.name AS activity_name,
       s.started_at,
       s.ended_at
FROM agent_sessions s
JOIN external_systems es ON es.id = s.external_system_id
JOIN external_agent_ids a ON a.id = s.external_agent_id
LEFT JOIN external_activity_codes c ON c.id = s.external_activity_code_id
JOIN activities act ON act.id = COALESCE(c.activity_id, 1);
COMMENT ON VIEW external_activity IS 'Sessions resolved through the current mappings: employee_id is NULL while the agent ID is unmapped; activity_id is 1 (Present) for sessions without a code. Mapping edits show here at once.';

DROP TRIGGER external_agent_ids_owned_from_beginning_update ON external_agent_ids;
DROP TRIGGER external_agent_ids_owned_from_beginning_insert ON external_agent_ids;
DROP FUNCTION external_agent_ids_owned_from_beginning();
DROP TABLE agent_id_owners;
DROP FUNCTION agent_id_owners_employee_of_open_period();
COMMENT ON TABLE external_agent_ids IS 'Agent IDs of each external system. One ID belongs to at most one employee (employee_id, NULL until mapped); one employee may own many IDs.';
COMMENT ON COLUMN external_agent_ids.employee_id IS NULL;

DROP TRIGGER external_activity_codes_mapped_at_insert ON external_activity_codes;
DROP TRIGGER external_activity_codes_mapped_at_update ON external_activity_codes;
DROP FUNCTION external_activity_codes_stamp_mapped_at();
ALTER TABLE external_activity_codes DROP COLUMN mapped_at;

DROP TRIGGER activities_keep_present_name ON activities;
DROP FUNCTION activities_keep_present_name();
DROP INDEX activities_name_folded_key;
COMMENT ON TABLE activities IS 'WFM activities. Id 1 is the system activity Present: every activity code seen for the first time is assigned to it.';

ALTER TABLE employees
    DROP CONSTRAINT employees_external_ref_not_blank,
    DROP CONSTRAINT employees_external_ref_key,
    DROP COLUMN external_ref;
