-- Mapping administration and agent IDs handed from one employee to the next (issue 15), SQLite flavour of
-- migrations/postgres (same names, same rules; the comments on each column are PostgreSQL's COMMENT ON).
-- No table is rebuilt: columns are added, so this runs in diesel's transaction like the others.

-- 1. employees.external_ref: the employee's reference in the HR/WFM suite. SQLite cannot add a UNIQUE column:
--    the key is a unique index of the same name (NULLs are distinct in it, as in PostgreSQL's).
ALTER TABLE employees ADD COLUMN external_ref text
    CONSTRAINT employees_external_ref_not_blank CHECK (trim(external_ref) <> '');
CREATE UNIQUE INDEX employees_external_ref_key ON employees (external_ref);

-- 2. Activity names are unique ignoring case and surrounding spaces: 'Break', 'break' and ' Break ' are one
--    activity. SQLite's lower() folds ASCII letters only: 'Pause' and 'pause' collide, 'Égal' and 'égal' do
--    not (PostgreSQL does, in a UTF-8 locale). The exact-name key stays.
CREATE UNIQUE INDEX activities_name_folded_key ON activities (lower(trim(name)));

-- 3. Present (id 1) keeps its name as well as its id: it is the activity new codes land on.
CREATE TRIGGER activities_keep_present_name BEFORE UPDATE OF name ON activities
WHEN OLD.id = 1 AND NEW.name IS NOT OLD.name
BEGIN
    SELECT RAISE(ABORT, 'activity 1 (Present) is the system activity new codes are assigned to: it cannot be renamed');
END;

-- 4. external_activity_codes.mapped_at: when an admin last assigned the code (UTC, in the same one spelling as
--    the other timestamps); NULL while it has stayed on Present since its discovery. Set by the database so
--    that a DBA's plain UPDATE ... SET activity_id counts as much as the CLI.
ALTER TABLE external_activity_codes ADD COLUMN mapped_at text
    CONSTRAINT external_activity_codes_mapped_at_format CHECK (mapped_at IS NULL OR (mapped_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]' OR (mapped_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]' AND substr(mapped_at, 21, 3) <> '000') OR (mapped_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]' AND substr(mapped_at, 24, 3) <> '000')));
-- Codes already assigned: the date of the assignment is unknown, the migration's is the best lower bound.
-- 'now' to the millisecond, without a zero fraction (the one spelling of the format check).
UPDATE external_activity_codes
   SET mapped_at = CASE WHEN strftime('%f', 'now') GLOB '*.000' THEN strftime('%Y-%m-%d %H:%M:%S', 'now') ELSE strftime('%Y-%m-%d %H:%M:%f', 'now') END
 WHERE activity_id <> 1;
-- SQLite cannot assign NEW in a BEFORE trigger: an AFTER trigger writes the row's mapped_at (an UPDATE OF
-- mapped_at, which fires neither trigger again). Writing activity_id is an assignment, even to the same
-- activity; a statement that sets mapped_at itself keeps its value.
CREATE TRIGGER external_activity_codes_mapped_at_update AFTER UPDATE OF activity_id ON external_activity_codes
WHEN NEW.mapped_at IS OLD.mapped_at
BEGIN
    UPDATE external_activity_codes
       SET mapped_at = CASE WHEN strftime('%f', 'now') GLOB '*.000' THEN strftime('%Y-%m-%d %H:%M:%S', 'now') ELSE strftime('%Y-%m-%d %H:%M:%f', 'now') END
     WHERE id = NEW.id;
END;
-- A sync inserts the codes it discovers on Present with no mapped_at: they stay NULL. A code inserted on
-- another activity was mapped ahead of its first import.
CREATE TRIGGER external_activity_codes_mapped_at_insert AFTER INSERT ON external_activity_codes
WHEN NEW.mapped_at IS NULL AND NEW.activity_id <> 1
BEGIN
    UPDATE external_activity_codes
       SET mapped_at = CASE WHEN strftime('%f', 'now') GLOB '*.000' THEN strftime('%Y-%m-%d %H:%M:%S', 'now') ELSE strftime('%Y-%m-%d %H:%M:%f', 'now') END
     WHERE id = NEW.id;
END;

-- 5. Dated ownership of agent IDs: employee_id owns external_agent_id over [valid_from, valid_to) (UTC
--    instants; NULL bounds: from the beginning, open-ended). ACD login IDs are recycled; the view resolves a
--    session by its start, so a leaver's sessions stay the leaver's.
CREATE TABLE agent_id_owners (
    id INTEGER PRIMARY KEY,
    external_agent_id INTEGER NOT NULL,
    employee_id INTEGER NOT NULL,
    valid_from TEXT,
    valid_to TEXT,
    CONSTRAINT agent_id_owners_agent_fk FOREIGN KEY (external_agent_id)
        REFERENCES external_agent_ids (id) ON DELETE CASCADE,
    CONSTRAINT agent_id_owners_employee_fk FOREIGN KEY (employee_id)
        REFERENCES employees (id) ON DELETE CASCADE,
    CONSTRAINT agent_id_owners_period_order CHECK (valid_from < valid_to),
    -- One spelling per instant, so that the text comparisons of the bounds (here, in the triggers and the
    -- view) compare instants.
    CONSTRAINT agent_id_owners_time_format CHECK ((valid_from IS NULL OR (valid_from GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]' OR (valid_from GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]' AND substr(valid_from, 21, 3) <> '000') OR (valid_from GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]' AND substr(valid_from, 24, 3) <> '000'))) AND (valid_to IS NULL OR (valid_to GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]' OR (valid_to GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]' AND substr(valid_to, 21, 3) <> '000') OR (valid_to GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]' AND substr(valid_to, 24, 3) <> '000'))))
);
CREATE INDEX agent_id_owners_agent_from_idx ON agent_id_owners (external_agent_id, valid_from);
CREATE INDEX agent_id_owners_employee_idx ON agent_id_owners (employee_id);

-- Today's mappings meant "owned by this employee from the beginning": one unbounded period each.
INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from, valid_to)
SELECT id, employee_id, NULL, NULL FROM external_agent_ids WHERE employee_id IS NOT NULL;

-- The single-owner rule (PostgreSQL: the exclusion constraint of the same name): no two periods of one ID
-- overlap, NULL bounds being infinite. Checked row by row before the write, as PostgreSQL checks its
-- constraint, so a hand-on is two statements in that order: end the old period, then start the new one.
-- A reversed period is left to agent_id_owners_period_order, whose message says so. (The message cannot name
-- the ID: RAISE takes only a constant before SQLite 3.47, and a trigger newer clients alone can parse would
-- make the file unreadable to older sqlite3 shells.)
CREATE TRIGGER agent_id_owners_one_owner_at_a_time_insert BEFORE INSERT ON agent_id_owners
WHEN (NEW.valid_from IS NULL OR NEW.valid_to IS NULL OR NEW.valid_from < NEW.valid_to)
 AND EXISTS (SELECT 1 FROM agent_id_owners o
             WHERE o.external_agent_id = NEW.external_agent_id
               AND (o.valid_to IS NULL OR NEW.valid_from IS NULL OR NEW.valid_from < o.valid_to)
               AND (NEW.valid_to IS NULL OR o.valid_from IS NULL OR o.valid_from < NEW.valid_to))
BEGIN
    SELECT RAISE(ABORT, 'agent_id_owners_one_owner_at_a_time: the agent ID already has an owner during part of this period (an ID has at most one owner at any instant); end that period first');
END;
CREATE TRIGGER agent_id_owners_one_owner_at_a_time_update
BEFORE UPDATE OF id, external_agent_id, valid_from, valid_to ON agent_id_owners
WHEN (NEW.valid_from IS NULL OR NEW.valid_to IS NULL OR NEW.valid_from < NEW.valid_to)
 AND EXISTS (SELECT 1 FROM agent_id_owners o
             WHERE o.id <> OLD.id
               AND o.external_agent_id = NEW.external_agent_id
               AND (o.valid_to IS NULL OR NEW.valid_from IS NULL OR NEW.valid_from < o.valid_to)
               AND (NEW.valid_to IS NULL OR o.valid_from IS NULL OR o.valid_from < NEW.valid_to))
BEGIN
    SELECT RAISE(ABORT, 'agent_id_owners_one_owner_at_a_time: the agent ID already has an owner during part of this period (an ID has at most one owner at any instant); end that period first');
END;

-- The references, enforced even where PRAGMA foreign_keys is off (as for the other mapping tables).
CREATE TRIGGER agent_id_owners_agent_fk_insert BEFORE INSERT ON agent_id_owners
WHEN NOT EXISTS (SELECT 1 FROM external_agent_ids WHERE id = NEW.external_agent_id)
BEGIN
    SELECT RAISE(ABORT, 'agent_id_owners_agent_fk: external_agent_id must name an existing agent ID');
END;
CREATE TRIGGER agent_id_owners_agent_fk_update BEFORE UPDATE OF external_agent_id ON agent_id_owners
WHEN NOT EXISTS (SELECT 1 FROM external_agent_ids WHERE id = NEW.external_agent_id)
BEGIN
    SELECT RAISE(ABORT, 'agent_id_owners_agent_fk: external_agent_id must name an existing agent ID');
END;
CREATE TRIGGER agent_id_owners_agent_fk_delete AFTER DELETE ON external_agent_ids
BEGIN
    DELETE FROM agent_id_owners WHERE external_agent_id = OLD.id;
END;
CREATE TRIGGER agent_id_owners_employee_fk_insert BEFORE INSERT ON agent_id_owners
WHEN NOT EXISTS (SELECT 1 FROM employees WHERE id = NEW.employee_id)
BEGIN
    SELECT RAISE(ABORT, 'agent_id_owners_employee_fk: employee_id must name an existing employee');
END;
CREATE TRIGGER agent_id_owners_employee_fk_update BEFORE UPDATE OF employee_id ON agent_id_owners
WHEN NOT EXISTS (SELECT 1 FROM employees WHERE id = NEW.employee_id)
BEGIN
    SELECT RAISE(ABORT, 'agent_id_owners_employee_fk: employee_id must name an existing employee');
END;
CREATE TRIGGER agent_id_owners_employee_fk_delete AFTER DELETE ON employees
BEGIN
    DELETE FROM agent_id_owners WHERE employee_id = OLD.id;
END;

-- external_agent_ids.employee_id stays, for DBAs and scripts that read it: the owner of the ID's open-ended
-- period (the current owner, or the one the ID is handed to from a later date), NULL when no period is
-- open-ended. The periods are the truth; this column follows them (written only when it differs).
CREATE TRIGGER agent_id_owners_employee_of_open_period_insert AFTER INSERT ON agent_id_owners
BEGIN
    UPDATE external_agent_ids
       SET employee_id = (SELECT o.employee_id FROM agent_id_owners o WHERE o.external_agent_id = external_agent_ids.id AND o.valid_to IS NULL)
     WHERE id = NEW.external_agent_id
       AND employee_id IS NOT (SELECT o.employee_id FROM agent_id_owners o WHERE o.external_agent_id = external_agent_ids.id AND o.valid_to IS NULL);
END;
CREATE TRIGGER agent_id_owners_employee_of_open_period_update AFTER UPDATE ON agent_id_owners
BEGIN
    UPDATE external_agent_ids
       SET employee_id = (SELECT o.employee_id FROM agent_id_owners o WHERE o.external_agent_id = external_agent_ids.id AND o.valid_to IS NULL)
     WHERE id IN (OLD.external_agent_id, NEW.external_agent_id)
       AND employee_id IS NOT (SELECT o.employee_id FROM agent_id_owners o WHERE o.external_agent_id = external_agent_ids.id AND o.valid_to IS NULL);
END;
CREATE TRIGGER agent_id_owners_employee_of_open_period_delete AFTER DELETE ON agent_id_owners
BEGIN
    UPDATE external_agent_ids
       SET employee_id = (SELECT o.employee_id FROM agent_id_owners o WHERE o.external_agent_id = external_agent_ids.id AND o.valid_to IS NULL)
     WHERE id = OLD.external_agent_id
       AND employee_id IS NOT (SELECT o.employee_id FROM agent_id_owners o WHERE o.external_agent_id = external_agent_ids.id AND o.valid_to IS NULL);
END;

-- And the other way, for DBAs and scripts written before this migration: writing external_agent_ids.employee_id
-- still means "this employee owns the ID from the beginning" (NULL: nobody ever did), so the ID's periods are
-- replaced by one unbounded period (or none). Not when the value is the open period's owner (the triggers
-- above writing it), nor for the NULL that deleting the employee writes (external_agent_ids_employee_fk's
-- ON DELETE SET NULL): that employee's periods go with it, the others are history to keep.
CREATE TRIGGER external_agent_ids_owned_from_beginning_insert AFTER INSERT ON external_agent_ids
WHEN NEW.employee_id IS NOT NULL
 AND NEW.employee_id IS NOT (SELECT o.employee_id FROM agent_id_owners o WHERE o.external_agent_id = NEW.id AND o.valid_to IS NULL)
BEGIN
    DELETE FROM agent_id_owners WHERE external_agent_id = NEW.id;
    INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from, valid_to)
    VALUES (NEW.id, NEW.employee_id, NULL, NULL);
END;
CREATE TRIGGER external_agent_ids_owned_from_beginning_update AFTER UPDATE OF employee_id ON external_agent_ids
WHEN NEW.employee_id IS NOT OLD.employee_id
 AND NEW.employee_id IS NOT (SELECT o.employee_id FROM agent_id_owners o WHERE o.external_agent_id = NEW.id AND o.valid_to IS NULL)
 AND (NEW.employee_id IS NOT NULL OR EXISTS (SELECT 1 FROM employees e WHERE e.id = OLD.employee_id))
BEGIN
    DELETE FROM agent_id_owners WHERE external_agent_id = NEW.id;
    INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from, valid_to)
    SELECT NEW.id, NEW.employee_id, NULL, NULL WHERE NEW.employee_id IS NOT NULL;
END;

-- 6. The view resolves each session by the owner of its agent ID at its start.
DROP VIEW external_activity;
CREATE VIEW external_activity AS
SELECT s.id AS session_id,
       s.external_system_id,
       es.name AS external_system,
       a.external_id AS external_agent_id,
       o.employee_id,
       c.code AS activity_code,
       COALESCE(c.activity_id, 1) AS activity_id,
       act.name AS activity_name,
       s.started_at,
       s.ended_at
FROM agent_sessions s
JOIN external_systems es ON es.id = s.external_system_id
JOIN external_agent_ids a ON a.id = s.external_agent_id
LEFT JOIN agent_id_owners o ON o.external_agent_id = s.external_agent_id
    AND (o.valid_from IS NULL OR o.valid_from <= s.started_at)
    AND (o.valid_to IS NULL OR s.started_at < o.valid_to)
LEFT JOIN external_activity_codes c ON c.id = s.external_activity_code_id
JOIN activities act ON act.id = COALESCE(c.activity_id, 1);
