//! The events shape (issue 13): Asterisk's queue_log, in its realtime table layout, on PostgreSQL, MariaDB
//! and SQLite, read through their ODBC drivers with the shipped SQL files, paired into the sessions a
//! person would write down from the same log.

use std::path::Path;

use acdsync::config::{ExternalSystemConfig, WindowParameters};
use acdsync::source::query::{QueryKind, SourceQuery};

use crate::common::*;

const PARIS: &str = "Europe/Paris";

/// queue_log rows of 2026-01-15 (and the evening before, and the night after) as
/// (time, queuename, agent, event, data1): in the order they happened; ids follow that order.
pub const QUEUE_LOG: [(&str, &str, &str, &str, &str); 37] = [
    // 1003: a night shift from the evening before (read in the lookback)
    ("2026-01-14 22:00:00", "night", "1003", "ADDMEMBER", ""),
    ("2026-01-15 02:00:00", "night", "1003", "PAUSE", "Break"),
    ("2026-01-15 02:15:00", "night", "1003", "UNPAUSE", ""),
    ("2026-01-15 06:00:00", "night", "1003", "REMOVEMEMBER", ""),
    ("2026-01-15 07:00:00", "NONE", "NONE", "QUEUESTART", ""),
    // 1002: agent login, a new reason without an unpause, an automatic pause after a missed call
    (
        "2026-01-15 07:58:00",
        "NONE",
        "1002",
        "AGENTLOGIN",
        "PJSIP/1002-00000001",
    ),
    // 1001: two queues, a lunch paused with PAUSEALL (one PAUSE per queue too)
    ("2026-01-15 08:55:00", "sales", "1001", "ADDMEMBER", ""),
    ("2026-01-15 08:56:00", "support", "1001", "ADDMEMBER", ""),
    // 1004: a logout with no login, then added already paused, still logged in at the end
    ("2026-01-15 09:00:00", "sales", "1004", "REMOVEMEMBER", ""),
    ("2026-01-15 09:10:00", "sales", "NONE", "ENTERQUEUE", ""),
    ("2026-01-15 09:10:05", "sales", "1001", "CONNECT", "5"),
    (
        "2026-01-15 09:30:00",
        "sales",
        "1004",
        "ADDMEMBER",
        "PAUSED",
    ),
    ("2026-01-15 09:40:00", "sales", "1004", "UNPAUSE", ""),
    ("2026-01-15 10:00:00", "sales", "1002", "PAUSE", "Break"),
    ("2026-01-15 10:10:00", "sales", "1002", "PAUSE", "Coaching"),
    ("2026-01-15 10:40:00", "sales", "1002", "UNPAUSE", ""),
    (
        "2026-01-15 11:00:00",
        "sales",
        "1002",
        "RINGNOANSWER",
        "15000",
    ),
    (
        "2026-01-15 11:00:00",
        "sales",
        "1002",
        "PAUSE",
        "Auto-Pause",
    ),
    ("2026-01-15 11:05:00", "sales", "1002", "UNPAUSE", ""),
    ("2026-01-15 12:00:00", "NONE", "1001", "PAUSEALL", "Lunch"),
    ("2026-01-15 12:00:00", "sales", "1001", "PAUSE", "Lunch"),
    ("2026-01-15 12:00:00", "support", "1001", "PAUSE", "Lunch"),
    ("2026-01-15 12:45:00", "NONE", "1001", "UNPAUSEALL", ""),
    ("2026-01-15 12:45:00", "sales", "1001", "UNPAUSE", ""),
    ("2026-01-15 12:45:00", "support", "1001", "UNPAUSE", ""),
    // 1005: logged in twice in a row
    ("2026-01-15 13:00:00", "sales", "1005", "ADDMEMBER", ""),
    ("2026-01-15 13:01:00", "sales", "1005", "ADDMEMBER", ""),
    ("2026-01-15 14:00:00", "sales", "1005", "REMOVEMEMBER", ""),
    // 1006: removed from its only queue while paused
    ("2026-01-15 15:00:00", "support", "1006", "ADDMEMBER", ""),
    ("2026-01-15 15:20:00", "support", "1006", "PAUSE", ""),
    ("2026-01-15 15:30:00", "support", "1006", "REMOVEMEMBER", ""),
    (
        "2026-01-15 16:00:00",
        "NONE",
        "1002",
        "AGENTLOGOFF",
        "PJSIP/1002-00000001|29520",
    ),
    ("2026-01-15 17:00:00", "sales", "1001", "REMOVEMEMBER", ""),
    ("2026-01-15 17:02:00", "support", "1001", "REMOVEMEMBER", ""),
    // 1007: a night shift from 23:00, closed after midnight (read ahead)
    ("2026-01-15 23:00:00", "night", "1007", "ADDMEMBER", ""),
    ("2026-01-16 01:00:00", "night", "1007", "REMOVEMEMBER", ""),
    ("2026-01-16 01:00:00", "NONE", "NONE", "CONFIGRELOAD", ""),
];

/// The sessions a person writes down from that log, in UTC (Paris is UTC+1 in January):
/// (agent, code, start, end).
pub const EXPECTED: [(&str, Option<&str>, &str, Option<&str>); 18] = [
    ("1001", None, "2026-01-15 07:55", Some("2026-01-15 11:00")),
    (
        "1001",
        Some("Lunch"),
        "2026-01-15 11:00",
        Some("2026-01-15 11:45"),
    ),
    ("1001", None, "2026-01-15 11:45", Some("2026-01-15 16:02")),
    ("1002", None, "2026-01-15 06:58", Some("2026-01-15 09:00")),
    (
        "1002",
        Some("Break"),
        "2026-01-15 09:00",
        Some("2026-01-15 09:10"),
    ),
    (
        "1002",
        Some("Coaching"),
        "2026-01-15 09:10",
        Some("2026-01-15 09:40"),
    ),
    ("1002", None, "2026-01-15 09:40", Some("2026-01-15 10:00")),
    (
        "1002",
        Some("Auto-Pause"),
        "2026-01-15 10:00",
        Some("2026-01-15 10:05"),
    ),
    ("1002", None, "2026-01-15 10:05", Some("2026-01-15 15:00")),
    ("1003", None, "2026-01-14 21:00", Some("2026-01-15 01:00")),
    (
        "1003",
        Some("Break"),
        "2026-01-15 01:00",
        Some("2026-01-15 01:15"),
    ),
    ("1003", None, "2026-01-15 01:15", Some("2026-01-15 05:00")),
    (
        "1004",
        Some("PAUSE"),
        "2026-01-15 08:30",
        Some("2026-01-15 08:40"),
    ),
    ("1004", None, "2026-01-15 08:40", None),
    ("1005", None, "2026-01-15 12:00", Some("2026-01-15 13:00")),
    ("1006", None, "2026-01-15 14:00", Some("2026-01-15 14:20")),
    (
        "1006",
        Some("PAUSE"),
        "2026-01-15 14:20",
        Some("2026-01-15 14:30"),
    ),
    ("1007", None, "2026-01-15 22:00", Some("2026-01-16 00:00")),
];

/// A source of `kind` holding the realtime queue_log table (the layout of Asterisk's alembic migration
/// 4105ee839f58) with `QUEUE_LOG`, and a system reading it with the shipped file for that engine.
pub fn asterisk(kind: SourceKind) -> (Source, ExternalSystemConfig) {
    asterisk_with(kind, 0..QUEUE_LOG.len())
}

/// The same, with only rows `rows` of `QUEUE_LOG` logged so far.
pub fn asterisk_with(
    kind: SourceKind,
    rows: std::ops::Range<usize>,
) -> (Source, ExternalSystemConfig) {
    let source = Source::new(kind);
    let (ddl, file, mode) = match kind {
        SourceKind::Postgres => (
            "CREATE TABLE queue_log (id bigint PRIMARY KEY, time timestamp NOT NULL, callid varchar(80), queuename varchar(256), agent varchar(80), event varchar(32), data1 varchar(100), data2 varchar(100), data3 varchar(100), data4 varchar(100), data5 varchar(100))",
            "asterisk_queue_log.postgresql.sql",
            WindowParameters::Bound,
        ),
        SourceKind::MariaDb => (
            "CREATE TABLE queue_log (id bigint PRIMARY KEY, time datetime(6) NOT NULL, callid varchar(80), queuename varchar(256), agent varchar(80), event varchar(32), data1 varchar(100), data2 varchar(100), data3 varchar(100), data4 varchar(100), data5 varchar(100))",
            "asterisk_queue_log.mariadb.sql",
            WindowParameters::Bound,
        ),
        SourceKind::Sqlite => (
            "CREATE TABLE queue_log (id INTEGER PRIMARY KEY, time TEXT NOT NULL, callid TEXT, queuename TEXT, agent TEXT, event TEXT, data1 TEXT, data2 TEXT, data3 TEXT, data4 TEXT, data5 TEXT)",
            "asterisk_queue_log.sqlite.sql",
            WindowParameters::Literal,
        ),
    };
    source.execute(ddl);
    log_queue(&source, rows);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sql/sources")
        .join(file);
    let query = SourceQuery::load(&path, QueryKind::Events).unwrap();
    let system =
        ExternalSystemConfig::new("asterisk", PARIS, query, &source.connection_string, mode)
            .unwrap();
    (source, system)
}

/// Writes rows `range` of `QUEUE_LOG` into the source's queue_log (ids from 100, in order).
pub fn log_queue(source: &Source, range: std::ops::Range<usize>) {
    for (i, (time, queue, agent, event, data)) in QUEUE_LOG.iter().enumerate() {
        if !range.contains(&i) {
            continue;
        }
        let mut data = data.split('|');
        let d1 = data.next().unwrap_or_default();
        let d2 = data.next().unwrap_or_default();
        source.execute(&format!(
            "INSERT INTO queue_log (id, time, callid, queuename, agent, event, data1, data2, data3, data4, data5) \
             VALUES ({}, '{time}', 'NONE', '{queue}', '{agent}', '{event}', '{d1}', '{d2}', '', '', '')",
            100 + i
        ));
    }
}

fn the_day_is_paired_as_written_down(kind: SourceKind) {
    // Given a day of Asterisk's queue_log in its realtime table
    let (_source, system) = asterisk(kind);
    let store = TestStore::new(StoreKind::Sqlite);

    // When the day is synced
    let r = store.sync(&system, day("2026-01-15")).unwrap();

    // Then the sessions are those a person writes down, and the two events that cannot be paired are kept
    let want: Vec<_> = EXPECTED
        .iter()
        .map(|(a, c, s, e)| {
            (
                a.to_string(),
                c.map(str::to_owned),
                s.to_string(),
                e.map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(sessions_as(&store, "%Y-%m-%d %H:%M"), want, "{kind:?}");
    assert_eq!((r.counts.inserted, r.counts.rejected), (18, 2), "{kind:?}");
    assert_eq!(
        store.count(
            "SELECT COUNT(*) FROM rejected_rows WHERE field = 'event' AND agent_id = '1004' \
             AND reason LIKE 'logout event, scope sales, sequence 108: logout with no login%'"
        ),
        1,
        "{kind:?}"
    );
    assert_eq!(
        store.count(
            "SELECT COUNT(*) FROM rejected_rows WHERE field = 'event' AND agent_id = '1005' \
             AND reason LIKE 'login event%already logged in%'"
        ),
        1,
        "{kind:?}"
    );
    assert_eq!(
        store.count("SELECT COUNT(*) FROM external_activity_codes"),
        5,
        "Lunch, Break, Coaching, Auto-Pause, PAUSE"
    );

    // And the next day, then the day again, write nothing: the open session stays open, the night shift
    // closed after midnight is read the same from both days
    let next = store.sync(&system, day("2026-01-16")).unwrap();
    assert_eq!(written(&next), (0, 0, 0), "{kind:?}");
    assert_eq!(
        next.counts.rejected, 0,
        "the 15th's sessions and events are not the 16th's to report: {kind:?}"
    );
    let again = store.sync(&system, day("2026-01-15")).unwrap();
    assert_eq!(written(&again), (0, 0, 0), "{kind:?}");
    assert_eq!(
        (again.counts.unchanged, again.counts.rejected),
        (18, 2),
        "{kind:?}"
    );
}

#[test]
fn asterisk_queue_log_on_postgresql_through_psqlodbc() {
    the_day_is_paired_as_written_down(SourceKind::Postgres);
}

#[test]
fn asterisk_queue_log_on_mariadb_through_its_odbc_driver() {
    the_day_is_paired_as_written_down(SourceKind::MariaDb);
}

#[test]
fn asterisk_queue_log_on_sqlite_through_the_sqlite_odbc_driver() {
    the_day_is_paired_as_written_down(SourceKind::Sqlite);
}

/// `generic_events.sql` on a site's own event table, through each driver: a login, a pause with a reason,
/// a return to ready, a logout, one agent in two queues, and one row that is not an event kind.
fn generic_events_through(kind: SourceKind) {
    let source = Source::new(kind);
    let (ddl, mode) = match kind {
        SourceKind::Postgres => ("CREATE TABLE acd_agent_events (id bigint PRIMARY KEY, agent_id varchar(80) NOT NULL, event_time timestamp NOT NULL, event varchar(16) NOT NULL, activity_code varchar(100), scope varchar(100))", WindowParameters::Bound),
        SourceKind::MariaDb => ("CREATE TABLE acd_agent_events (id bigint PRIMARY KEY, agent_id varchar(80) NOT NULL, event_time datetime(6) NOT NULL, event varchar(16) NOT NULL, activity_code varchar(100), scope varchar(100))", WindowParameters::Bound),
        SourceKind::Sqlite => ("CREATE TABLE acd_agent_events (id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, event_time TIMESTAMP NOT NULL, event TEXT NOT NULL, activity_code TEXT, scope TEXT)", WindowParameters::Literal),
    };
    source.execute(ddl);
    let events = [
        ("a", "2026-01-15 09:00:00", "login", "NULL", "'q1'"),
        ("a", "2026-01-15 09:30:00", "login", "NULL", "'q2'"),
        ("a", "2026-01-15 10:00:00", "state", "'BREAK'", "NULL"),
        ("a", "2026-01-15 10:20:00", "state", "NULL", "NULL"),
        ("a", "2026-01-15 12:00:00", "logout", "NULL", "'q1'"),
        ("a", "2026-01-15 12:30:00", "hangup", "NULL", "NULL"),
        ("a", "2026-01-15 13:00:00", "logout", "NULL", "'q2'"),
    ];
    for (i, (agent, at, event, code, scope)) in events.iter().enumerate() {
        source.execute(&format!(
            "INSERT INTO acd_agent_events (id, agent_id, event_time, event, activity_code, scope) VALUES ({}, '{agent}', '{at}', '{event}', {code}, {scope})",
            i + 1
        ));
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/sources/generic_events.sql");
    let query = SourceQuery::load(&path, QueryKind::Events).unwrap();
    let system =
        ExternalSystemConfig::new("site", PARIS, query, &source.connection_string, mode).unwrap();
    let store = TestStore::new(StoreKind::Sqlite);
    let r = store.sync(&system, day("2026-01-15")).unwrap();
    assert_eq!(
        sessions_as(&store, "%Y-%m-%d %H:%M"),
        [
            (
                "a".to_string(),
                None,
                "2026-01-15 08:00".to_string(),
                Some("2026-01-15 09:00".to_string())
            ),
            (
                "a".to_string(),
                Some("BREAK".to_string()),
                "2026-01-15 09:00".to_string(),
                Some("2026-01-15 09:20".to_string())
            ),
            (
                "a".to_string(),
                None,
                "2026-01-15 09:20".to_string(),
                Some("2026-01-15 12:00".to_string())
            ),
        ],
        "{kind:?}"
    );
    assert_eq!(r.counts.rejected, 1, "{kind:?}");
    assert_eq!(
        store.count("SELECT COUNT(*) FROM rejected_rows WHERE source_row = 6 AND reason LIKE '%\"hangup\" is none of login, state, logout%'"),
        1,
        "{kind:?}"
    );
}

#[test]
fn generic_events_through_the_three_drivers() {
    for kind in [
        SourceKind::Sqlite,
        SourceKind::Postgres,
        SourceKind::MariaDb,
    ] {
        generic_events_through(kind);
    }
}

#[test]
fn an_events_query_with_the_wrong_columns_or_out_of_order_fails_naming_the_file() {
    let source = Source::new(SourceKind::Sqlite);
    source.execute("CREATE TABLE ev (id INTEGER, agent_id TEXT, event_time TEXT, event TEXT)");
    source.execute("INSERT INTO ev VALUES (2, 'a', '2026-01-15 09:00:00', 'login'), (1, 'a', '2026-01-15 10:00:00', 'logout')");
    let system = |sql: &str| {
        let query = SourceQuery::parse(Path::new("events.sql"), sql, QueryKind::Events).unwrap();
        ExternalSystemConfig::new(
            "site",
            PARIS,
            query,
            &source.connection_string,
            WindowParameters::Literal,
        )
        .unwrap()
    };
    let store = TestStore::new(StoreKind::Sqlite);
    let four = system("SELECT agent_id, event_time, event, id FROM ev WHERE event_time >= {lookback_start} AND event_time < {window_end}");
    let e = store
        .sync(&four, day("2026-01-15"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("events.sql returns 4 column(s)")
            && e.contains("it must return 6: agent_id, event_time, event"),
        "{e}"
    );
    let backwards = system("SELECT agent_id, event_time, event, NULL, NULL, id FROM ev WHERE event_time >= {lookback_start} AND event_time < {window_end} ORDER BY event_time");
    let e = store
        .sync(&backwards, day("2026-01-15"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("row 2 of events.sql: the events must come in the order they happened"),
        "{e}"
    );
    assert_eq!(store.count("SELECT COUNT(*) FROM agent_sessions"), 0);
}

#[test]
fn wazo_queue_log_with_a_timestamptz_time_through_psqlodbc() {
    // Given Wazo's queue_log (time timestamptz; the server's TimeZone is the site's, as Wazo sets it): a login,
    // an ADDMEMBER under the queue interface (left out), a pause written as PAUSEALL and per queue, a logoff
    let source = Source::new(SourceKind::Postgres);
    source.execute(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), 'Europe/Paris'); END $$",
    );
    source.execute("CREATE TABLE queue_log (time timestamptz, callid varchar(80), queuename varchar(256), agent text, event varchar(20), data1 text, data2 text, data3 text, data4 text, data5 text, id integer PRIMARY KEY)");
    let rows = [
        (
            "2026-01-15 08:00:00.249+01",
            "NONE",
            "Agent/1001",
            "AGENTCALLBACKLOGIN",
            "1001@default",
        ),
        (
            "2026-01-15 08:00:00.300+01",
            "sales",
            "Local/id-7@agentcallback",
            "ADDMEMBER",
            "",
        ),
        (
            "2026-01-15 10:00:00.100+01",
            "NONE",
            "Agent/1001",
            "PAUSEALL",
            "Break",
        ),
        (
            "2026-01-15 10:00:00.120+01",
            "sales",
            "Agent/1001",
            "PAUSE",
            "Break",
        ),
        (
            "2026-01-15 10:15:00.000+01",
            "NONE",
            "Agent/1001",
            "UNPAUSEALL",
            "",
        ),
        (
            "2026-01-15 10:15:00.020+01",
            "sales",
            "Agent/1001",
            "UNPAUSE",
            "",
        ),
        (
            "2026-01-15 17:00:00.249+01",
            "NONE",
            "Agent/1001",
            "AGENTCALLBACKLOGOFF",
            "1001@default",
        ),
        (
            "2026-01-15 17:00:00.327+01",
            "NONE",
            "Agent/1001",
            "UNPAUSEALL",
            "",
        ),
    ];
    for (i, (time, queue, agent, event, data1)) in rows.iter().enumerate() {
        source.execute(&format!(
            "INSERT INTO queue_log (id, time, callid, queuename, agent, event, data1) VALUES ({}, '{time}', 'NONE', '{queue}', '{agent}', '{event}', '{data1}')",
            i + 1
        ));
    }
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/sources/wazo_queue_log.postgresql.sql");
    let query = SourceQuery::load(&path, QueryKind::Events).unwrap();
    let system = ExternalSystemConfig::new(
        "wazo",
        PARIS,
        query,
        &source.connection_string,
        WindowParameters::Bound,
    )
    .unwrap();
    let store = TestStore::new(StoreKind::Postgres);

    // When the day is synced
    let r = store.sync(&system, day("2026-01-15")).unwrap();

    // Then the agent has its login, its break and the rest of the day, to the millisecond; the UNPAUSEALL
    // Wazo writes after a logoff opens nothing: an agent not logged in returning to ready
    let f = |t: chrono::NaiveDateTime| t.format("%H:%M:%S%.3f").to_string();
    let got: Vec<_> = store
        .view()
        .into_iter()
        .map(|v| (v.agent, v.code, f(v.started_at), v.ended_at.map(f)))
        .collect();
    assert_eq!(
        got,
        [
            (
                "Agent/1001".to_string(),
                None,
                "07:00:00.249".to_string(),
                Some("09:00:00.120".to_string())
            ),
            (
                "Agent/1001".to_string(),
                Some("Break".to_string()),
                "09:00:00.120".to_string(),
                Some("09:15:00.020".to_string())
            ),
            (
                "Agent/1001".to_string(),
                None,
                "09:15:00.020".to_string(),
                Some("16:00:00.249".to_string())
            ),
        ]
    );
    assert_eq!(r.counts.rejected, 0);
}

#[test]
fn freeswitch_statuses_written_by_a_listener_through_the_sqlite_driver() {
    // Given the table a site's ESL listener writes from mod_callcenter's agent-status-change events
    let source = Source::new(SourceKind::Sqlite);
    source.execute("CREATE TABLE cc_agent_status_log (id INTEGER PRIMARY KEY, agent TEXT NOT NULL, status TEXT NOT NULL, event_epoch_us BIGINT NOT NULL)");
    let rows = [
        ("Available", 1768464000000000_i64),
        ("On Break", 1768471200000000 + 250_000),
        ("Available", 1768472100000000),
        ("Logged Out", 1768478400000000),
        ("Available (On Demand)", 1768482000000000),
        ("Logged Out", 1768496400000000),
    ];
    for (i, (status, us)) in rows.iter().enumerate() {
        source.execute(&format!(
            "INSERT INTO cc_agent_status_log VALUES ({}, '1000@default', '{status}', {us})",
            i + 1
        ));
    }
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/sources/freeswitch_callcenter_events.sql");
    let query = SourceQuery::load(&path, QueryKind::Events).unwrap();
    let system = ExternalSystemConfig::new(
        "fs",
        PARIS,
        query,
        &source.connection_string,
        WindowParameters::Literal,
    )
    .unwrap();
    let store = TestStore::new(StoreKind::Sqlite);

    // When the day is synced
    let r = store.sync(&system, day("2026-01-15")).unwrap();

    // Then the agent is logged in from its first status, on break a quarter of an hour, logged out at noon,
    // back in at 13:00 (the status after a logout logs in), out at 17:00 (UTC)
    assert_eq!(r.counts.rejected, 0, "{:?}", store.rejected_reasons());
    let f = |t: chrono::NaiveDateTime| t.format("%H:%M:%S%.3f").to_string();
    let got: Vec<_> = store
        .view()
        .into_iter()
        .map(|v| (v.code, f(v.started_at), v.ended_at.map(f)))
        .collect();
    let s = |c: Option<&str>, a: &str, b: &str| {
        (c.map(str::to_owned), a.to_owned(), Some(b.to_owned()))
    };
    assert_eq!(
        got,
        [
            s(None, "08:00:00.000", "10:00:00.250"),
            s(Some("On Break"), "10:00:00.250", "10:15:00.000"),
            s(None, "10:15:00.000", "12:00:00.000"),
            s(None, "13:00:00.000", "17:00:00.000"),
        ]
    );
}
