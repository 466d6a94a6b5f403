//! Integration tests on real engines: PostgreSQL and SQLite as WFM stores, sources read through the real
//! SQLite, PostgreSQL and MariaDB ODBC drivers. Each test says Given / When / Then.

mod admin;
mod bad_bytes;
mod cancel;
mod check;
mod cli;
mod common;
mod deploy;
mod dry_run;
mod dst_orders;
mod events;
mod events_changes;
mod events_orders;
#[cfg(feature = "failpoints")]
mod failpoints;
mod fast_paths;
mod guard;
mod mapping_rules;
mod metrics;
mod read_only;
mod repeated_hour;
mod schema_rules;
mod signals;
mod storage_faults;
mod storage_messages;
mod vendors;
mod waits;

use acdsync::config::WindowParameters;
use common::*;

const PARIS: &str = "Europe/Paris";

/// A small day in Paris (UTC+1 in January): two agents, a break code, one open session.
fn january_day() -> Vec<Row> {
    vec![
        row(
            "1001",
            None,
            "2026-01-15 08:00:00",
            Some("2026-01-15 10:00:00"),
        ),
        row(
            "1001",
            Some("BREAK"),
            "2026-01-15 10:00:00",
            Some("2026-01-15 10:15:00"),
        ),
        row(
            "1001",
            None,
            "2026-01-15 10:15:00",
            Some("2026-01-15 16:30:00"),
        ),
        row(
            "1002",
            None,
            "2026-01-15 09:00:00",
            Some("2026-01-15 12:00:00"),
        ),
        row(
            "1002",
            Some("LUNCH"),
            "2026-01-15 12:00:00",
            Some("2026-01-15 12:45:00"),
        ),
        row("1002", None, "2026-01-15 12:45:00", None),
    ]
}

on_both_stores!(first_import_stores_every_session_in_utc, |kind| {
    // Given a source with a day of sessions
    let store = TestStore::new(kind);
    let source = Source::new(SourceKind::Sqlite);
    source.set_rows(&january_day());
    let system = source.system("paris", PARIS, WindowParameters::Literal);

    // When the day is synced
    let r = store.sync(&system, day("2026-01-15")).unwrap();

    // Then every session is inserted, in UTC, with agents and codes discovered
    assert_eq!(
        (
            r.counts.read,
            r.counts.inserted,
            r.counts.unchanged,
            r.counts.rejected
        ),
        (6, 6, 0, 0)
    );
    assert_eq!(r.counts.new_agent_ids, 2);
    assert_eq!(r.new_activity_codes, ["BREAK", "LUNCH"]);
    let v = store.view();
    assert_eq!(v.len(), 6);
    assert_eq!(v[0].agent, "1001");
    assert_eq!(v[0].started_at, t("2026-01-15 07:00:00"));
    assert_eq!(v[1].code.as_deref(), Some("BREAK"));
    assert_eq!(v[1].activity_id, 1, "a new code lands on Present");
    assert_eq!(v[5].ended_at, None, "the open session stays open");
    assert_eq!(
        store.count(
            "SELECT COUNT(*) FROM external_agent_ids WHERE external_id = '1001' AND employee_id IS NULL \
             AND first_seen_at = '2026-01-15 07:00:00' AND last_seen_at = '2026-01-15 09:15:00'"
        ),
        1,
        "agent IDs are registered unmapped with first/last-seen times"
    );
    assert_eq!(
        store.count(
            "SELECT COUNT(*) FROM external_activity_codes WHERE code = 'LUNCH' AND activity_id = 1 \
             AND first_seen_at = '2026-01-15 11:00:00' AND last_seen_at = '2026-01-15 11:00:00'"
        ),
        1
    );
    assert_eq!(
        store.count("SELECT sessions_inserted FROM import_runs WHERE status = 'succeeded'"),
        6,
        "the run's counts are in import_runs"
    );
});

on_both_stores!(a_rerun_with_nothing_changed_writes_nothing, |kind| {
    // Given a day already synced
    let store = TestStore::new(kind);
    let source = Source::new(SourceKind::Sqlite);
    source.set_rows(&january_day());
    let system = source.system("paris", PARIS, WindowParameters::Literal);
    store.sync(&system, day("2026-01-15")).unwrap();
    let ids = store.session_ids();
    let view = store.view();

    // When it is synced again
    let r = store.sync(&system, day("2026-01-15")).unwrap();

    // Then nothing is written and the counts say so
    assert_eq!(
        (
            r.counts.read,
            r.counts.inserted,
            r.counts.updated,
            r.counts.deleted,
            r.counts.unchanged
        ),
        (6, 0, 0, 0, 6)
    );
    assert_eq!(
        (r.counts.new_agent_ids, r.counts.new_activity_codes),
        (0, 0)
    );
    assert_eq!(store.session_ids(), ids);
    assert_eq!(store.view(), view);
    assert_eq!(store.count("SELECT COUNT(*) FROM import_runs"), 2);
});

on_both_stores!(source_corrections_update_and_delete_sessions, |kind| {
    // Given a day already synced
    let store = TestStore::new(kind);
    let source = Source::new(SourceKind::Sqlite);
    source.set_rows(&january_day());
    let system = source.system("paris", PARIS, WindowParameters::Literal);
    store.sync(&system, day("2026-01-15")).unwrap();

    // When the source corrects an end, a code, and removes a session
    let mut rows = january_day();
    rows[0].end = Some("2026-01-15 10:00:05");
    rows[4].code = Some("TRAINING");
    rows.remove(2);
    source.set_rows(&rows);
    let r = store.sync(&system, day("2026-01-15")).unwrap();

    // Then exactly those are updated and deleted
    assert_eq!(
        (
            r.counts.inserted,
            r.counts.updated,
            r.counts.deleted,
            r.counts.unchanged
        ),
        (0, 2, 1, 3)
    );
    assert_eq!(r.new_activity_codes, ["TRAINING"]);
    let v = store.view();
    assert_eq!(v.len(), 5);
    assert_eq!(v[0].ended_at, Some(t("2026-01-15 09:00:05")));
    assert!(v
        .iter()
        .all(|s| !(s.agent == "1001" && s.started_at == t("2026-01-15 09:15:00"))));
    assert!(v
        .iter()
        .any(|s| s.agent == "1002" && s.code.as_deref() == Some("TRAINING")));
});

on_both_stores!(an_open_session_is_closed_by_a_later_sync, |kind| {
    // Given an agent still logged in at the first sync
    let store = TestStore::new(kind);
    let source = Source::new(SourceKind::Sqlite);
    source.set_rows(&[row("7", None, "2026-01-15 09:00:00", None)]);
    let system = source.system("paris", PARIS, WindowParameters::Literal);
    store.sync(&system, day("2026-01-15")).unwrap();
    assert_eq!(store.view()[0].ended_at, None);

    // When the agent logs out and the day is synced again
    source.set_rows(&[row(
        "7",
        None,
        "2026-01-15 09:00:00",
        Some("2026-01-15 17:00:00"),
    )]);
    let r = store.sync(&system, day("2026-01-15")).unwrap();

    // Then the same session is closed
    assert_eq!((r.counts.inserted, r.counts.updated), (0, 1));
    assert_eq!(store.view()[0].ended_at, Some(t("2026-01-15 16:00:00")));
});

on_both_stores!(
    a_session_across_midnight_is_stored_once_and_seen_from_both_days,
    |kind| {
        // Given a night shift from 23:50 to 07:10, still open when the first day is synced
        let store = TestStore::new(kind);
        let source = Source::new(SourceKind::Sqlite);
        source.set_rows(&[row("9", None, "2026-01-15 23:50:00", None)]);
        let system = source.system("paris", PARIS, WindowParameters::Literal);
        store.sync(&system, day("2026-01-15")).unwrap();

        // When the agent logs out the next morning and only the next day is synced (the default cron case)
        source.set_rows(&[
            row(
                "9",
                None,
                "2026-01-15 23:50:00",
                Some("2026-01-16 07:10:00"),
            ),
            row("9", None, "2026-01-16 22:00:00", None),
        ]);
        let next = store.sync(&system, day("2026-01-16")).unwrap();

        // Then the night session is closed, not duplicated
        assert_eq!(
            (
                next.counts.inserted,
                next.counts.updated,
                next.counts.deleted
            ),
            (1, 1, 0)
        );
        let v = store.view();
        assert_eq!(v.len(), 2);
        assert_eq!(
            (v[0].started_at, v[0].ended_at),
            (t("2026-01-15 22:50:00"), Some(t("2026-01-16 06:10:00")))
        );

        // And a sync of either day again leaves it alone
        let first = store.sync(&system, day("2026-01-15")).unwrap();
        assert_eq!(
            (
                first.counts.inserted,
                first.counts.updated,
                first.counts.deleted,
                first.counts.unchanged
            ),
            (0, 0, 0, 1)
        );
        let second = store.sync(&system, day("2026-01-16")).unwrap();
        assert_eq!(
            (
                second.counts.inserted,
                second.counts.updated,
                second.counts.deleted,
                second.counts.unchanged
            ),
            (0, 0, 0, 2)
        );
        assert_eq!(store.count("SELECT COUNT(*) FROM agent_sessions"), 2);
        assert_eq!(
        store.count(
            "SELECT COUNT(*) FROM external_agent_ids WHERE first_seen_at = '2026-01-15 22:50:00' \
             AND last_seen_at = '2026-01-16 21:00:00'"
        ),
        1,
        "last-seen moves forward with later sessions"
    );
    }
);

on_both_stores!(
    an_unmapped_agent_mapped_later_resolves_in_the_view_without_reimport,
    |kind| {
        // Given a synced day whose agents are not mapped
        let store = TestStore::new(kind);
        let source = Source::new(SourceKind::Sqlite);
        source.set_rows(&january_day());
        let system = source.system("paris", PARIS, WindowParameters::Literal);
        let r = store.sync(&system, day("2026-01-15")).unwrap();
        assert_eq!(r.unmapped_agent_ids, 2);
        assert!(store.view().iter().all(|s| s.employee_id.is_none()));

        // When a DBA maps agent 1001 to an employee (and a code to an activity) by plain SQL
        store
            .execute(
                "INSERT INTO employees (id, name) VALUES (42, 'Ada Lovelace');
             UPDATE external_agent_ids SET employee_id = 42 WHERE external_id = '1001';
             INSERT INTO activities (id, name) VALUES (7, 'Break');
             UPDATE external_activity_codes SET activity_id = 7 WHERE code = 'BREAK';",
            )
            .unwrap();

        // Then the view shows it at once, with no import
        let v = store.view();
        assert!(v
            .iter()
            .filter(|s| s.agent == "1001")
            .all(|s| s.employee_id == Some(42)));
        assert!(v
            .iter()
            .filter(|s| s.agent == "1002")
            .all(|s| s.employee_id.is_none()));
        assert_eq!(
            v.iter()
                .find(|s| s.code.as_deref() == Some("BREAK"))
                .unwrap()
                .activity_id,
            7
        );
        assert_eq!(
            v.iter()
                .find(|s| s.code.as_deref() == Some("LUNCH"))
                .unwrap()
                .activity_id,
            1
        );
        assert_eq!(
            v.iter().find(|s| s.code.is_none()).unwrap().activity_id,
            1,
            "no code shows as Present"
        );

        // And a re-sync keeps the mappings
        let again = store.sync(&system, day("2026-01-15")).unwrap();
        assert_eq!(again.unmapped_agent_ids, 1);
        assert_eq!(
            store.count("SELECT activity_id FROM external_activity_codes WHERE code = 'BREAK'"),
            7
        );
    }
);

on_both_stores!(paris_dst_days_convert_local_time_right, |kind| {
    // Given sessions on the two DST days of 2026 in Paris
    let store = TestStore::new(kind);
    let source = Source::new(SourceKind::Sqlite);
    source.set_rows(&[
        // 29 March: 02:00 -> 03:00. Before, across and after the jump.
        row(
            "1",
            None,
            "2026-03-29 00:30:00",
            Some("2026-03-29 01:45:00"),
        ),
        row(
            "1",
            Some("NIGHT"),
            "2026-03-29 01:45:00",
            Some("2026-03-29 03:15:00"),
        ),
        row(
            "1",
            None,
            "2026-03-29 03:15:00",
            Some("2026-03-29 23:59:00"),
        ),
        // 25 October: 03:00 -> 02:00. A pause from 02:40 (summer) to 02:10 (winter), then on from 02:10
        // (winter), rows deliberately not in time order.
        row(
            "2",
            None,
            "2026-10-25 02:10:00",
            Some("2026-10-25 04:00:00"),
        ),
        row(
            "2",
            None,
            "2026-10-25 01:30:00",
            Some("2026-10-25 02:40:00"),
        ),
        row(
            "2",
            Some("PAUSE"),
            "2026-10-25 02:40:00",
            Some("2026-10-25 02:10:00"),
        ),
        // Agent 3 logs out at 02:50 (summer) and back in at 02:20 (winter).
        row(
            "3",
            None,
            "2026-10-25 02:00:00",
            Some("2026-10-25 02:50:00"),
        ),
        row("3", None, "2026-10-25 02:20:00", None),
    ]);
    let system = source.system("paris", PARIS, WindowParameters::Literal);

    // When both days are synced
    let spring = store.sync(&system, day("2026-03-29")).unwrap();
    let autumn = store.sync(&system, day("2026-10-25")).unwrap();

    // Then the 23-hour and 25-hour days hold the right UTC times
    assert_eq!((spring.counts.inserted, autumn.counts.inserted), (3, 5));
    let again = store.sync(&system, day("2026-10-25")).unwrap();
    assert_eq!(
        (
            again.counts.inserted,
            again.counts.updated,
            again.counts.deleted,
            again.counts.unchanged
        ),
        (0, 0, 0, 5),
        "the repeated hour reads the same way every time"
    );
    // The next day's window owns only agent 3's open login; it reads the agents' rows of the repeated hour
    // with it (5 rows), so that the login is read as the day before read it.
    let next_day = store.sync(&system, day("2026-10-26")).unwrap();
    assert_eq!(
        (
            next_day.counts.read,
            next_day.counts.inserted,
            next_day.counts.unchanged,
            next_day.stale_open
        ),
        (5, 0, 1, 0)
    );
    assert_eq!(store.count("SELECT COUNT(*) FROM agent_sessions"), 8);
    let v = store.view();
    let times: Vec<_> = v
        .iter()
        .map(|s| (s.agent.as_str(), s.started_at, s.ended_at))
        .collect();
    let closed = |a, s, e| (a, t(s), Some(t(e)));
    assert_eq!(
        times,
        [
            closed("1", "2026-03-28 23:30:00", "2026-03-29 00:45:00"),
            closed("1", "2026-03-29 00:45:00", "2026-03-29 01:15:00"),
            closed("1", "2026-03-29 01:15:00", "2026-03-29 21:59:00"),
            closed("2", "2026-10-24 23:30:00", "2026-10-25 00:40:00"),
            closed("2", "2026-10-25 00:40:00", "2026-10-25 01:10:00"),
            closed("2", "2026-10-25 01:10:00", "2026-10-25 03:00:00"),
            closed("3", "2026-10-25 00:00:00", "2026-10-25 00:50:00"),
            ("3", t("2026-10-25 01:20:00"), None),
        ]
    );
    assert_eq!(
            store.count(
                "SELECT COUNT(*) FROM import_runs WHERE \
                 (first_day = '2026-03-29' AND window_start = '2026-03-28 23:00:00' AND window_end = '2026-03-29 22:00:00') \
                 OR (first_day = '2026-10-25' AND window_start = '2026-10-24 22:00:00' AND window_end = '2026-10-25 23:00:00')"
            ),
            3,
            "the 23-hour and 25-hour windows are recorded in UTC"
        );
});

on_both_stores!(
    bad_rows_are_reported_kept_and_do_not_stop_good_rows,
    |kind| {
        // Given a source with good rows and bad ones
        let store = TestStore::new(kind);
        let source = Source::new(SourceKind::Sqlite);
        let mut rows = january_day();
        rows.push(Row {
            agent: None,
            code: Some("BREAK"),
            start: Some("2026-01-15 11:00:00"),
            end: None,
        });
        rows.push(row(
            "1003",
            None,
            "2026-01-15 12:00:00",
            Some("2026-01-15 11:00:00"),
        ));
        rows.push(row("1004", None, "2026-01-15 25:61:00", None));
        rows.push(row("1001", Some("DUP"), "2026-01-15 08:00:00", None));
        source.set_rows(&rows);
        let system = source.system("paris", PARIS, WindowParameters::Literal);

        // When the day is synced
        let r = store.sync(&system, day("2026-01-15")).unwrap();

        // Then the good rows are imported and each bad one is kept with its field and reason
        assert_eq!(
            (r.counts.read, r.counts.inserted, r.counts.rejected),
            (10, 6, 4)
        );
        let reasons: Vec<_> = r
            .rejected
            .iter()
            .map(|x| (x.source_row, x.field, x.reason.clone()))
            .collect();
        assert_eq!(reasons[0].1, "agent_id");
        assert!(
            reasons[1].2.contains("ends before it starts"),
            "{reasons:?}"
        );
        assert!(
            reasons[2].2.contains("\"2026-01-15 25:61:00\""),
            "{reasons:?}"
        );
        // Two rows of agent 1001 at 08:00: the longer (the open one, row 2 in start order) is kept,
        // whatever their order in the result.
        assert_eq!(reasons[3].0, 1, "{reasons:?}");
        assert!(
            reasons[3].2.contains("same agent and start as row 2"),
            "{reasons:?}"
        );
        assert_eq!(store.count("SELECT COUNT(*) FROM rejected_rows"), 4);
        assert_eq!(
        store.count("SELECT COUNT(*) FROM rejected_rows WHERE field = 'started_at' AND started_at = '2026-01-15 25:61:00' AND agent_id = '1004' AND source_row = 10"),
        1,
        "the raw values and the row number (in the query's start order: the bad time sorts last) are kept"
    );
        assert_eq!(
            store.count(
                "SELECT COUNT(*) FROM external_agent_ids WHERE external_id IN ('1003', '1004')"
            ),
            0
        );
    }
);

on_both_stores!(a_failed_run_is_recorded_and_writes_nothing, |kind| {
    // Given a source whose table has gone
    let store = TestStore::new(kind);
    let source = Source::new(SourceKind::Sqlite);
    source.set_rows(&january_day());
    let system = source.system("paris", PARIS, WindowParameters::Literal);
    store.sync(&system, day("2026-01-15")).unwrap();
    source.execute("DROP TABLE acd_agent_states");

    // When the day is synced
    let err = store.sync(&system, day("2026-01-15")).unwrap_err();

    // Then the error names the system and the SQL file, the run row says failed, and the sessions are intact
    let text = format!("{err:#}");
    assert!(
        text.contains("\"paris\"") && text.contains("generic_sessions.sql"),
        "{text}"
    );
    assert_eq!(store.count("SELECT COUNT(*) FROM import_runs WHERE status = 'failed' AND error LIKE '%acd_agent_states%'"), 1);
    assert_eq!(store.count("SELECT COUNT(*) FROM agent_sessions"), 6);
});

/// The same day read through each ODBC driver and parameter style gives the same sessions.
fn same_sessions_through(kind: SourceKind, mode: WindowParameters) {
    let store = TestStore::new(StoreKind::Sqlite);
    let source = Source::new(kind);
    let mut rows = january_day();
    rows.push(row(
        "1003",
        None,
        "2026-01-14 23:00:00",
        Some("2026-01-15 01:00:00"),
    ));
    rows.push(row(
        "1003",
        None,
        "2026-01-14 20:00:00",
        Some("2026-01-14 22:00:00"),
    ));
    rows.push(row(
        "1003",
        None,
        "2026-01-16 00:00:00",
        Some("2026-01-16 01:00:00"),
    ));
    source.set_rows(&rows);
    let system = source.system("src", PARIS, mode);

    let r = store.sync(&system, day("2026-01-15")).unwrap();

    assert_eq!(
        (r.counts.read, r.counts.inserted, r.counts.rejected),
        (7, 7, 0),
        "{kind:?} {mode:?}"
    );
    let v = store.view();
    assert_eq!(v[6].agent, "1003");
    assert_eq!(v[6].started_at, t("2026-01-14 22:00:00"));
    assert_eq!(v[0].started_at, t("2026-01-15 07:00:00"));
    let again = store.sync(&system, day("2026-01-15")).unwrap();
    assert_eq!(again.counts.unchanged, 7);
}

#[test]
fn sqlite_odbc_source_with_literal_bounds() {
    same_sessions_through(SourceKind::Sqlite, WindowParameters::Literal);
}

#[test]
fn sqlite_odbc_source_with_bound_parameters() {
    same_sessions_through(SourceKind::Sqlite, WindowParameters::Bound);
}

#[test]
fn postgres_odbc_source_with_bound_parameters() {
    same_sessions_through(SourceKind::Postgres, WindowParameters::Bound);
}

#[test]
fn postgres_odbc_source_with_literal_bounds() {
    same_sessions_through(SourceKind::Postgres, WindowParameters::Literal);
}

#[test]
fn mariadb_odbc_source_with_bound_parameters() {
    same_sessions_through(SourceKind::MariaDb, WindowParameters::Bound);
}

#[test]
fn postgres_odbc_source_streaming_with_declare_fetch() {
    // The connection options the docs recommend for large days: psqlODBC streams with a cursor.
    let store = TestStore::new(StoreKind::Sqlite);
    let mut source = Source::new(SourceKind::Postgres);
    source
        .connection_string
        .push_str("UseDeclareFetch=1;Fetch=2;");
    source.set_rows(&january_day());
    let system = source.system("src", PARIS, WindowParameters::Bound);

    let r = store.sync(&system, day("2026-01-15")).unwrap();

    assert_eq!(
        (r.counts.read, r.counts.inserted, r.counts.rejected),
        (6, 6, 0)
    );
    assert_eq!(store.view()[0].started_at, t("2026-01-15 07:00:00"));
}

on_both_stores!(
    an_end_corrected_past_midnight_updates_the_earlier_session,
    |kind| {
        // Given a session of the evening before, stored ending before midnight
        let store = TestStore::new(kind);
        let source = Source::new(SourceKind::Sqlite);
        source.set_rows(&[row(
            "5",
            None,
            "2026-01-15 23:00:00",
            Some("2026-01-15 23:50:00"),
        )]);
        let system = source.system("paris", PARIS, WindowParameters::Literal);
        store.sync(&system, day("2026-01-15")).unwrap();

        // When the source corrects its end to after midnight and the next day is synced
        source.set_rows(&[row(
            "5",
            None,
            "2026-01-15 23:00:00",
            Some("2026-01-16 00:30:00"),
        )]);
        let r = store.sync(&system, day("2026-01-16")).unwrap();

        // Then that session is updated, not inserted a second time
        assert_eq!(
            (r.counts.inserted, r.counts.updated, r.counts.deleted),
            (0, 1, 0)
        );
        let v = store.view();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].ended_at, Some(t("2026-01-15 23:30:00")));
    }
);

on_both_stores!(
    a_session_stored_open_that_ended_before_midnight_is_reported_until_its_day_is_synced,
    |kind| {
        // Given an evening session stored open at the last sync of the day
        let store = TestStore::new(kind);
        let source = Source::new(SourceKind::Sqlite);
        source.set_rows(&[row("4", None, "2026-01-15 22:00:00", None)]);
        let system = source.system("paris", PARIS, WindowParameters::Literal);
        store.sync(&system, day("2026-01-15")).unwrap();

        // When it ends before midnight and only the next day is synced
        source.set_rows(&[row(
            "4",
            None,
            "2026-01-15 22:00:00",
            Some("2026-01-15 23:58:00"),
        )]);
        let next = store.sync(&system, day("2026-01-16")).unwrap();

        // Then the next day's sync leaves it alone but says which day to sync
        assert_eq!(
            (next.counts.read, next.counts.updated, next.counts.deleted),
            (0, 0, 0)
        );
        assert_eq!(
            (next.stale_open, next.stale_open_since),
            (1, Some(day("2026-01-15").first))
        );
        assert!(acdsync::report::render(&next).contains("sync --date 2026-01-15 to close them"));

        // And syncing that day closes it
        let fixed = store.sync(&system, day("2026-01-15")).unwrap();
        assert_eq!(fixed.counts.updated, 1);
        assert_eq!(store.view()[0].ended_at, Some(t("2026-01-15 22:58:00")));
        assert_eq!(
            store.sync(&system, day("2026-01-16")).unwrap().stale_open,
            0
        );
    }
);

#[test]
fn numeric_agent_ids_padded_codes_and_fractions_read_through_psqlodbc() {
    // Given a PostgreSQL source whose agent IDs are integers, codes CHAR(10) and times have milliseconds
    let store = TestStore::new(StoreKind::Postgres);
    let source = Source::new(SourceKind::Postgres);
    source.execute("DROP TABLE acd_agent_states");
    source.execute(
        "CREATE TABLE acd_agent_states (agent_id integer, activity_code char(10), started_at timestamp(3), ended_at timestamp(3))",
    );
    source.execute(
        "INSERT INTO acd_agent_states VALUES \
         (1001, NULL, '2026-01-15 08:00:00.250', '2026-01-15 10:00:00'), \
         (1001, 'BREAK', '2026-01-15 10:00:00', '2026-01-15 10:15:00.5')",
    );
    let system = source.system("pg", PARIS, WindowParameters::Bound);

    // When the day is synced (twice)
    let r = store.sync(&system, day("2026-01-15")).unwrap();
    let again = store.sync(&system, day("2026-01-15")).unwrap();

    // Then the ID and code are text without padding, the fractions are kept, and the re-run is a no-op
    assert_eq!(
        (r.counts.inserted, r.counts.rejected, again.counts.unchanged),
        (2, 0, 2)
    );
    let v = store.view();
    assert_eq!(
        (v[0].agent.as_str(), v[1].code.as_deref()),
        ("1001", Some("BREAK"))
    );
    assert_eq!(
        v[0].started_at,
        t("2026-01-15 07:00:00") + chrono::Duration::milliseconds(250)
    );
    assert_eq!(
        v[1].ended_at,
        Some(t("2026-01-15 09:15:00") + chrono::Duration::milliseconds(500))
    );
}

/// The query sql/sources/README.md documents for columns that hold instants (PostgreSQL timestamptz): the
/// window's bounds as instants (`{…_utc}`), the times selected as text with their offset.
const TIMESTAMPTZ_SQL: &str =
    "SELECT agent_id, activity_code, CAST(started_at AS text), CAST(ended_at AS text) \
     FROM acd_agent_states \
     WHERE started_at >= CAST({lookback_start_utc} AS timestamptz) \
       AND started_at < CAST({window_end_utc} AS timestamptz) \
       AND (started_at >= CAST({window_start_utc} AS timestamptz) \
            OR ended_at IS NULL OR ended_at >= CAST({window_start_utc} AS timestamptz)) \
     ORDER BY started_at";

/// A source whose columns are instants (PostgreSQL timestamptz), read with the documented query.
fn timestamptz_source(mode: WindowParameters) {
    let store = TestStore::new(StoreKind::Sqlite);
    let source = Source::new(SourceKind::Postgres);
    source.execute("DROP TABLE acd_agent_states");
    source.execute("CREATE TABLE acd_agent_states (agent_id text, activity_code text, started_at timestamptz, ended_at timestamptz)");
    source.execute(
        "INSERT INTO acd_agent_states VALUES \
         ('1', NULL, '2026-01-15 00:30:00+01', '2026-01-15 01:00:00+01'), \
         ('1', NULL, '2026-01-14 23:30:00+01', '2026-01-14 23:45:00+01'), \
         ('2', NULL, '2026-01-15 23:30:00+01', NULL)",
    );
    // psqlODBC returns a timestamptz as the session zone's wall time without its offset: select it as text.
    let sql = TIMESTAMPTZ_SQL;
    let system = source.system_with_sql("tz", PARIS, mode, sql);

    let r = store.sync(&system, day("2026-01-15")).unwrap();

    assert_eq!(
        (r.counts.read, r.counts.inserted, r.counts.rejected),
        (2, 2, 0),
        "{mode:?}"
    );
    let v = store.view();
    assert_eq!(v[0].started_at, t("2026-01-14 23:30:00"));
    assert_eq!(v[1].started_at, t("2026-01-15 22:30:00"));
}

#[test]
fn timestamptz_source_with_bound_parameters() {
    timestamptz_source(WindowParameters::Bound);
}

#[test]
fn timestamptz_source_with_literal_bounds() {
    timestamptz_source(WindowParameters::Literal);
}

on_both_stores!(
    a_time_zone_changed_with_sessions_stored_is_refused_with_the_way_to_do_it,
    |kind| {
        // Given a day synced in Europe/Paris
        let store = TestStore::new(kind);
        let source = Source::new(SourceKind::Sqlite);
        source.set_rows(&january_day());
        let paris = source.system("acd", PARIS, WindowParameters::Literal);
        store.sync(&paris, day("2026-01-15")).unwrap();
        let view = store.view();

        // When the config file's time_zone of that system becomes America/New_York
        let new_york = source.system("acd", "America/New_York", WindowParameters::Literal);
        let err = store.sync(&new_york, day("2026-01-15")).unwrap_err();

        // Then the sync is refused as a configuration error (exit 78) saying how to change it on purpose,
        // and the stored sessions and the system's zone are as they were
        assert_eq!(acdsync::error::exit_code(&err), 78);
        let text = format!("{err:#}");
        assert!(
            text.contains("time_zone is \"America/New_York\"")
                && text.contains("read in \"Europe/Paris\"")
                && text.contains("UPDATE external_systems SET time_zone")
                && text.contains("docs/dba.md"),
            "{text}"
        );
        assert_eq!(store.view(), view);
        assert_eq!(
            store.count("SELECT COUNT(*) FROM external_systems WHERE time_zone = 'Europe/Paris'"),
            1
        );

        // And the documented procedure works: the zone changed by a DBA, the days synced again
        store
            .execute(
                "UPDATE external_systems SET time_zone = 'America/New_York' WHERE name = 'acd'",
            )
            .unwrap();
        let r = acdsync::sync::sync(
            &mut {
                let mut s = store.open();
                s.lock(false).unwrap();
                s
            },
            &new_york,
            acdsync::sync::Target::Days(acdsync::sync::Days {
                first: day("2026-01-14").first,
                last: day("2026-01-16").first,
            }),
        )
        .unwrap();
        assert_eq!(
            r.counts.deleted, r.counts.inserted,
            "every session read anew"
        );
        assert!(r.counts.inserted > 0);
    }
);

on_both_stores!(
    a_time_zone_changed_before_any_session_is_stored_is_taken,
    |kind| {
        // Given a system registered in Europe/Paris whose source had no session yet
        let store = TestStore::new(kind);
        let source = Source::new(SourceKind::Sqlite);
        let paris = source.system("acd", PARIS, WindowParameters::Literal);
        store.sync(&paris, day("2026-01-15")).unwrap();

        // When its time_zone is corrected and it syncs again
        source.set_rows(&january_day());
        let lisbon = source.system("acd", "Europe/Lisbon", WindowParameters::Literal);
        store.sync(&lisbon, day("2026-01-15")).unwrap();

        // Then the new zone is kept
        assert_eq!(
            store.count("SELECT COUNT(*) FROM external_systems WHERE time_zone = 'Europe/Lisbon'"),
            1
        );
    }
);

on_both_stores!(a_rejected_row_never_deletes_what_is_stored, |kind| {
    // Given a day synced
    let store = TestStore::new(kind);
    let source = Source::new(SourceKind::Sqlite);
    source.set_rows(&january_day());
    let system = source.system("paris", PARIS, WindowParameters::Literal);
    store.sync(&system, day("2026-01-15")).unwrap();
    let view = store.view();

    // When one row's end becomes unreadable, and another row's start too
    source.execute(
        "UPDATE acd_agent_states SET ended_at = '2026-01-15 25:99:00' WHERE agent_id = '1002' AND started_at = '2026-01-15 09:00:00'",
    );
    source.execute(
        "UPDATE acd_agent_states SET started_at = '2026-01-15 10:00:99' WHERE agent_id = '1001' AND activity_code = 'BREAK'",
    );
    let r = store.sync(&system, day("2026-01-15")).unwrap();

    // Then both rows are rejected and kept in rejected_rows, and every stored session is as it was
    assert_eq!((r.counts.rejected, r.counts.deleted), (2, 0));
    assert_eq!(store.view(), view);
    assert_eq!(
        store.count("SELECT COUNT(*) FROM rejected_rows WHERE field IN ('ended_at', 'started_at')"),
        2
    );

    // And once the source is fixed, a sync changes nothing
    source.set_rows(&january_day());
    let r = store.sync(&system, day("2026-01-15")).unwrap();
    assert_eq!((r.counts.unchanged, r.counts.deleted), (6, 0));
    assert_eq!(store.view(), view);
});

on_both_stores!(
    a_run_in_which_every_row_is_rejected_fails_and_writes_nothing,
    |kind| {
        // Given a day synced
        let store = TestStore::new(kind);
        let source = Source::new(SourceKind::Sqlite);
        source.set_rows(&january_day());
        let system = source.system("paris", PARIS, WindowParameters::Literal);
        store.sync(&system, day("2026-01-15")).unwrap();
        let view = store.view();

        // When the query's columns come in the wrong order (start first)
        let wrong = source.system_with_sql(
            "paris",
            PARIS,
            WindowParameters::Literal,
            "SELECT started_at, agent_id, activity_code, ended_at FROM acd_agent_states \
         WHERE started_at >= {lookback_start} AND started_at < {window_end} \
           AND (started_at >= {window_start} OR ended_at IS NULL OR ended_at >= {window_start}) \
         ORDER BY started_at",
        );
        let err = format!("{:#}", store.sync(&wrong, day("2026-01-15")).unwrap_err());

        // Then the run fails naming the file and the first reasons, the stored sessions are as they were, and
        // only the run's row records it
        assert!(
            err.contains("every row of test.sql was rejected (6 of 6)") && err.contains("row 1 "),
            "{err}"
        );
        assert_eq!(store.view(), view);
        assert_eq!(store.count("SELECT COUNT(*) FROM rejected_rows"), 0);
        assert_eq!(
        store.count("SELECT COUNT(*) FROM import_runs WHERE status = 'failed' AND error LIKE '%every row%'"),
        1
    );
    }
);

on_both_stores!(
    times_the_spring_change_skipped_keep_their_states_apart,
    |kind| {
        // Given states written in Paris wall time through the hour 2026-03-29 skipped (02:00 -> 03:00)
        let store = TestStore::new(kind);
        let source = Source::new(SourceKind::Sqlite);
        source.set_rows(&[
            row(
                "7",
                None,
                "2026-03-29 01:50:00",
                Some("2026-03-29 02:10:00"),
            ),
            row(
                "7",
                Some("BREAK"),
                "2026-03-29 02:10:00",
                Some("2026-03-29 02:25:00"),
            ),
            row(
                "7",
                None,
                "2026-03-29 02:25:00",
                Some("2026-03-29 03:40:00"),
            ),
            row(
                "8",
                Some("CALL"),
                "2026-03-29 02:30:00",
                Some("2026-03-29 03:10:00"),
            ),
        ]);
        let system = source.system("paris", PARIS, WindowParameters::Literal);

        // When the day is synced
        let r = store.sync(&system, day("2026-03-29")).unwrap();

        // Then every row is imported, a time of the gap read with the offset before the change (02:10 is
        // 01:10 UTC), and a start of the gap whose end would precede it as the instant of the change (01:00)
        assert_eq!((r.counts.inserted, r.counts.rejected), (4, 0));
        let times: Vec<(String, NaiveDateTimePair)> = store
            .view()
            .into_iter()
            .map(|v| (v.agent, (v.started_at, v.ended_at.unwrap())))
            .collect();
        assert_eq!(
            times,
            [
                (
                    "7".into(),
                    (t("2026-03-29 00:50:00"), t("2026-03-29 01:10:00"))
                ),
                (
                    "7".into(),
                    (t("2026-03-29 01:10:00"), t("2026-03-29 01:25:00"))
                ),
                (
                    "7".into(),
                    (t("2026-03-29 01:25:00"), t("2026-03-29 01:40:00"))
                ),
                (
                    "8".into(),
                    (t("2026-03-29 01:00:00"), t("2026-03-29 01:10:00"))
                ),
            ]
        );
        // And a re-run writes nothing
        let again = store.sync(&system, day("2026-03-29")).unwrap();
        assert_eq!((again.counts.unchanged, again.counts.inserted), (4, 0));
    }
);

type NaiveDateTimePair = (chrono::NaiveDateTime, chrono::NaiveDateTime);

/// Sessions around a local midnight that happens twice (the clocks go back at 01:00 to 00:00), read with
/// the documented timestamptz query: `midnight` is the first reading of that midnight, in UTC.
fn an_ambiguous_midnight_is_read_once(kind: StoreKind, zone: &str, date: &str, midnight: &str) {
    let store = TestStore::new(kind);
    let source = Source::new(SourceKind::Postgres);
    source.execute("DROP TABLE acd_agent_states");
    source.execute("CREATE TABLE acd_agent_states (agent_id text, activity_code text, started_at timestamptz, ended_at timestamptz)");
    let m = t(midnight);
    let at = |minutes: i64| format!("{}+00", m + chrono::Duration::minutes(minutes));
    source.execute(&format!(
        "INSERT INTO acd_agent_states VALUES ('a', NULL, '{}', '{}'), ('b', 'BREAK', '{}', '{}'), ('c', NULL, '{}', NULL)",
        at(-30), at(20), at(40), at(70), at(80)
    ));
    let system = source.system_with_sql("tz", zone, WindowParameters::Bound, TIMESTAMPTZ_SQL);
    let (before, the_day) = (day(date).first - chrono::Duration::days(1), day(date));

    // When the day before and the day are synced
    let first = store
        .sync(&system, acdsync::sync::Days::one(before))
        .unwrap();
    let second = store.sync(&system, the_day).unwrap();

    // Then each session is stored once, at its instant, and no row is rejected
    assert_eq!(
        (first.counts.rejected, second.counts.rejected),
        (0, 0),
        "{zone}"
    );
    let got: Vec<(String, chrono::NaiveDateTime, Option<chrono::NaiveDateTime>)> = store
        .view()
        .into_iter()
        .map(|v| (v.agent, v.started_at, v.ended_at))
        .collect();
    let min = |n: i64| m + chrono::Duration::minutes(n);
    assert_eq!(
        got,
        [
            ("a".into(), min(-30), Some(min(20))),
            ("b".into(), min(40), Some(min(70))),
            ("c".into(), min(80), None),
        ],
        "{zone}"
    );

    // And when the open session closes, the day's sync updates it and deletes nothing; the day before's
    // sync changes nothing
    source.execute(&format!(
        "UPDATE acd_agent_states SET ended_at = '{}' WHERE agent_id = 'c'",
        at(200)
    ));
    let again = store.sync(&system, the_day).unwrap();
    assert_eq!(
        (again.counts.updated, again.counts.deleted),
        (1, 0),
        "{zone}"
    );
    let back = store
        .sync(&system, acdsync::sync::Days::one(before))
        .unwrap();
    assert_eq!(written(&back), (0, 0, 0), "{zone}");
    assert_eq!(store.count("SELECT COUNT(*) FROM agent_sessions"), 3);
}

on_both_stores!(
    the_documented_timestamptz_query_agrees_at_an_ambiguous_midnight,
    |kind| {
        // Atlantic/Azores, 2026-10-25: 01:00 (UTC+0) becomes 00:00 (UTC-1); America/Havana, 2026-11-01: 01:00
        // (UTC-4) becomes 00:00 (UTC-5)
        an_ambiguous_midnight_is_read_once(
            kind,
            "Atlantic/Azores",
            "2026-10-25",
            "2026-10-25 00:00:00",
        );
        an_ambiguous_midnight_is_read_once(
            kind,
            "America/Havana",
            "2026-11-01",
            "2026-11-01 04:00:00",
        );
    }
);

on_both_stores!(
    a_session_open_across_two_midnights_is_closed_by_the_sync_of_its_end,
    |kind| {
        // Given a system in UTC (max_session_hours 24) and an agent logged in since the evening of the 14th,
        // synced on the 14th and the 15th while still open
        let store = TestStore::new(kind);
        let source = Source::new(SourceKind::Sqlite);
        source.set_rows(&[row("n", None, "2026-01-14 20:00:00", None)]);
        let system = source.system("utc", "UTC", WindowParameters::Literal);
        store.sync(&system, day("2026-01-14")).unwrap();
        store.sync(&system, day("2026-01-15")).unwrap();

        // When the source closes it at 02:00 on the 16th, and the 16th is synced
        source.set_rows(&[row(
            "n",
            None,
            "2026-01-14 20:00:00",
            Some("2026-01-16 02:00:00"),
        )]);
        let r = store.sync(&system, day("2026-01-16")).unwrap();

        // Then that sync closes it, more than max_session_hours after it began
        assert_eq!(
            (r.counts.updated, r.counts.rejected, r.counts.inserted),
            (1, 0, 0)
        );
        let v = store.view();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].ended_at, Some(t("2026-01-16 02:00:00")));
        // And the next day's sync has nothing to do with it
        let next = store.sync(&system, day("2026-01-17")).unwrap();
        assert_eq!((next.counts.read, next.stale_open), (0, 0));
    }
);

on_both_stores!(
    days_with_a_clock_change_sync_again_to_the_same_store,
    |kind| {
        // Given an agent stored open since an odd second days ago (the window reaches back to it), and a
        // state in the hour the clocks go back in Paris
        let store = TestStore::new(kind);
        let source = Source::new(SourceKind::Sqlite);
        source.set_rows(&[
            row("old", None, "2026-10-22 08:07:13", None),
            row(
                "a",
                Some("BREAK"),
                "2026-10-25 02:03:00",
                Some("2026-10-25 02:20:00"),
            ),
        ]);
        let paris = source.system("paris", PARIS, WindowParameters::Literal);
        store.sync(&paris, day("2026-10-22")).unwrap();
        store.sync(&paris, day("2026-10-25")).unwrap();
        // When the day is synced again, Then nothing is written
        let again = store.sync(&paris, day("2026-10-25")).unwrap();
        assert_eq!(written(&again), (0, 0, 0));

        // Given a state written in Havana's spring gap at midnight (2026-03-08 00:00 -> 01:00)
        let source = Source::new(SourceKind::Sqlite);
        source.set_rows(&[row(
            "x",
            None,
            "2026-03-08 00:30:00",
            Some("2026-03-08 01:10:00"),
        )]);
        let havana = source.system("havana", "America/Havana", WindowParameters::Literal);
        // When the day, the day before and the day again are synced
        let first = store.sync(&havana, day("2026-03-08")).unwrap();
        let before = store.sync(&havana, day("2026-03-07")).unwrap();
        let again = store.sync(&havana, day("2026-03-08")).unwrap();
        // Then it is stored once, in its own day, and neither day's sync moves it
        assert_eq!((first.counts.inserted, first.counts.rejected), (1, 0));
        assert_eq!((before.counts.deleted, before.counts.inserted), (0, 0));
        assert_eq!((again.counts.unchanged, again.counts.inserted), (1, 0));
    }
);
