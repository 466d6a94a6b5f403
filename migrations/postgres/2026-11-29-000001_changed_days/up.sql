-- Local days that changes runs (incremental mode) wrote to since the day's last full sync: the next
-- periodic full sync reads each again, so that a start corrected in the source leaves no duplicate.
CREATE TABLE changed_days (
    external_system_id bigint NOT NULL,
    day date NOT NULL,
    CONSTRAINT changed_days_pkey PRIMARY KEY (external_system_id, day),
    CONSTRAINT changed_days_system_fk FOREIGN KEY (external_system_id)
        REFERENCES external_systems (id) ON DELETE CASCADE
);
COMMENT ON TABLE changed_days IS 'Local days of an incremental system that changes runs inserted or updated sessions in since the day''s last full sync. The periodic full sync of today reads each of them again (a changes run cannot delete: a start corrected in the source would otherwise leave the old session beside the new one); a full sync of a day removes it from here.';
COMMENT ON COLUMN changed_days.day IS 'A local day (the system''s time zone) holding the start of a session a changes run wrote.';
