-- acdsync extraction query: Genesys Info Mart 8.x (GIM), summarized agent states, voice, on PostgreSQL.
-- shape = "sessions" (GIM keeps state intervals with their start and end: no pairing needed).
-- Follows the GIM PostgreSQL physical data model (docs.genesys.com, PDMPostgre: Table-SM_RES_STATE_FACT,
-- Table-RESOURCE_STATE, Table-MEDIA_TYPE; GIM/latest/User/GIMDateTime); see ../shared/SOURCES.md §4.
-- Tested with PostgreSQL 15 through psqlODBC on a fixture in that layout (tests/integration/vendors.rs). GIM also
-- runs on Oracle and Microsoft SQL Server: the columns are the same; write the epoch arithmetic of your engine.
--
-- Time zone: START_TS and END_TS are UTC seconds since 1970 (read as instants whatever time_zone says; set
-- time_zone to the site's zone: it names the local days synced). The window's bounds reach the query as
-- instants ({..._utc}) and are turned into epoch seconds here.
-- Open states: GIM gives active facts a tentative future end; ACTIVE_FLAG = 1 marks them, so the end is
-- NULL then (never select open rows by END_TS).
-- Codes: the state's code (STATE_NAME_CODE: READY, NOT_READY, BUSY, ACW, ...); READY and BUSY (handling a
-- call) are the agent at work, with no code (Present). Not-ready reasons are in SM_RES_STATE_REASON_FACT,
-- whose join to the state fact is not confirmed in Genesys' documentation: add it once checked on your data.
-- One voice state per agent at a time (GIM summarizes the agent's DNs and queues by priority).

SELECT r.resource_name AS agent_id,
       CASE WHEN s.state_name_code IN ('READY', 'BUSY') THEN NULL ELSE s.state_name_code END AS activity_code,
       f.start_ts AS started_at,
       CASE WHEN f.active_flag = 1 THEN NULL ELSE f.end_ts END AS ended_at
FROM sm_res_state_fact f
JOIN resource_ r ON r.resource_key = f.resource_key
JOIN resource_state s ON s.resource_state_key = f.resource_state_key
JOIN media_type m ON m.media_type_key = f.media_type_key
WHERE m.media_name_code = 'VOICE'
  AND r.resource_type = 'Agent'
  AND f.start_ts >= EXTRACT(EPOCH FROM CAST({lookback_start_utc} AS timestamptz))
  AND f.start_ts < EXTRACT(EPOCH FROM CAST({window_end_utc} AS timestamptz))
  AND (f.start_ts >= EXTRACT(EPOCH FROM CAST({window_start_utc} AS timestamptz))
       OR f.active_flag = 1
       OR f.end_ts >= EXTRACT(EPOCH FROM CAST({window_start_utc} AS timestamptz)))
ORDER BY f.start_ts
