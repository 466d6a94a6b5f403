-- Mapping by hand: an agent ID to an employee, a code to an activity. Both show in the view
-- external_activity at once; no re-import is needed. The constraints refuse a second owner.
-- Setting external_agent_ids.employee_id maps the ID from the beginning: it replaces the ID's ownership
-- periods (agent_id_owners) by one, open-ended. To hand an ID on from a date, keeping the former owner's
-- sessions, use hand_on_agent_id.sql. Setting activity_id stamps the code's mapped_at.
BEGIN;
INSERT INTO employees (name) VALUES ('Ada Lovelace');                 -- if the employee is new
UPDATE external_agent_ids
   SET employee_id = (SELECT id FROM employees WHERE name = 'Ada Lovelace')
 WHERE external_system_id = (SELECT id FROM external_systems WHERE name = 'demo-acd')
   AND external_id = '1001';
INSERT INTO activities (name) VALUES ('Break');                       -- if the activity is new
UPDATE external_activity_codes
   SET activity_id = (SELECT id FROM activities WHERE name = 'Break')
 WHERE external_system_id = (SELECT id FROM external_systems WHERE name = 'demo-acd')
   AND code = 'BREAK';
COMMIT;
