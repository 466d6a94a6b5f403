-- Incremental mode for event sources (shape = "events"): where each agent stands after the events up to
-- the system's watermark, so that a changes run reads only new events and goes on from there.
-- acdsync's own bookkeeping, written in the transaction that moves the watermark.
-- (PostgreSQL holds the same table with COMMENT ON for each column; see migrations/postgres.)
CREATE TABLE event_agent_states (
    external_system_id INTEGER NOT NULL,
    agent_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    open_started_at TEXT,
    open_activity_code TEXT,
    logged_out INTEGER NOT NULL,
    implicit_login INTEGER NOT NULL,
    last_event_at TEXT NOT NULL,
    CONSTRAINT event_agent_states_pkey PRIMARY KEY (external_system_id, agent_id),
    CONSTRAINT event_agent_states_system_fk FOREIGN KEY (external_system_id)
        REFERENCES external_systems (id) ON DELETE CASCADE,
    CONSTRAINT event_agent_states_code_needs_open CHECK (open_activity_code IS NULL OR open_started_at IS NOT NULL),
    CONSTRAINT event_agent_states_flags CHECK (logged_out IN (0, 1) AND implicit_login IN (0, 1)),
    CONSTRAINT event_agent_states_scopes_json CHECK (json_valid(scopes) AND json_type(scopes) = 'array')
) WITHOUT ROWID;
