//! Incremental mode for event sources (issue 13): a changes run reads only the events after the watermark
//! (the sequence) and goes on from where each agent stood (`event_agent_states`). Asterisk's queue_log,
//! logged piece by piece and synced by changes after each piece, ends in the store a full sync of the
//! whole log makes, through each engine's ODBC driver.

use std::path::Path;
use std::time::Duration;

use acdsync::config::ExternalSystemConfig;
use acdsync::source::query::{QueryKind, SourceQuery, WatermarkKind};
use acdsync::sync::{Days, Mode};

use crate::common::*;
use crate::events::{asterisk_with, log_queue, QUEUE_LOG};
use crate::on_both_stores;

fn incremental(system: ExternalSystemConfig, file: &str) -> ExternalSystemConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sql/sources")
        .join(file);
    let changes = SourceQuery::load(&path, QueryKind::Changes).unwrap();
    system.with_incremental(changes, WatermarkKind::Integer, Duration::from_secs(3600))
}

fn the_log_days() -> Days {
    Days {
        first: day("2026-01-14").first,
        last: day("2026-01-16").first,
    }
}

/// The log's first `pieces[0]` events synced in full, then each next piece logged and synced by changes:
/// the store ends as a full sync of the whole log leaves it.
fn by_changes(kind: SourceKind, store_kind: StoreKind, pieces: &[usize]) {
    // Given the first events of the log, synced in full: the watermark and where each agent stands are set
    let (source, plain) = asterisk_with(kind, 0..pieces[0]);
    let system = incremental(plain.clone(), "asterisk_queue_log_changes.sql");
    let store = TestStore::new(store_kind);
    store.sync(&system, the_log_days()).unwrap();

    // When the rest is logged piece by piece, each followed by a sync of today
    let mut at = pieces[0];
    let mut read = 0;
    for &n in &pieces[1..] {
        let end = (at + n).min(QUEUE_LOG.len());
        log_queue(&source, at..end);
        let runs = store.sync_today(&system);
        // Then each is a changes run that reads only the new events
        assert_eq!(runs.len(), 1, "{kind:?} {pieces:?}");
        assert_eq!(runs[0].mode, Mode::Changes, "{kind:?}");
        assert!(runs[0].counts.read <= (end - at) as u64, "{kind:?}");
        read += runs[0].counts.read;
        at = end;
    }
    assert_eq!(at, QUEUE_LOG.len(), "the pieces cover the log");
    assert!(read > 0);

    // And the store is the one a full sync of the whole log makes, rejected events included
    let full = TestStore::new(store_kind);
    full.sync(&plain, the_log_days()).unwrap();
    let f = "%Y-%m-%d %H:%M:%S%.6f";
    assert_eq!(
        sessions_as(&store, f),
        sessions_as(&full, f),
        "{kind:?} {store_kind:?} {pieces:?}"
    );
    let reasons = |s: &TestStore| {
        let mut r: Vec<String> = s.rejected_reasons().into_iter().map(|r| r.5).collect();
        r.sort();
        r
    };
    assert_eq!(reasons(&store), reasons(&full), "{kind:?} {pieces:?}");
    assert_eq!(reasons(&store).len(), 2);

    // And a run with nothing new reads and writes nothing; the full sync of the days again changes nothing
    let again = store.sync_today(&system);
    assert_eq!((again[0].counts.read, written(&again[0])), (0, (0, 0, 0)));
    let days = store.sync(&system, the_log_days()).unwrap();
    assert_eq!(written(&days), (0, 0, 0), "{kind:?} {pieces:?}");
}

on_both_stores!(
    asterisk_events_synced_one_by_one_by_changes_end_as_a_full_sync,
    |kind| {
        // Every event its own changes run: every way to cut the log between two runs
        let ones = vec![1; QUEUE_LOG.len()];
        by_changes(SourceKind::Postgres, kind, &ones);
    }
);

#[test]
fn asterisk_events_by_changes_through_mariadb_and_sqlite_odbc() {
    by_changes(SourceKind::MariaDb, StoreKind::Sqlite, &[9, 3, 11, 2, 40]);
    by_changes(SourceKind::Sqlite, StoreKind::Sqlite, &[20, 1, 1, 30]);
}

on_both_stores!(
    an_agent_left_in_one_of_its_queues_stays_logged_in_across_runs,
    |kind| {
        // Given an agent that joined two queues, synced in full
        let source = Source::new(SourceKind::Postgres);
        source.execute("CREATE TABLE acd_agent_events (id bigint PRIMARY KEY, agent_id varchar(80) NOT NULL, event_time timestamp NOT NULL, event varchar(16) NOT NULL, activity_code varchar(100), scope varchar(100))");
        let log = |id: u32, time: &str, event: &str, code: &str, scope: &str| {
            source.execute(&format!(
                "INSERT INTO acd_agent_events VALUES ({id}, 'a', '2026-01-15 {time}', '{event}', NULLIF('{code}', ''), '{scope}')"
            ))
        };
        log(1, "08:00:00", "login", "", "sales");
        log(2, "08:01:00", "login", "", "support");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/sources/generic_events.sql");
        let query = SourceQuery::load(&path, QueryKind::Events).unwrap();
        let plain = ExternalSystemConfig::new(
            "ev",
            "Europe/Paris",
            query,
            &source.connection_string,
            acdsync::config::WindowParameters::Bound,
        )
        .unwrap();
        let system = incremental(plain, "generic_events_changes.sql");
        let store = TestStore::new(kind);
        store.sync(&system, day("2026-01-15")).unwrap();
        assert_eq!(
            store.count("SELECT COUNT(*) FROM event_agent_states WHERE agent_id = 'a' AND open_started_at IS NOT NULL"),
            1,
            "where the agent stands is stored"
        );

        // When it leaves one queue (a changes run), then pauses and leaves the other (another)
        log(3, "10:00:00", "logout", "", "sales");
        let first = store.sync_today(&system);
        log(4, "11:00:00", "state", "BREAK", "support");
        log(5, "11:30:00", "logout", "", "support");
        let second = store.sync_today(&system);

        // Then the first run changes nothing (still in a queue), the second ends the login and the break
        assert_eq!(
            (first[0].mode, written(&first[0]), first[0].counts.read),
            (Mode::Changes, (0, 0, 0), 1)
        );
        assert_eq!(written(&second[0]), (1, 1, 0));
        assert_eq!(
            sessions_as(&store, "%H:%M"),
            sessions_text(&[
                ("a", None, "07:00", Some("10:00")),
                ("a", Some("BREAK"), "10:00", Some("10:30")),
            ])
        );
        assert_eq!(
            store.count("SELECT COUNT(*) FROM event_agent_states WHERE open_started_at IS NULL AND logged_out = TRUE AND scopes = '[]'"),
            1
        );
        assert_eq!(
            store.count(
                "SELECT COUNT(*) FROM import_runs WHERE mode = 'changes' AND watermark = '5'"
            ),
            1,
            "the run records the sequence it read up to"
        );
    }
);
