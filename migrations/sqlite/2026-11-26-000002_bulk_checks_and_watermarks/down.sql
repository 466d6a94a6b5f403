DROP INDEX import_runs_system_mode_idx;
ALTER TABLE import_runs DROP COLUMN watermark;
ALTER TABLE import_runs DROP COLUMN mode;
DROP TRIGGER external_systems_watermark_has_kind_update;
DROP TRIGGER external_systems_watermark_has_kind_insert;
ALTER TABLE external_systems DROP COLUMN watermark_updated_at;
ALTER TABLE external_systems DROP COLUMN watermark_kind;
ALTER TABLE external_systems DROP COLUMN watermark;
