//! Ready files for ACDs whose engine does not run here (Genesys Info Mart on Oracle/SQL Server/PostgreSQL, Cisco
//! UCCX on Informix, Cisco UCCE and Genesys PureConnect on SQL Server): each on a PostgreSQL fixture in the vendor's table layout, read through psqlODBC, compared
//! with the sessions a person writes down.

use std::path::Path;

use acdsync::config::{ExternalSystemConfig, WindowParameters};
use acdsync::source::query::{QueryKind, SourceQuery};

use crate::common::*;

fn system(source: &Source, file: &str, zone: &str, kind: QueryKind) -> ExternalSystemConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sql/sources")
        .join(file);
    let query = SourceQuery::load(&path, kind).unwrap();
    ExternalSystemConfig::new(
        "acd",
        zone,
        query,
        &source.connection_string,
        WindowParameters::Bound,
    )
    .unwrap()
}

#[test]
fn genesys_info_mart_voice_states_with_epoch_times_and_an_active_fact() {
    // Given GIM's state facts (epoch UTC) for one agent, voice and email, the last voice state still active
    // with GIM's tentative future end
    let source = Source::new(SourceKind::Postgres);
    for ddl in [
        "CREATE TABLE resource_ (resource_key integer PRIMARY KEY, resource_type varchar(255), resource_name varchar(255))",
        "CREATE TABLE resource_state (resource_state_key integer PRIMARY KEY, state_type varchar(64), state_name varchar(64), state_name_code varchar(32))",
        "CREATE TABLE media_type (media_type_key integer PRIMARY KEY, media_name varchar(64), media_name_code varchar(32))",
        "CREATE TABLE sm_res_state_fact (sm_res_state_fact_key numeric(19) PRIMARY KEY, start_ts integer, end_ts integer, resource_key integer, resource_state_key integer, media_type_key integer, active_flag numeric(1))",
        "INSERT INTO resource_ VALUES (1, 'Agent', 'jdoe'), (2, 'Queue', 'sales')",
        "INSERT INTO resource_state VALUES (1, 'Ready', 'Ready', 'READY'), (2, 'NotReady', 'Not Ready', 'NOT_READY'), (3, 'Busy', 'Busy', 'BUSY'), (4, 'AfterCallWork', 'After Call Work', 'ACW')",
        "INSERT INTO media_type VALUES (1, 'Voice', 'VOICE'), (2, 'E-mail', 'EMAIL')",
        "INSERT INTO sm_res_state_fact VALUES \
           (10, 1768464000, 1768467600, 1, 1, 1, 0), \
           (11, 1768467600, 1768468200, 1, 3, 1, 0), \
           (12, 1768468200, 1768468320, 1, 4, 1, 0), \
           (13, 1768468320, 1768471200, 1, 2, 1, 0), \
           (14, 1768471200, 2145916800, 1, 1, 1, 1), \
           (15, 1768464000, 1768471200, 1, 3, 2, 0)",
    ] {
        source.execute(ddl);
    }
    let system = system(
        &source,
        "genesys_infomart_states.postgresql.sql",
        "Europe/Paris",
        QueryKind::Window,
    );
    let store = TestStore::new(StoreKind::Sqlite);

    // When the day is synced
    let r = store.sync(&system, day("2026-01-15")).unwrap();

    // Then the voice states are the sessions, READY and BUSY with no code, the active one open
    assert_eq!(r.counts.rejected, 0);
    assert_eq!(
        sessions_as(&store, "%Y-%m-%d %H:%M:%S%.3f"),
        sessions_text(&[
            (
                "jdoe",
                None,
                "2026-01-15 08:00:00.000",
                Some("2026-01-15 09:00:00.000")
            ),
            (
                "jdoe",
                None,
                "2026-01-15 09:00:00.000",
                Some("2026-01-15 09:10:00.000")
            ),
            (
                "jdoe",
                Some("ACW"),
                "2026-01-15 09:10:00.000",
                Some("2026-01-15 09:12:00.000")
            ),
            (
                "jdoe",
                Some("NOT_READY"),
                "2026-01-15 09:12:00.000",
                Some("2026-01-15 10:00:00.000")
            ),
            ("jdoe", None, "2026-01-15 10:00:00.000", None),
        ])
    );
}

#[test]
fn cisco_uccx_agent_state_detail_paired_from_its_event_types() {
    // Given UCCX's AgentStateDetail (GMT, milliseconds) for one agent, and its Resource rows (an inactive
    // profile too)
    let source = Source::new(SourceKind::Postgres);
    source.execute("CREATE TABLE resource (resourceid integer, profileid integer, resourceloginid varchar(50), resourcename varchar(50), active boolean)");
    source.execute("INSERT INTO resource VALUES (5, 1, 'jsmith', 'John Smith', true), (5, 2, 'jsmith-old', 'John Smith', false)");
    source.execute("CREATE TABLE agentstatedetail (agentid integer, eventdatetime timestamp(3), gmtoffset smallint, eventtype smallint, reasoncode smallint, profileid integer)");
    let events = [
        ("07:59:58.120", 1, 0),
        ("07:59:58.120", 2, 32760),
        ("08:00:30.000", 3, 0),
        ("08:10:00.000", 4, 0),
        ("08:10:02.500", 5, 0),
        ("08:15:00.000", 6, 0),
        ("08:16:00.000", 3, 0),
        ("12:00:00.000", 2, 5),
        ("12:45:00.000", 3, 0),
        ("16:00:00.000", 7, 0),
    ];
    for (at, kind, reason) in events {
        source.execute(&format!(
            "INSERT INTO agentstatedetail VALUES (5, '2026-01-15 {at}', 0, {kind}, {reason}, 1)"
        ));
    }
    let system = system(
        &source,
        "cisco_uccx_agentstatedetail.postgresql.sql",
        "Europe/Paris",
        QueryKind::Events,
    );
    let store = TestStore::new(StoreKind::Sqlite);

    // When the day is synced
    let r = store.sync(&system, day("2026-01-15")).unwrap();

    // Then: Not Ready with the logon reason from the login's millisecond, at work (Ready, Reserved, Talking) with
    // no code, Work as WORK, lunch as reason 5, until the logout
    assert_eq!(r.counts.rejected, 0);
    assert_eq!(
        sessions_as(&store, "%Y-%m-%d %H:%M:%S%.3f"),
        sessions_text(&[
            (
                "jsmith",
                Some("32760"),
                "2026-01-15 07:59:58.120",
                Some("2026-01-15 08:00:30.000")
            ),
            (
                "jsmith",
                None,
                "2026-01-15 08:00:30.000",
                Some("2026-01-15 08:15:00.000")
            ),
            (
                "jsmith",
                Some("WORK"),
                "2026-01-15 08:15:00.000",
                Some("2026-01-15 08:16:00.000")
            ),
            (
                "jsmith",
                None,
                "2026-01-15 08:16:00.000",
                Some("2026-01-15 12:00:00.000")
            ),
            (
                "jsmith",
                Some("5"),
                "2026-01-15 12:00:00.000",
                Some("2026-01-15 12:45:00.000")
            ),
            (
                "jsmith",
                None,
                "2026-01-15 12:45:00.000",
                Some("2026-01-15 16:00:00.000")
            ),
        ])
    );
}

#[test]
fn avaya_cms_haglog_one_session_per_login_across_splits() {
    // Given CMS's haglog (epoch seconds): agent 4711 logged into two splits from a night shift, then again in
    // the afternoon; agent 4712 once
    let source = Source::new(SourceKind::Postgres);
    source.execute("CREATE TABLE haglog (acd smallint, split smallint, extn char(6), logid char(10), loc_id integer, login integer, logout integer, logout_date date, logout_reason smallint, inflag char(1), outflag char(1), row_date date)");
    for (split, logid, login, logout) in [
        (1, "4711", 1768426200, 1768455000),
        (2, "4711", 1768426200, 1768455000),
        (1, "4711", 1768491000, 1768496400),
        (2, "4712", 1768460400, 1768492800),
    ] {
        source.execute(&format!(
            "INSERT INTO haglog VALUES (1, {split}, '50{split}', '{logid}', 0, {login}, {logout}, '2026-01-15', 0, ' ', ' ', '2026-01-15')"
        ));
    }
    let system = system(
        &source,
        "avaya_cms_haglog.postgresql.sql",
        "Europe/Paris",
        QueryKind::Window,
    );
    let store = TestStore::new(StoreKind::Sqlite);

    // When the day is synced
    let r = store.sync(&system, day("2026-01-15")).unwrap();

    // Then each login is one session, whatever the number of splits, the night shift from the evening before
    assert_eq!((r.counts.inserted, r.counts.rejected), (3, 0));
    assert_eq!(
        sessions_as(&store, "%Y-%m-%d %H:%M:%S%.3f"),
        sessions_text(&[
            (
                "4711",
                None,
                "2026-01-14 21:30:00.000",
                Some("2026-01-15 05:30:00.000")
            ),
            (
                "4711",
                None,
                "2026-01-15 15:30:00.000",
                Some("2026-01-15 17:00:00.000")
            ),
            (
                "4712",
                None,
                "2026-01-15 07:00:00.000",
                Some("2026-01-15 16:00:00.000")
            ),
        ])
    );
}

#[test]
fn cisco_ucce_agent_state_trace_paired_from_its_agent_states() {
    // Given UCCE's Agent_State_Trace (Central Controller time, New York) in the handbook's layout: agent 5001's
    // voice day (a chat row to leave out, a system reason), 5002's night shift from the evening before, 5003
    // still logged in at midnight; RecoveryKey in the order the rows were written
    let source = Source::new(SourceKind::Postgres);
    source.execute("CREATE TABLE agent_state_trace (datetime timestamp(3) NOT NULL, skilltargetid integer NOT NULL, timezone integer NOT NULL, mrdomainid integer NOT NULL, eventname integer, agentstate integer, reasoncode integer, skillgroupskilltargetid integer, direction integer, icrcallkey integer, peripheralcallkey integer, recoverykey float NOT NULL, PRIMARY KEY (datetime, skilltargetid, timezone, mrdomainid))");
    let rows: [(&str, i32, i32, i32, i32); 19] = [
        // (DateTime, SkillTargetID, MRDomainID, AgentState, ReasonCode)
        ("2026-01-14 22:00:00.000", 5002, 1, 1, 0),
        ("2026-01-14 22:00:00.500", 5002, 1, 3, 0),
        ("2026-01-15 02:00:00.000", 5002, 1, 2, 6),
        ("2026-01-15 02:15:00.000", 5002, 1, 3, 0),
        ("2026-01-15 06:00:00.000", 5002, 1, 0, 0),
        ("2026-01-15 08:00:00.000", 5001, 1, 1, 0),
        ("2026-01-15 08:00:00.010", 5001, 1, 2, 0),
        ("2026-01-15 08:01:00.000", 5001, 1, 3, 0),
        ("2026-01-15 08:05:00.000", 5001, 1, 8, 0),
        ("2026-01-15 08:05:03.000", 5001, 1, 4, 0),
        ("2026-01-15 08:10:00.000", 5001, 1, 5, 0),
        ("2026-01-15 08:11:00.000", 5001, 1, 3, 0),
        ("2026-01-15 09:00:00.000", 5001, 2, 1, 0),
        ("2026-01-15 12:00:00.000", 5001, 1, 2, 3),
        ("2026-01-15 14:00:00.000", 5001, 1, 2, 32767),
        ("2026-01-15 14:02:00.000", 5001, 1, 3, 0),
        ("2026-01-15 17:00:00.000", 5001, 1, 0, 0),
        ("2026-01-15 23:30:00.000", 5003, 1, 1, 0),
        ("2026-01-16 02:00:00.000", 5003, 1, 0, 0),
    ];
    for (i, (at, agent, mrd, state, reason)) in rows.iter().enumerate() {
        source.execute(&format!(
            "INSERT INTO agent_state_trace (datetime, skilltargetid, timezone, mrdomainid, eventname, agentstate, reasoncode, recoverykey) \
             VALUES ('{at}', {agent}, -300, {mrd}, {state}, {state}, {reason}, {})",
            9.0e9 + i as f64
        ));
    }
    let system = system(
        &source,
        "cisco_ucce_agent_state_trace.postgresql.sql",
        "America/New_York",
        QueryKind::Events,
    );
    let store = TestStore::new(StoreKind::Sqlite);

    // When the day is synced
    let r = store.sync(&system, day("2026-01-15")).unwrap();

    // Then (UTC, New York + 5 h): Not Ready with no reason ("0") from the login, at work (Ready, Reserved,
    // Talking) with no code, after-call work as WORK, lunch as reason 3, RONA as 32767, until the logout; the
    // chat domain's row changes nothing; the night shift from the evening before and the login open at midnight
    // (closed at 02:00 on the next day, read ahead)
    assert_eq!(r.counts.rejected, 0);
    assert_eq!(
        sessions_as(&store, "%Y-%m-%d %H:%M:%S%.3f"),
        sessions_text(&[
            (
                "5001",
                None,
                "2026-01-15 13:00:00.000",
                Some("2026-01-15 13:00:00.010")
            ),
            (
                "5001",
                Some("0"),
                "2026-01-15 13:00:00.010",
                Some("2026-01-15 13:01:00.000")
            ),
            (
                "5001",
                None,
                "2026-01-15 13:01:00.000",
                Some("2026-01-15 13:10:00.000")
            ),
            (
                "5001",
                Some("WORK"),
                "2026-01-15 13:10:00.000",
                Some("2026-01-15 13:11:00.000")
            ),
            (
                "5001",
                None,
                "2026-01-15 13:11:00.000",
                Some("2026-01-15 17:00:00.000")
            ),
            (
                "5001",
                Some("3"),
                "2026-01-15 17:00:00.000",
                Some("2026-01-15 19:00:00.000")
            ),
            (
                "5001",
                Some("32767"),
                "2026-01-15 19:00:00.000",
                Some("2026-01-15 19:02:00.000")
            ),
            (
                "5001",
                None,
                "2026-01-15 19:02:00.000",
                Some("2026-01-15 22:00:00.000")
            ),
            (
                "5002",
                None,
                "2026-01-15 03:00:00.000",
                Some("2026-01-15 07:00:00.000")
            ),
            (
                "5002",
                Some("6"),
                "2026-01-15 07:00:00.000",
                Some("2026-01-15 07:15:00.000")
            ),
            (
                "5002",
                None,
                "2026-01-15 07:15:00.000",
                Some("2026-01-15 11:00:00.000")
            ),
            (
                "5003",
                None,
                "2026-01-16 04:30:00.000",
                Some("2026-01-16 07:00:00.000")
            ),
        ])
    );
}

#[test]
fn genesys_pureconnect_agent_activity_log_paired_from_its_statuses() {
    // Given CIC's AgentActivityLog (GMT, SeqNo for changes in one second) in the data dictionary's layout: jdoe's
    // day (a status of no duration at login, after-call work, lunch, the logout), asmith logged in in the
    // evening and still logged in, and one status of a user whose login is older than the read
    let source = Source::new(SourceKind::Postgres);
    source.execute("CREATE TABLE agentactivitylog (userid varchar(50) NOT NULL, statusdatetime timestamp(3) NOT NULL, statusdatetimegmt timestamp(3) NOT NULL, changedstatus smallint, changedstatusgroup smallint, changedloggedin smallint, changedacdloggedin smallint, statuskey varchar(50), statusgroup varchar(50), loggedin smallint, acdloggedin smallint, statusdnd smallint, statusacw smallint, enddatetime timestamp(3), enddatetimegmt timestamp(3), stateduration integer, seqno smallint NOT NULL, siteid smallint NOT NULL DEFAULT 1, subsiteid smallint NOT NULL DEFAULT 0, i3timestampgmt timestamp(3))");
    let rows: [(&str, &str, i32, &str, i32); 9] = [
        // (UserId, StatusDateTimeGMT, SeqNo, StatusKey, LoggedIn)
        ("jdoe", "2026-01-15 14:00:00.000", 0, "Do Not Disturb", 1),
        ("jdoe", "2026-01-15 14:00:00.000", 1, "Available", 1),
        ("cdoe", "2026-01-15 14:30:00.000", 0, "Available", 1),
        ("jdoe", "2026-01-15 15:10:00.250", 0, "After Call Work", 1),
        ("jdoe", "2026-01-15 15:12:00.000", 0, "Available", 1),
        ("jdoe", "2026-01-15 17:00:00.000", 0, "At Lunch", 1),
        ("jdoe", "2026-01-15 17:45:00.000", 0, "Available", 1),
        ("jdoe", "2026-01-15 22:00:00.000", 0, "Gone Home", 0),
        ("asmith", "2026-01-16 03:00:00.000", 0, "Available", 1),
    ];
    for (user, gmt, seq, key, logged_in) in rows {
        source.execute(&format!(
            "INSERT INTO agentactivitylog (userid, statusdatetime, statusdatetimegmt, statuskey, loggedin, seqno, changedstatus, changedloggedin) \
             VALUES ('{user}', TIMESTAMP '{gmt}' - interval '6 hours', '{gmt}', '{key}', {logged_in}, {seq}, 1, 0)"
        ));
    }
    let system = system(
        &source,
        "genesys_pureconnect_agentactivitylog.postgresql.sql",
        "America/Chicago",
        QueryKind::Events,
    );
    let store = TestStore::new(StoreKind::Sqlite);

    // When the day is synced
    let r = store.sync(&system, day("2026-01-15")).unwrap();

    // Then each status is a session until the next one, the status of no duration at login is none, the logout
    // ends the day, and asmith's evening stays open
    assert_eq!(r.counts.rejected, 0);
    assert_eq!(
        sessions_as(&store, "%Y-%m-%d %H:%M:%S%.3f"),
        sessions_text(&[
            ("asmith", Some("Available"), "2026-01-16 03:00:00.000", None),
            ("cdoe", Some("Available"), "2026-01-15 14:30:00.000", None),
            (
                "jdoe",
                Some("Available"),
                "2026-01-15 14:00:00.000",
                Some("2026-01-15 15:10:00.250")
            ),
            (
                "jdoe",
                Some("After Call Work"),
                "2026-01-15 15:10:00.250",
                Some("2026-01-15 15:12:00.000")
            ),
            (
                "jdoe",
                Some("Available"),
                "2026-01-15 15:12:00.000",
                Some("2026-01-15 17:00:00.000")
            ),
            (
                "jdoe",
                Some("At Lunch"),
                "2026-01-15 17:00:00.000",
                Some("2026-01-15 17:45:00.000")
            ),
            (
                "jdoe",
                Some("Available"),
                "2026-01-15 17:45:00.000",
                Some("2026-01-15 22:00:00.000")
            ),
        ])
    );
}
