-- Local days that changes runs (incremental mode) wrote to since the day's last full sync: the next
-- periodic full sync reads each again, so that a start corrected in the source leaves no duplicate.
-- (PostgreSQL holds the same table with COMMENT ON; see migrations/postgres.)
CREATE TABLE changed_days (
    external_system_id INTEGER NOT NULL,
    day TEXT NOT NULL,
    CONSTRAINT changed_days_pkey PRIMARY KEY (external_system_id, day),
    CONSTRAINT changed_days_system_fk FOREIGN KEY (external_system_id)
        REFERENCES external_systems (id) ON DELETE CASCADE,
    CONSTRAINT changed_days_day_format CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]')
) WITHOUT ROWID;
