-- The WFM schema acdsync writes, SQLite flavour of migrations/postgres (same names, same rules).
-- Timestamps are UTC, stored as text 'YYYY-MM-DD HH:MM:SS[.ffffff]' (what Diesel writes), so they sort and compare as text.
-- SQLite checks foreign keys only with PRAGMA foreign_keys = ON. acdsync sets it on every connection, but the stock
-- sqlite3 shell does not: the triggers at the end enforce the mapping rules' references whatever the client.

CREATE TABLE activities (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    CONSTRAINT activities_name_key UNIQUE (name),
    CONSTRAINT activities_name_not_blank CHECK (trim(name) <> '')
);
INSERT INTO activities (id, name) VALUES (1, 'Present');

CREATE TRIGGER activities_keep_present_delete BEFORE DELETE ON activities
WHEN OLD.id = 1
BEGIN
    SELECT RAISE(ABORT, 'activity 1 (Present) is the system activity new codes are assigned to: it cannot be deleted or renumbered');
END;
CREATE TRIGGER activities_keep_present_update BEFORE UPDATE OF id ON activities
WHEN OLD.id = 1
BEGIN
    SELECT RAISE(ABORT, 'activity 1 (Present) is the system activity new codes are assigned to: it cannot be deleted or renumbered');
END;

CREATE TABLE employees (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    CONSTRAINT employees_name_not_blank CHECK (trim(name) <> '')
);

CREATE TABLE external_systems (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    CONSTRAINT external_systems_name_key UNIQUE (name)
);

CREATE TABLE external_activity_codes (
    id INTEGER PRIMARY KEY,
    external_system_id INTEGER NOT NULL,
    code TEXT NOT NULL,
    activity_id INTEGER NOT NULL DEFAULT 1,
    first_seen_at TEXT,
    last_seen_at TEXT,
    CONSTRAINT external_activity_codes_one_owner UNIQUE (external_system_id, code),
    CONSTRAINT external_activity_codes_id_system_key UNIQUE (id, external_system_id),
    CONSTRAINT external_activity_codes_system_fk FOREIGN KEY (external_system_id) REFERENCES external_systems (id),
    CONSTRAINT external_activity_codes_activity_fk FOREIGN KEY (activity_id) REFERENCES activities (id),
    CONSTRAINT external_activity_codes_seen_order CHECK (first_seen_at <= last_seen_at),
    CONSTRAINT external_activity_codes_time_format CHECK ((first_seen_at IS NULL OR (first_seen_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]' OR (first_seen_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]' AND substr(first_seen_at, 21, 3) <> '000') OR (first_seen_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]' AND substr(first_seen_at, 24, 3) <> '000'))) AND (last_seen_at IS NULL OR (last_seen_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]' OR (last_seen_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]' AND substr(last_seen_at, 21, 3) <> '000') OR (last_seen_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]' AND substr(last_seen_at, 24, 3) <> '000'))))
);
CREATE INDEX external_activity_codes_activity_idx ON external_activity_codes (activity_id);

CREATE TABLE external_agent_ids (
    id INTEGER PRIMARY KEY,
    external_system_id INTEGER NOT NULL,
    external_id TEXT NOT NULL,
    employee_id INTEGER,
    first_seen_at TEXT,
    last_seen_at TEXT,
    CONSTRAINT external_agent_ids_one_owner UNIQUE (external_system_id, external_id),
    CONSTRAINT external_agent_ids_id_system_key UNIQUE (id, external_system_id),
    CONSTRAINT external_agent_ids_system_fk FOREIGN KEY (external_system_id) REFERENCES external_systems (id),
    CONSTRAINT external_agent_ids_employee_fk FOREIGN KEY (employee_id) REFERENCES employees (id) ON DELETE SET NULL,
    CONSTRAINT external_agent_ids_seen_order CHECK (first_seen_at <= last_seen_at),
    CONSTRAINT external_agent_ids_time_format CHECK ((first_seen_at IS NULL OR (first_seen_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]' OR (first_seen_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]' AND substr(first_seen_at, 21, 3) <> '000') OR (first_seen_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]' AND substr(first_seen_at, 24, 3) <> '000'))) AND (last_seen_at IS NULL OR (last_seen_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]' OR (last_seen_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]' AND substr(last_seen_at, 21, 3) <> '000') OR (last_seen_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]' AND substr(last_seen_at, 24, 3) <> '000'))))
);
CREATE INDEX external_agent_ids_employee_idx ON external_agent_ids (employee_id);

CREATE TABLE import_runs (
    id INTEGER PRIMARY KEY,
    external_system_id INTEGER NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    rows_read INTEGER NOT NULL DEFAULT 0,
    sessions_inserted INTEGER NOT NULL DEFAULT 0,
    sessions_updated INTEGER NOT NULL DEFAULT 0,
    sessions_deleted INTEGER NOT NULL DEFAULT 0,
    sessions_unchanged INTEGER NOT NULL DEFAULT 0,
    rows_rejected INTEGER NOT NULL DEFAULT 0,
    new_agent_ids INTEGER NOT NULL DEFAULT 0,
    new_activity_codes INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    CONSTRAINT import_runs_system_fk FOREIGN KEY (external_system_id) REFERENCES external_systems (id),
    CONSTRAINT import_runs_status_known CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned')),
    CONSTRAINT import_runs_window_order CHECK (window_start < window_end AND first_day <= last_day)
);
CREATE INDEX import_runs_system_started_idx ON import_runs (external_system_id, started_at);

CREATE TABLE agent_sessions (
    id INTEGER PRIMARY KEY,
    external_system_id INTEGER NOT NULL,
    external_agent_id INTEGER NOT NULL,
    external_activity_code_id INTEGER,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    CONSTRAINT agent_sessions_one_per_agent_start UNIQUE (external_system_id, started_at, external_agent_id),
    CONSTRAINT agent_sessions_agent_fk FOREIGN KEY (external_agent_id, external_system_id)
        REFERENCES external_agent_ids (id, external_system_id),
    CONSTRAINT agent_sessions_code_fk FOREIGN KEY (external_activity_code_id, external_system_id)
        REFERENCES external_activity_codes (id, external_system_id),
    CONSTRAINT agent_sessions_end_after_start CHECK (ended_at IS NULL OR ended_at >= started_at),
    -- Text timestamps compare as text, so one spelling per instant (UTC, as Diesel writes them):
    -- 'YYYY-MM-DD HH:MM:SS', then '.fff' for whole milliseconds or '.ffffff', never a zero fraction.
    CONSTRAINT agent_sessions_time_format CHECK ((started_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]' OR (started_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]' AND substr(started_at, 21, 3) <> '000') OR (started_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]' AND substr(started_at, 24, 3) <> '000')) AND (ended_at IS NULL OR (ended_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]' OR (ended_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9]' AND substr(ended_at, 21, 3) <> '000') OR (ended_at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]' AND substr(ended_at, 24, 3) <> '000'))))
);
CREATE INDEX agent_sessions_open_idx ON agent_sessions (external_system_id, started_at) WHERE ended_at IS NULL;

CREATE TABLE rejected_rows (
    id INTEGER PRIMARY KEY,
    import_run_id INTEGER NOT NULL,
    source_row INTEGER NOT NULL,
    field TEXT NOT NULL,
    reason TEXT NOT NULL,
    agent_id TEXT,
    activity_code TEXT,
    started_at TEXT,
    ended_at TEXT,
    CONSTRAINT rejected_rows_run_fk FOREIGN KEY (import_run_id) REFERENCES import_runs (id) ON DELETE CASCADE
);
CREATE INDEX rejected_rows_run_idx ON rejected_rows (import_run_id);

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

-- The references of the mapping rules, enforced even where PRAGMA foreign_keys is off (the sqlite3 shell's
-- default). Each trigger is named after the PostgreSQL constraint it stands for.
CREATE TRIGGER external_activity_codes_activity_fk_insert BEFORE INSERT ON external_activity_codes
WHEN NEW.activity_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM activities WHERE id = NEW.activity_id)
BEGIN
    SELECT RAISE(ABORT, 'external_activity_codes_activity_fk: activity_id must name an existing activity');
END;
CREATE TRIGGER external_activity_codes_activity_fk_update BEFORE UPDATE OF activity_id ON external_activity_codes
WHEN NEW.activity_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM activities WHERE id = NEW.activity_id)
BEGIN
    SELECT RAISE(ABORT, 'external_activity_codes_activity_fk: activity_id must name an existing activity');
END;
CREATE TRIGGER external_activity_codes_activity_fk_delete BEFORE DELETE ON activities
WHEN OLD.id <> 1 AND EXISTS (SELECT 1 FROM external_activity_codes WHERE activity_id = OLD.id)
BEGIN
    SELECT RAISE(ABORT, 'external_activity_codes_activity_fk: activity codes are mapped to this activity; map them elsewhere first');
END;
CREATE TRIGGER external_agent_ids_employee_fk_insert BEFORE INSERT ON external_agent_ids
WHEN NEW.employee_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM employees WHERE id = NEW.employee_id)
BEGIN
    SELECT RAISE(ABORT, 'external_agent_ids_employee_fk: employee_id must name an existing employee');
END;
CREATE TRIGGER external_agent_ids_employee_fk_update BEFORE UPDATE OF employee_id ON external_agent_ids
WHEN NEW.employee_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM employees WHERE id = NEW.employee_id)
BEGIN
    SELECT RAISE(ABORT, 'external_agent_ids_employee_fk: employee_id must name an existing employee');
END;
CREATE TRIGGER external_agent_ids_employee_fk_delete AFTER DELETE ON employees
BEGIN
    UPDATE external_agent_ids SET employee_id = NULL WHERE employee_id = OLD.id;
END;
CREATE TRIGGER external_agent_ids_system_fk_insert BEFORE INSERT ON external_agent_ids
WHEN NOT EXISTS (SELECT 1 FROM external_systems WHERE id = NEW.external_system_id)
BEGIN
    SELECT RAISE(ABORT, 'external_agent_ids_system_fk: external_system_id must name an existing external system');
END;
CREATE TRIGGER external_activity_codes_system_fk_insert BEFORE INSERT ON external_activity_codes
WHEN NOT EXISTS (SELECT 1 FROM external_systems WHERE id = NEW.external_system_id)
BEGIN
    SELECT RAISE(ABORT, 'external_activity_codes_system_fk: external_system_id must name an existing external system');
END;
CREATE TRIGGER agent_sessions_agent_fk_delete BEFORE DELETE ON external_agent_ids
WHEN EXISTS (SELECT 1 FROM agent_sessions WHERE external_agent_id = OLD.id)
BEGIN
    SELECT RAISE(ABORT, 'agent_sessions_agent_fk: sessions of this agent ID are stored; it cannot be deleted');
END;
CREATE TRIGGER agent_sessions_code_fk_delete BEFORE DELETE ON external_activity_codes
WHEN EXISTS (SELECT 1 FROM agent_sessions WHERE external_activity_code_id = OLD.id)
BEGIN
    SELECT RAISE(ABORT, 'agent_sessions_code_fk: sessions with this code are stored; it cannot be deleted');
END;
