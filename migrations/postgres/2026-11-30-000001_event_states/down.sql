DROP TABLE event_agent_states;
