//! Issue 12's cases 1, 2, 3 and 10: one reading per row of the hour the clocks go back, whatever the
//! window, the order of syncs or the mode, and ties settled by the rows' values, not their order.

use acdsync::config::{WatermarkKind, WindowParameters};
use acdsync::sync::{Days, Mode};
use chrono::NaiveDate;

use crate::common::*;
use crate::on_both_stores;

const BEIRUT: &str = "Asia/Beirut";
const PARIS: &str = "Europe/Paris";
const MINUTES: &str = "%Y-%m-%d %H:%M";

fn days(first: &str, last: &str) -> Days {
    let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    Days {
        first: d(first),
        last: d(last),
    }
}

/// A PostgreSQL source with a change key (`change_id`, from a sequence) and one row of today for another
/// agent, and an incremental system on it in `zone` whose first sync (in full) sets the watermark.
fn changes_source(zone: &str) -> (Source, acdsync::config::ExternalSystemConfig) {
    let source = Source::new(SourceKind::Postgres);
    source.execute("CREATE SEQUENCE acd_change_seq");
    source.execute(
        "ALTER TABLE acd_agent_states ADD COLUMN change_id bigint NOT NULL DEFAULT nextval('acd_change_seq')",
    );
    seed_today(&source, zone);
    let system = incremental_system(
        zone,
        &source,
        "change_id",
        "change_id >",
        WatermarkKind::Integer,
    );
    (source, system)
}

fn insert(source: &Source, rows: &[(&str, Option<&str>, &str, Option<&str>)]) {
    for (agent, code, start, end) in rows {
        let q = |v: Option<&str>| v.map_or("NULL".to_owned(), |v| format!("'{v}'"));
        source.execute(&format!(
            "INSERT INTO acd_agent_states (agent_id, activity_code, started_at, ended_at) VALUES ('{agent}', {}, '{start}', {})",
            q(*code),
            q(*end)
        ));
    }
}

/// The view without the seed row of `changes_source`.
fn sessions_but_seed(store: &TestStore) -> Vec<(String, Option<String>, String, Option<String>)> {
    sessions_as(store, MINUTES)
        .into_iter()
        .filter(|s| s.0 != "seed")
        .collect()
}

const BEIRUT_ROWS: [(&str, Option<&str>, &str, Option<&str>); 2] = [
    (
        "a",
        Some("BREAK"),
        "2026-10-24 23:20:00",
        Some("2026-10-24 23:30:00"),
    ),
    ("a", Some("READY"), "2026-10-24 23:20:00", None),
];

fn beirut_expected() -> Vec<(String, Option<String>, String, Option<String>)> {
    // 23:00-24:00 on the 24th happens twice (UTC+3, then UTC+2): the break in the first pass, the login
    // that stays open in the second.
    sessions_text(&[
        (
            "a",
            Some("BREAK"),
            "2026-10-24 20:20",
            Some("2026-10-24 20:30"),
        ),
        ("a", Some("READY"), "2026-10-24 21:20", None),
    ])
}

on_both_stores!(
    beirut_the_next_days_sync_keeps_both_sessions_of_the_repeated_hour,
    |kind| {
        // Given a break and a login at the same wall time, once in each pass of Beirut's repeated hour
        let source = Source::new(SourceKind::Sqlite);
        let rows: Vec<Row> = BEIRUT_ROWS
            .iter()
            .map(|(a, c, s, e)| row(a, *c, s, *e))
            .collect();
        source.set_rows(&rows);
        let system = source.system("beirut", BEIRUT, WindowParameters::Literal);

        // When the 24th and the 25th are synced forward, again, backward and as one range
        let store = TestStore::new(kind);
        for d in ["2026-10-24", "2026-10-25", "2026-10-24", "2026-10-25"] {
            let r = store.sync(&system, day(d)).unwrap();
            // Then every sync leaves the same two sessions, and none is rejected
            assert_eq!(r.counts.rejected, 0, "{d}");
            assert_eq!(
                sessions_as(&store, MINUTES),
                beirut_expected(),
                "after syncing {d}"
            );
        }
        let backward = TestStore::new(kind);
        backward.sync(&system, day("2026-10-25")).unwrap();
        // (the 25th owns only the login, read as the 24th reads it)
        assert_eq!(sessions_as(&backward, MINUTES), beirut_expected()[1..]);
        backward.sync(&system, day("2026-10-24")).unwrap();
        assert_eq!(
            sessions_as(&backward, MINUTES),
            beirut_expected(),
            "backward"
        );
        let range = TestStore::new(kind);
        range
            .sync(&system, days("2026-10-24", "2026-10-25"))
            .unwrap();
        assert_eq!(
            sessions_as(&range, MINUTES),
            beirut_expected(),
            "as a range"
        );
        // And the next day's sync writes nothing
        let again = store.sync(&system, day("2026-10-25")).unwrap();
        assert_eq!(written(&again), (0, 0, 0));
    }
);

on_both_stores!(
    paris_two_states_at_one_wall_start_take_the_only_reading_without_overlap,
    |kind| {
        // Given a pause from 02:45 (summer) to 02:15 (winter) and a call from 02:45 (winter) to 03:20
        let store = TestStore::new(kind);
        let source = Source::new(SourceKind::Sqlite);
        source.set_rows(&[
            row(
                "7",
                Some("PAUSE"),
                "2026-10-25 02:45:00",
                Some("2026-10-25 02:15:00"),
            ),
            row(
                "7",
                Some("CALL"),
                "2026-10-25 02:45:00",
                Some("2026-10-25 03:20:00"),
            ),
        ]);
        let system = source.system("paris", PARIS, WindowParameters::Literal);

        // When the day is synced twice
        let first = store.sync(&system, day("2026-10-25")).unwrap();
        let second = store.sync(&system, day("2026-10-25")).unwrap();

        // Then both are imported, read without overlap, and the second run writes nothing
        assert_eq!((first.counts.inserted, first.counts.rejected), (2, 0));
        assert_eq!(
            sessions_as(&store, MINUTES),
            sessions_text(&[
                (
                    "7",
                    Some("PAUSE"),
                    "2026-10-25 00:45",
                    Some("2026-10-25 01:15")
                ),
                (
                    "7",
                    Some("CALL"),
                    "2026-10-25 01:45",
                    Some("2026-10-25 02:20")
                ),
            ])
        );
        assert_eq!((second.counts.unchanged, second.counts.rejected), (2, 0));
        assert_eq!(
            second.counts.inserted + second.counts.updated + second.counts.deleted,
            0
        );
    }
);

on_both_stores!(
    a_login_after_the_change_reads_the_same_whatever_the_order_of_syncs,
    |kind| {
        // Given docs/time.md's example: logout at 02:50 summer time, login again at 02:20 winter time
        let source = Source::new(SourceKind::Sqlite);
        source.set_rows(&[row(
            "3",
            None,
            "2026-10-25 01:30:00",
            Some("2026-10-25 02:50:00"),
        )]);
        let system = source.system("paris", PARIS, WindowParameters::Literal);
        let expected = sessions_text(&[
            ("3", None, "2026-10-24 23:30", Some("2026-10-25 00:50")),
            ("3", None, "2026-10-25 01:20", None),
        ]);

        // When the first session is synced, then the login arrives and the day is synced again
        let store = TestStore::new(kind);
        store.sync(&system, day("2026-10-25")).unwrap();
        source.set_rows(&[
            row(
                "3",
                None,
                "2026-10-25 01:30:00",
                Some("2026-10-25 02:50:00"),
            ),
            row("3", None, "2026-10-25 02:20:00", None),
        ]);
        store.sync(&system, day("2026-10-25")).unwrap();
        // Then the login is read in the second pass (01:20 UTC), after the first session
        assert_eq!(sessions_as(&store, MINUTES), expected);

        // And syncing the next day first, then the day, gives the same store
        let backward = TestStore::new(kind);
        backward.sync(&system, day("2026-10-26")).unwrap();
        assert_eq!(
            sessions_as(&backward, MINUTES),
            sessions_text(&[("3", None, "2026-10-25 01:20", None)])
        );
        backward.sync(&system, day("2026-10-25")).unwrap();
        assert_eq!(sessions_as(&backward, MINUTES), expected);
    }
);

on_both_stores!(
    a_changes_run_reads_the_repeated_hour_with_the_agents_other_rows,
    |kind| {
        // Given incremental systems in Paris and Beirut, synced once (in full: the watermark is set)
        let (store, beirut_store) = (TestStore::new(kind), TestStore::new(kind));
        let (paris_source, paris) = changes_source(PARIS);
        let (beirut_source, beirut) = changes_source(BEIRUT);
        assert_eq!(store.sync_today(&paris)[0].mode, Mode::Full);
        assert_eq!(beirut_store.sync_today(&beirut)[0].mode, Mode::Full);

        // When rows of the repeated hour arrive one by one and are synced by changes
        insert(
            &paris_source,
            &[(
                "3",
                None,
                "2026-10-25 01:30:00",
                Some("2026-10-25 02:50:00"),
            )],
        );
        let runs = store.sync_today(&paris);
        assert_eq!(runs[0].mode, Mode::Changes);
        // Then the changes run leaves them to a full read of their day, which follows at once
        assert_eq!(
            runs[0].reread_days,
            [NaiveDate::from_ymd_opt(2026, 10, 25).unwrap()]
        );
        assert_eq!(
            (runs.len(), runs[1].mode, runs[1].counts.inserted),
            (2, Mode::Full, 1)
        );
        insert(&paris_source, &[("3", None, "2026-10-25 02:20:00", None)]);
        store.sync_today(&paris);
        for row in BEIRUT_ROWS {
            insert(&beirut_source, &[row]);
            beirut_store.sync_today(&beirut);
        }

        // And the stores hold what full syncs of the days give, and a further run writes nothing
        let (full, beirut_full) = (TestStore::new(kind), TestStore::new(kind));
        full.sync(&paris, day("2026-10-25")).unwrap();
        beirut_full.sync(&beirut, day("2026-10-24")).unwrap();
        assert_eq!(sessions_but_seed(&store), sessions_but_seed(&full));
        assert_eq!(
            sessions_but_seed(&store),
            sessions_text(&[
                ("3", None, "2026-10-24 23:30", Some("2026-10-25 00:50")),
                ("3", None, "2026-10-25 01:20", None),
            ])
        );
        assert_eq!(
            sessions_but_seed(&beirut_store),
            sessions_but_seed(&beirut_full)
        );
        assert_eq!(sessions_but_seed(&beirut_store), beirut_expected());
        // (every row of the hour changed again: read by changes, left to the day's read, written nowhere)
        paris_source.execute(
            "UPDATE acd_agent_states SET change_id = nextval('acd_change_seq') WHERE agent_id = '3'",
        );
        let again = store.sync_today(&paris);
        assert_eq!((again.len(), again[0].counts.read), (2, 2));
        let written: u64 = again
            .iter()
            .map(|r| r.counts.inserted + r.counts.updated + r.counts.deleted)
            .sum();
        assert_eq!(written, 0, "{again:?}");
    }
);

on_both_stores!(
    a_login_and_its_first_state_at_one_second_are_settled_by_their_values_not_their_order,
    |kind| {
        // Given a login and a break written at the same second, read with ties in either order
        let source = Source::new(SourceKind::Sqlite);
        source.set_rows(&[
            row(
                "1001",
                None,
                "2026-01-15 09:00:00",
                Some("2026-01-15 17:00:00"),
            ),
            row(
                "1001",
                Some("BREAK"),
                "2026-01-15 09:00:00",
                Some("2026-01-15 09:15:00"),
            ),
            row(
                "1002",
                None,
                "2026-01-15 09:00:00",
                Some("2026-01-15 12:00:00"),
            ),
        ]);
        let sql = |order: &str| {
            format!(
                "SELECT agent_id, activity_code, started_at, ended_at FROM acd_agent_states \
                 WHERE started_at >= {{lookback_start}} AND started_at < {{window_end}} \
                   AND (started_at >= {{window_start}} OR ended_at IS NULL OR ended_at >= {{window_start}}) \
                 ORDER BY started_at, {order}"
            )
        };
        let mut stores = Vec::new();
        for order in ["activity_code ASC", "activity_code DESC"] {
            let system =
                source.system_with_sql("paris", PARIS, WindowParameters::Literal, &sql(order));
            let store = TestStore::new(kind);
            // When the day is synced
            let r = store.sync(&system, day("2026-01-15")).unwrap();
            // Then one of agent 1001's rows is kept, the other is in rejected_rows saying which one stayed
            assert_eq!((r.counts.inserted, r.counts.rejected), (2, 1), "{order}");
            assert_eq!(
                store.count(
                    "SELECT COUNT(*) FROM rejected_rows WHERE activity_code = 'BREAK' AND reason LIKE 'same agent and start as row %, which is kept%'"
                ),
                1,
                "{order}"
            );
            stores.push(store);
        }
        // And the store is the same in both orders: the longer row (the login) is kept
        assert_eq!(
            sessions_as(&stores[0], MINUTES),
            sessions_as(&stores[1], MINUTES)
        );
        assert_eq!(
            sessions_as(&stores[0], MINUTES),
            sessions_text(&[
                ("1001", None, "2026-01-15 08:00", Some("2026-01-15 16:00")),
                ("1002", None, "2026-01-15 08:00", Some("2026-01-15 11:00")),
            ])
        );
    }
);

#[test]
fn a_wall_clock_change_key_loses_no_change_written_in_the_second_pass() {
    // Given an incremental system whose change key is a wall-clock timestamp of the site (Paris), and a
    // full sync that left the watermark at 02:50 in the first pass of the hour the clocks go back
    let store = TestStore::new(StoreKind::Sqlite);
    let source = Source::new(SourceKind::Postgres);
    source.execute("ALTER TABLE acd_agent_states ADD COLUMN changed_at timestamp");
    seed_today(&source, PARIS);
    source.execute("UPDATE acd_agent_states SET changed_at = '2026-10-25 02:50:00'");
    let system = incremental_system(
        PARIS,
        &source,
        "CAST(changed_at AS text)",
        "changed_at >",
        WatermarkKind::Timestamp,
    );
    let first = store.sync_today(&system);
    assert_eq!(
        first[0].watermark.as_deref(),
        Some("2026-10-25 02:50:00.000000")
    );

    // When a session changes 20 minutes later, in the second pass: its key, 02:10, is below the watermark
    source.execute(
        "INSERT INTO acd_agent_states (agent_id, started_at, ended_at, changed_at) \
         VALUES ('late', date_trunc('minute', now() AT TIME ZONE 'Europe/Paris'), NULL, '2026-10-25 02:10:00')",
    );
    let runs = store.sync_today(&system);

    // Then the changes run reads it (and the seed again, which writes nothing)
    assert_eq!(runs[0].mode, Mode::Changes);
    assert_eq!((runs[0].counts.read, runs[0].counts.inserted), (2, 1));
    assert_eq!(
        store.count(
            "SELECT COUNT(*) FROM agent_sessions s JOIN external_agent_ids a ON a.id = s.external_agent_id WHERE a.external_id = 'late'"
        ),
        1
    );
    // And once keys pass the hour, only what changed after the watermark is read
    source.execute(
        "UPDATE acd_agent_states SET changed_at = '2026-10-25 03:05:00' WHERE agent_id = 'late'",
    );
    assert_eq!(store.sync_today(&system)[0].counts.read, 2);
    assert_eq!(store.sync_today(&system)[0].counts.read, 0);
}

on_both_stores!(
    long_sessions_and_ties_around_the_repeated_hour_end_the_same_in_every_order,
    |kind| {
        // Given, in Paris (max_session_hours = 24): a logout forgotten for 28 hours that ends in the
        // repeated hour (read alone: no window reads that far around it), and a login around its break
        // at one start (the longer is kept) with a state after the change
        let source = Source::new(SourceKind::Sqlite);
        source.set_rows(&[
            row(
                "long",
                None,
                "2026-10-23 22:00:00",
                Some("2026-10-25 02:30:00"),
            ),
            row(
                "3",
                None,
                "2026-10-25 01:30:00",
                Some("2026-10-25 04:00:00"),
            ),
            row(
                "3",
                Some("BREAK"),
                "2026-10-25 01:30:00",
                Some("2026-10-25 02:50:00"),
            ),
            row("3", Some("READY"), "2026-10-25 02:20:00", None),
        ]);
        let system = source.system("paris", PARIS, WindowParameters::Literal);
        let days_in = |order: &[&str]| {
            let store = TestStore::new(kind);
            for d in order {
                store.sync(&system, day(d)).unwrap();
            }
            sessions_as(&store, MINUTES)
        };

        // When the days are synced forward and backward
        let forward = days_in(&["2026-10-23", "2026-10-24", "2026-10-25", "2026-10-26"]);
        let backward = days_in(&["2026-10-26", "2026-10-25", "2026-10-24", "2026-10-23"]);

        // Then both orders end in the same store, which holds the long session read alone
        assert_eq!(forward, backward);
        assert!(
            forward.contains(&(
                "long".into(),
                None,
                "2026-10-23 20:00".into(),
                Some("2026-10-25 00:30".into())
            )),
            "{forward:?}"
        );
        // And agent 3's login is kept over its break; READY overlaps the login in either pass (the source
        // nests it), so it takes the first
        assert_eq!(
            forward
                .iter()
                .filter(|s| s.0 == "3")
                .cloned()
                .collect::<Vec<_>>(),
            sessions_text(&[
                ("3", None, "2026-10-24 23:30", Some("2026-10-25 03:00")),
                ("3", Some("READY"), "2026-10-25 00:20", None),
            ])
        );
    }
);
