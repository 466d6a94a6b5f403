-- Incremental mode (issue 6): each system's watermark, moved in the transaction that writes what it covers.
-- (SQLite keeps agent_sessions' foreign keys: in-process, a per-row check costs an index probe, not a trip.)
ALTER TABLE external_systems ADD COLUMN watermark text;
ALTER TABLE external_systems ADD COLUMN watermark_kind text
    CONSTRAINT external_systems_watermark_kind_known CHECK (watermark_kind IN ('integer', 'timestamp'));
ALTER TABLE external_systems ADD COLUMN watermark_updated_at text;
CREATE TRIGGER external_systems_watermark_has_kind_insert BEFORE INSERT ON external_systems
WHEN (NEW.watermark IS NULL) <> (NEW.watermark_kind IS NULL)
BEGIN
    SELECT RAISE(ABORT, 'external_systems_watermark_has_kind: watermark and watermark_kind are set together');
END;
CREATE TRIGGER external_systems_watermark_has_kind_update BEFORE UPDATE OF watermark, watermark_kind ON external_systems
WHEN (NEW.watermark IS NULL) <> (NEW.watermark_kind IS NULL)
BEGIN
    SELECT RAISE(ABORT, 'external_systems_watermark_has_kind: watermark and watermark_kind are set together');
END;

ALTER TABLE import_runs ADD COLUMN mode text NOT NULL DEFAULT 'full'
    CONSTRAINT import_runs_mode_known CHECK (mode IN ('full', 'changes'));
ALTER TABLE import_runs ADD COLUMN watermark text;
CREATE INDEX import_runs_system_mode_idx ON import_runs (external_system_id, mode, started_at);
