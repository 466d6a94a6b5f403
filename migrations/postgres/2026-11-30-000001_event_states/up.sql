-- Incremental mode for event sources (shape = "events"): where each agent stands after the events up to
-- the system's watermark, so that a changes run reads only new events and goes on from there.
-- acdsync's own bookkeeping, written in the transaction that moves the watermark.
CREATE TABLE event_agent_states (
    external_system_id bigint NOT NULL,
    agent_id text NOT NULL,
    scopes text NOT NULL,
    open_started_at timestamptz,
    open_activity_code text,
    logged_out boolean NOT NULL,
    implicit_login boolean NOT NULL,
    last_event_at timestamptz NOT NULL,
    CONSTRAINT event_agent_states_pkey PRIMARY KEY (external_system_id, agent_id),
    CONSTRAINT event_agent_states_system_fk FOREIGN KEY (external_system_id)
        REFERENCES external_systems (id) ON DELETE CASCADE,
    CONSTRAINT event_agent_states_code_needs_open CHECK (open_activity_code IS NULL OR open_started_at IS NOT NULL),
    CONSTRAINT event_agent_states_scopes_json CHECK (jsonb_typeof(scopes::jsonb) = 'array')
);
COMMENT ON TABLE event_agent_states IS 'Incremental mode for event sources: each agent''s state after the events up to external_systems.watermark (the queues it is in, its open session). A changes run starts from here; a full sync of today writes it anew. To start again, set the system''s watermark to NULL: the next run is a full sync that writes both.';
COMMENT ON COLUMN event_agent_states.agent_id IS 'The agent ID as the events query returns it.';
COMMENT ON COLUMN event_agent_states.scopes IS 'The scopes (queues) the agent is in, as a JSON array of strings ("" for a login with no scope).';
COMMENT ON COLUMN event_agent_states.open_started_at IS 'The start (UTC) of the agent''s open session, stored in agent_sessions with no end; NULL when none is open.';
COMMENT ON COLUMN event_agent_states.open_activity_code IS 'The activity code of the open session (NULL: no code).';
COMMENT ON COLUMN event_agent_states.logged_out IS 'The agent''s last login was closed by a logout (a later logout or return to ready changes nothing).';
COMMENT ON COLUMN event_agent_states.implicit_login IS 'Logged in by a state with no login read (a login older than the events read): its scopes are those of its states.';
COMMENT ON COLUMN event_agent_states.last_event_at IS 'The instant (UTC) of the agent''s latest event: the latest of all tells a changes run which pass of the hour the clocks go back a wall time is in.';
