-- The mass-delete guard (src/sync/guard.rs): a full sync that would delete most of its window, or that read
-- nothing for a window holding sessions, is refused and rolled back; its run is `refused`, with the numbers
-- in `error`. A sync let through by --allow-mass-delete says what it let through in mass_delete_override.
-- SQLite cannot change a CHECK constraint: import_runs is rebuilt with its rows, as SQLite documents
-- (https://www.sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema Changes"), outside diesel's
-- transaction (metadata.toml) so that foreign keys can be off while the table is replaced: rejected_rows
-- refers to it, and a DROP TABLE with foreign keys on would delete their rows.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE import_runs_new (
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
    mode text NOT NULL DEFAULT 'full'
        CONSTRAINT import_runs_mode_known CHECK (mode IN ('full', 'changes')),
    watermark text,
    mass_delete_override text,
    CONSTRAINT import_runs_system_fk FOREIGN KEY (external_system_id) REFERENCES external_systems (id),
    CONSTRAINT import_runs_status_known CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned', 'interrupted', 'refused')),
    CONSTRAINT import_runs_window_order CHECK (window_start < window_end AND first_day <= last_day)
);
INSERT INTO import_runs_new (id, external_system_id, first_day, last_day, window_start, window_end, started_at, finished_at, status, rows_read, sessions_inserted, sessions_updated, sessions_deleted, sessions_unchanged, rows_rejected, new_agent_ids, new_activity_codes, error, host, pid, mode, watermark)
    SELECT id, external_system_id, first_day, last_day, window_start, window_end, started_at, finished_at, status, rows_read, sessions_inserted, sessions_updated, sessions_deleted, sessions_unchanged, rows_rejected, new_agent_ids, new_activity_codes, error, host, pid, mode, watermark FROM import_runs;
DROP TABLE import_runs;
ALTER TABLE import_runs_new RENAME TO import_runs;
CREATE INDEX import_runs_system_started_idx ON import_runs (external_system_id, started_at);
CREATE INDEX import_runs_system_mode_idx ON import_runs (external_system_id, mode, started_at);
COMMIT;
PRAGMA foreign_keys = ON;
