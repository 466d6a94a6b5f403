-- Back to one employee per agent ID. external_agent_ids.employee_id already holds the owner of each ID's
-- open-ended period, which is what the old schema reads as "owned from the beginning"; the dated history
-- (periods that ended) has no place there and is dropped with agent_id_owners, as are employees.external_ref
-- and external_activity_codes.mapped_at. The triggers go first: none may rewrite employee_id on the way (a
-- DROP TABLE drops the table's own triggers before its implicit DELETE, but not those on other tables).
DROP VIEW external_activity;
CREATE VIEW external_activity AS
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

DROP TRIGGER external_agent_ids_owned_from_beginning_update;
DROP TRIGGER external_agent_ids_owned_from_beginning_insert;
DROP TRIGGER agent_id_owners_employee_of_open_period_delete;
DROP TRIGGER agent_id_owners_employee_of_open_period_update;
DROP TRIGGER agent_id_owners_employee_of_open_period_insert;
DROP TRIGGER agent_id_owners_employee_fk_delete;
DROP TRIGGER agent_id_owners_employee_fk_update;
DROP TRIGGER agent_id_owners_employee_fk_insert;
DROP TRIGGER agent_id_owners_agent_fk_delete;
DROP TRIGGER agent_id_owners_agent_fk_update;
DROP TRIGGER agent_id_owners_agent_fk_insert;
DROP TRIGGER agent_id_owners_one_owner_at_a_time_update;
DROP TRIGGER agent_id_owners_one_owner_at_a_time_insert;
DROP TABLE agent_id_owners;

DROP TRIGGER external_activity_codes_mapped_at_insert;
DROP TRIGGER external_activity_codes_mapped_at_update;
ALTER TABLE external_activity_codes DROP COLUMN mapped_at;

DROP TRIGGER activities_keep_present_name;
DROP INDEX activities_name_folded_key;

DROP INDEX employees_external_ref_key;
ALTER TABLE employees DROP COLUMN external_ref;
