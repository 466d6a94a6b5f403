-- acdsync extraction query: Cisco Unified CCE / Packaged CCE, historical table Agent_State_Trace (Logger or
-- AW-HDS database). shape = "events". Follows the ICM/IPCC Database Schema Handbook (6.0(0) Agent_State_Trace
-- p.2-40; 7.2(2) pp.58-60) and the UCCE 15.0(1) handbook's predefined reason codes; see ../shared/SOURCES.md §6.
-- UCCE keeps its databases in Microsoft SQL Server; this file was tested with PostgreSQL 15 through psqlODBC on
-- a fixture in the same layout (tests/integration/vendors.rs), the closest engine run here. The SQL is the
-- same for SQL Server (unquoted names are case-insensitive there); use Microsoft's ODBC driver.
--
-- What it needs: Agent_State_Trace is written only for agents with agent state tracing enabled (the agent's
-- "Enable agent state trace" setting in Configuration Manager). Without it, Agent_Logout (one row per
-- session, written at the logout: LogoutDateTime, LoginDuration) holds logins only; it is not read here.
-- Time zone: DateTime is the Central Controller's date and time (local, beside a TimeZone offset column that
-- is not read): set time_zone to the Central Controller's (Logger's) zone, not necessarily the site's.
-- Media routing domains: an agent logs in to each MRD (voice, chat, email) on its own and has a state in
-- each. This file reads one: MRDomainID 1 below, usually Cisco_Voice; put your voice MRD's ID there.
-- States (AgentState, the state entered): 1 LOGGED_ON -> login; 0 LOGGED_OFF -> logout; 2 NOT_READY -> state
--   with ReasonCode as its code ("0" when none was given; system codes such as 32767 "redirected on no answer",
--   50002 "CTI client failed", 999 "supervisor forced" come as they are); 3 READY and the call states 4
--   TALKING, 7 BUSY_OTHER, 8 RESERVED, 9-13 (call initiated, held, retrieved, transferred, conferenced) ->
--   state with no code (the agent at work); 5 WORK_NOT_READY, 6 WORK_READY -> state 'WORK' (after-call work);
--   14 Unknown is left out. The reason of a logout is not kept (a logout ends the session).
-- Agents: SkillTargetID, the agent's ID in UCCE (map it to employees). For the peripheral login ID instead,
-- join Agent (SkillTargetID, PeripheralNumber) and select PeripheralNumber.
-- Order: RecoveryKey, which the Central Controller gives each row in the order it writes them (a FLOAT holding
-- an integer), is the sequence. Rows reach the HDS late (replication): a full sync of a day reads them when they
-- are there. Incremental mode is not advised on the HDS (a late row may carry a key below the watermark).

SELECT CAST(t.SkillTargetID AS varchar(12)) AS agent_id,
       t.DateTime AS event_time,
       CASE t.AgentState WHEN 1 THEN 'login' WHEN 0 THEN 'logout' ELSE 'state' END AS event,
       CASE
         WHEN t.AgentState = 2 THEN CAST(COALESCE(t.ReasonCode, 0) AS varchar(12))
         WHEN t.AgentState IN (5, 6) THEN 'WORK'
       END AS activity_code,
       CAST(NULL AS varchar(1)) AS scope,
       CAST(t.RecoveryKey AS bigint) AS sequence
FROM Agent_State_Trace t
WHERE t.DateTime >= {lookback_start}
  AND t.DateTime < {window_end}
  AND t.MRDomainID = 1
  AND t.AgentState BETWEEN 0 AND 13
ORDER BY t.RecoveryKey
