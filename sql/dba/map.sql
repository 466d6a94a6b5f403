-- Mapping by hand: an agent ID to an employee, a code to an activity. Both show in the view
-- external_activity at once; no re-import is needed. The constraints refuse a second owner.
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
