//! The fast paths give the same tables as the plain way: a streamed re-sync of a changed day (inserts,
//! updates, deletes across batch and page boundaries, across midnight) and incremental runs end with the
//! same sessions as a fresh import of the final source; and the guards around them (start order, the
//! watermark moving only with the writes).

use acdsync::config::{WatermarkKind, WindowParameters};
use acdsync::sync::{self, Mode, Target};

use crate::common::*;
use crate::on_both_stores;

const PARIS: &str = "Europe/Paris";

/// `agents` agents with back-to-back states of 3 to 40 minutes from a shift start between 06:00 and 20:00
/// local on `date`; late shifts run past midnight, and some agents have a night shift from the day before.
/// Without `night_shifts`, shifts start between 06:00 and 10:00 and every row stays within the day.
fn day_rows(
    date: &str,
    agents: u32,
    seed: u64,
    night_shifts: bool,
) -> Vec<(String, Option<String>, String, Option<String>)> {
    let mut rng = Lcg(seed);
    let base = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let fmt = |t: chrono::NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let mut rows = Vec::new();
    for a in 0..agents {
        let agent = format!("A{a:04}");
        let night = night_shifts && a % 10 == 0;
        let mut t = if night {
            base - chrono::Duration::hours(3)
        } else {
            let spread = if night_shifts { 14 * 60 } else { 4 * 60 };
            base + chrono::Duration::minutes(360 + rng.below(spread) as i64)
        };
        for _ in 0..(8 + rng.below(12)) {
            let code = match rng.below(10) {
                0 => None,
                n => Some(format!("C{n}")),
            };
            let end = t + chrono::Duration::minutes(3 + rng.below(38) as i64);
            rows.push((agent.clone(), code, fmt(t), Some(fmt(end))));
            t = end;
        }
        if a % 7 == 0 {
            // Still logged in: the last state is open.
            rows.last_mut().unwrap().3 = None;
        }
    }
    rows
}

fn sql_value(v: &Option<String>) -> String {
    v.as_ref().map_or("NULL".into(), |s| format!("'{s}'"))
}

fn insert(source: &Source, rows: &[(String, Option<String>, String, Option<String>)]) {
    for chunk in rows.chunks(200) {
        let values: Vec<String> = chunk
            .iter()
            .map(|(a, c, s, e)| format!("('{a}', {}, '{s}', {})", sql_value(c), sql_value(e)))
            .collect();
        source.execute(&format!(
            "INSERT INTO acd_agent_states (agent_id, activity_code, started_at, ended_at) VALUES {}",
            values.join(", ")
        ));
    }
}

/// 1% of the rows get another end or code, 0.5% new rows, 0.1% rows removed; a night session's end moves.
fn change_source(
    source: &Source,
    rows: &[(String, Option<String>, String, Option<String>)],
    bump: &str,
) {
    let mut rng = Lcg(99);
    let n = rows.len() as u64;
    for _ in 0..(n / 100).max(3) {
        let (a, _, s, _) = &rows[rng.below(n) as usize];
        source.execute(&format!(
            "UPDATE acd_agent_states SET activity_code = 'CHANGED'{bump} WHERE agent_id = '{a}' AND started_at = '{s}'"
        ));
    }
    for _ in 0..(n / 1000).max(2) {
        let (a, _, s, _) = &rows[rng.below(n) as usize];
        source.execute(&format!(
            "DELETE FROM acd_agent_states WHERE agent_id = '{a}' AND started_at = '{s}'"
        ));
    }
    let new: Vec<_> = (0..(n / 200).max(3))
        .map(|i| {
            (
                format!("NEW{i:03}"),
                Some("C1".to_owned()),
                format!("2026-01-15 {:02}:{:02}:00", 6 + i % 17, i % 60),
                Some(format!("2026-01-15 {:02}:{:02}:30", 6 + i % 17, i % 60)),
            )
        })
        .collect();
    insert(source, &new);
}

/// Equal session tables, or the first difference (the tables are too long to print whole).
fn assert_same(got: &[ViewRow], want: &[ViewRow]) {
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!(
            "tables differ at row {i} of {} / {}: got {:?}, want {:?}",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i)
        );
    }
}

fn fresh_import(kind: StoreKind, system: &acdsync::config::ExternalSystemConfig) -> Vec<ViewRow> {
    let store = TestStore::new(kind);
    store.sync(system, day("2026-01-15")).unwrap();
    store.view()
}

on_both_stores!(
    a_streamed_resync_ends_with_the_same_sessions_as_a_fresh_import,
    |kind| {
        // Given a day of 400 agents synced in batches and pages of 37 rows (so that equal starts, pages and
        // batches cut each other everywhere)
        let store = TestStore::new(kind);
        let source = Source::new(SourceKind::Postgres);
        let rows = day_rows("2026-01-15", 400, 7, true);
        insert(&source, &rows);
        let mut system = source.system("paris", PARIS, WindowParameters::Bound);
        system.batch_rows = 37;
        let first = store.sync(&system, day("2026-01-15")).unwrap();
        assert_eq!(first.counts.inserted, first.counts.read);

        // When 1% of the sessions change, 0.5% are new and 0.1% are gone, and the day is synced again
        change_source(&source, &rows, "");
        let r = store.sync(&system, day("2026-01-15")).unwrap();

        // Then only those rows are written, and the tables equal a fresh import of the changed source
        assert!(
            r.counts.updated >= 1 && r.counts.inserted >= 3 && r.counts.deleted >= 2,
            "{:?}",
            r.counts
        );
        assert_eq!(
            r.counts.updated + r.counts.inserted + r.counts.unchanged,
            r.counts.read,
            "every row read is written once or left alone"
        );
        assert_same(&store.view(), &fresh_import(kind, &system));
        let again = store.sync(&system, day("2026-01-15")).unwrap();
        assert_eq!(written(&again), (0, 0, 0));
    }
);

on_both_stores!(
    rows_out_of_start_order_stop_the_sync_and_write_nothing,
    |kind| {
        // Given a query without ORDER BY over rows stored out of start order
        let store = TestStore::new(kind);
        let source = Source::new(SourceKind::Postgres);
        source.set_rows(&[
            row(
                "1",
                None,
                "2026-01-15 10:00:00",
                Some("2026-01-15 11:00:00"),
            ),
            row(
                "2",
                None,
                "2026-01-15 09:00:00",
                Some("2026-01-15 10:00:00"),
            ),
        ]);
        let sql = "SELECT agent_id, activity_code, started_at, ended_at FROM acd_agent_states \
               WHERE started_at >= {lookback_start} AND started_at < {window_end} \
                 AND (started_at >= {window_start} OR ended_at IS NULL OR ended_at >= {window_start})";
        let system = source.system_with_sql("unordered", PARIS, WindowParameters::Bound, sql);

        // When it is synced
        let err = format!("{:#}", store.sync(&system, day("2026-01-15")).unwrap_err());

        // Then the error names the row and the fix, and no session is written
        assert!(err.contains("row 2") && err.contains("ORDER BY"), "{err}");
        assert_eq!(store.count("SELECT COUNT(*) FROM agent_sessions"), 0);
        assert_eq!(
            store.count("SELECT COUNT(*) FROM import_runs WHERE status = 'failed'"),
            1
        );
    }
);

/// A source whose rows carry a change key set from a sequence on every insert and update, the window
/// query returning it as a 5th column, and the changes query.
fn incremental_source(
    kind: StoreKind,
) -> (TestStore, Source, acdsync::config::ExternalSystemConfig) {
    let store = TestStore::new(kind);
    let source = Source::new(SourceKind::Postgres);
    source.execute("CREATE SEQUENCE acd_change_seq");
    source.execute(
        "ALTER TABLE acd_agent_states ADD COLUMN change_id bigint NOT NULL DEFAULT nextval('acd_change_seq')",
    );
    let system = incremental_system(
        PARIS,
        &source,
        "change_id",
        "change_id >",
        WatermarkKind::Integer,
    );
    (store, source, system)
}

fn run(
    store: &TestStore,
    system: &acdsync::config::ExternalSystemConfig,
    target: Target,
) -> sync::RunReport {
    let mut s = store.open();
    s.lock(false).unwrap();
    sync::sync(&mut s, system, target).unwrap()
}

on_both_stores!(
    incremental_runs_end_with_the_same_sessions_as_a_fresh_import,
    |kind| {
        // Given an incremental system whose source holds today's first rows, synced once (full: it sets the
        // watermark)
        let (store, source, system) = incremental_source(kind);
        let today = sync::Days::today(chrono_tz::Europe::Paris)
            .first
            .to_string();
        let rows = day_rows(&today, 120, 11, false);
        let (early, late) = rows.split_at(rows.len() / 3);
        insert(&source, early);
        let first = run(&store, &system, Target::Today);
        assert_eq!(first.mode, Mode::Full);
        assert_eq!(
            first.watermark.as_deref(),
            Some(early.len().to_string().as_str())
        );

        // When the rest of the day arrives and some rows change (new change keys), synced incrementally
        insert(&source, late);
        source.execute(
            "UPDATE acd_agent_states SET activity_code = 'CHANGED', change_id = nextval('acd_change_seq') \
             WHERE change_id % 50 = 0",
        );
        let r = run(&store, &system, Target::Today);

        // Then only the changes were read, the watermark moved to the largest key, and the tables equal a
        // fresh full import of the same source
        assert_eq!(r.mode, Mode::Changes);
        assert!(r.counts.read < rows.len() as u64, "{:?}", r.counts);
        assert_eq!(r.counts.deleted, 0);
        let max: i64 = source.max_change_id();
        assert_eq!(r.watermark, Some(max.to_string()));
        let mut plain = system.clone();
        plain.incremental = None;
        let fresh = {
            let other = TestStore::new(kind);
            let mut s = other.open();
            s.lock(false).unwrap();
            let sql = "SELECT agent_id, activity_code, started_at, ended_at FROM acd_agent_states \
                 WHERE started_at >= {lookback_start} AND started_at < {window_end} \
                   AND (started_at >= {window_start} OR ended_at IS NULL OR ended_at >= {window_start}) \
                 ORDER BY started_at";
            let plain = source.system_with_sql("inc", PARIS, WindowParameters::Bound, sql);
            sync::sync(&mut s, &plain, Target::Today).unwrap();
            other.view()
        };
        assert_same(&store.view(), &fresh);

        // And a run with nothing new reads nothing; a row deleted in the source waits for the full sync
        let idle = run(&store, &system, Target::Today);
        assert_eq!((idle.mode, idle.counts.read), (Mode::Changes, 0));
        source.execute("DELETE FROM acd_agent_states WHERE change_id = (SELECT min(change_id) FROM acd_agent_states)");
        let full = run(
            &store,
            &system,
            Target::Days(sync::Days::today(chrono_tz::Europe::Paris)),
        );
        assert_eq!((full.mode, full.counts.deleted), (Mode::Full, 1));
        assert_eq!(
            full.watermark,
            Some(max.to_string()),
            "a full sync keeps the watermark"
        );
    }
);

on_both_stores!(
    a_failed_incremental_run_leaves_the_watermark_where_it_was,
    |kind| {
        // Given an incremental system with a watermark
        let (store, source, system) = incremental_source(kind);
        let today = sync::Days::today(chrono_tz::Europe::Paris)
            .first
            .to_string();
        insert(&source, &day_rows(&today, 10, 3, false));
        let first = run(&store, &system, Target::Today);
        let watermark = first.watermark.clone().unwrap();

        // When new rows arrive but the changes query fails (its table is gone)
        insert(&source, &day_rows(&today, 12, 4, false)[..5]);
        source.execute("ALTER TABLE acd_agent_states RENAME TO gone");
        let mut s = store.open();
        s.lock(false).unwrap();
        let err = sync::sync(&mut s, &system, Target::Today).unwrap_err();
        drop(s);

        // Then nothing was written and the watermark did not move
        assert!(format!("{err:#}").contains("changes.sql"), "{err:#}");
        assert_eq!(
            store.count(&format!(
                "SELECT COUNT(*) FROM external_systems WHERE watermark = '{watermark}'"
            )),
            1
        );
        assert_eq!(
            store.count(
                "SELECT COUNT(*) FROM import_runs WHERE mode = 'changes' AND status = 'failed'"
            ),
            1
        );
    }
);

on_both_stores!(
    a_session_changed_twice_in_one_changes_run_is_written_once,
    |kind| {
        // Given an incremental system with a watermark, and a source that then holds the same session twice
        // (agent and start), in rows far apart in the changes result
        let (store, source, mut system) = incremental_source(kind);
        let today = sync::Days::today(chrono_tz::Europe::Paris)
            .first
            .to_string();
        insert(&source, &day_rows(&today, 3, 5, false));
        run(&store, &system, Target::Today);
        let start = format!("{today} 05:00:00");
        let mut rows = vec![(
            "DUP".to_owned(),
            Some("FIRST".to_owned()),
            start.clone(),
            None,
        )];
        rows.extend(
            day_rows(&today, 4, 6, false)
                .into_iter()
                .map(|(a, c, s, e)| (format!("X{a}"), c, s, e)),
        );
        rows.push(("DUP".to_owned(), Some("SECOND".to_owned()), start, None));
        insert(&source, &rows);

        // When the changes are read in batches of 5 rows
        system.batch_rows = 5;
        let r = run(&store, &system, Target::Today);

        // Then the run succeeds, and the session is stored once, as the last row read says
        assert_eq!(r.mode, Mode::Changes);
        assert_eq!(
        store.count("SELECT COUNT(*) FROM agent_sessions s JOIN external_agent_ids a ON a.id = s.external_agent_id WHERE a.external_id = 'DUP'"),
        1
    );
    }
);

on_both_stores!(
    a_write_the_store_refuses_fails_the_run_without_hanging,
    |kind| {
        // Given an incremental system with a watermark, and new rows of a known agent and code read in
        // batches of one row, so that each batch looks its session up while the insert of the batch
        // before it is still queued
        let (store, source, mut system) = incremental_source(kind);
        let today = sync::Days::today(chrono_tz::Europe::Paris).first;
        let row = |h: u32| {
            let at = |m: u32| format!("{today} {h:02}:{m:02}:00");
            ("A".to_owned(), Some("C1".to_owned()), at(0), Some(at(30)))
        };
        insert(&source, &[row(1)]);
        let first = run(&store, &system, Target::Today);
        insert(&source, &[row(2), row(3), row(4), row(5)]);
        system.batch_rows = 1;
        // And a trigger (a DBA's) that refuses every new session, slowly
        match kind {
            StoreKind::Postgres => store.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN PERFORM pg_sleep(0.5); RAISE EXCEPTION 'refused by a test trigger'; END $$; \
                 CREATE TRIGGER refuse BEFORE INSERT ON agent_sessions \
                 FOR EACH ROW EXECUTE FUNCTION refuse();",
            ),
            StoreKind::Sqlite => store.execute(
                "CREATE TABLE slow AS WITH RECURSIVE c(x) AS \
                   (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT x FROM c; \
                 CREATE TRIGGER refuse BEFORE INSERT ON agent_sessions BEGIN \
                   SELECT RAISE(ABORT, 'refused by a test trigger') \
                   WHERE (SELECT count(*) FROM slow WHERE x % 7 = 3) >= 0; END;",
            ),
        }
        .unwrap();

        // When the changes are synced
        let (tx, rx) = std::sync::mpsc::channel();
        let (url, sys) = (store.database_url(), system.clone());
        std::thread::spawn(move || {
            let mut s = acdsync::store::Store::open(&url, acdsync::store::Create::Never).unwrap();
            s.lock(false).unwrap();
            let _ = tx.send(sync::sync(&mut s, &sys, Target::Today).map_err(|e| format!("{e:#}")));
        });
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the sync ends instead of waiting for ever");

        // Then it fails with the store's reason, writes nothing and leaves the watermark
        let err = result.unwrap_err();
        assert!(err.contains("refused by a test trigger"), "{err}");
        assert_eq!(store.count("SELECT COUNT(*) FROM agent_sessions"), 1);
        assert_eq!(
            store.count(
                "SELECT COUNT(*) FROM import_runs WHERE mode = 'changes' AND status = 'failed'"
            ),
            1
        );
        assert_eq!(
            store.count(&format!(
                "SELECT COUNT(*) FROM external_systems WHERE watermark = '{}'",
                first.watermark.unwrap()
            )),
            1
        );
    }
);

/// An incremental system whose change key is a `timestamptz` set by the source server's clock, the source
/// database's TimeZone set to `zone`.
fn timestamp_watermark_source(
    zone: &str,
) -> (TestStore, Source, acdsync::config::ExternalSystemConfig) {
    let store = TestStore::new(StoreKind::Sqlite);
    let source = Source::new(SourceKind::Postgres);
    source.execute(&format!(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), '{zone}'); END $$"
    ));
    source.execute(
        "ALTER TABLE acd_agent_states ADD COLUMN changed_at timestamptz NOT NULL DEFAULT clock_timestamp()",
    );
    let system = incremental_system(
        PARIS,
        &source,
        "CAST(changed_at AS text)",
        "changed_at >",
        WatermarkKind::Timestamp,
    );
    (store, source, system)
}

#[test]
fn a_timestamp_watermark_reads_each_change_once_whatever_the_source_servers_time_zone() {
    for zone in ["America/New_York", "Asia/Tokyo"] {
        // Given a full sync that set the watermark from the source's change timestamps
        let (store, source, system) = timestamp_watermark_source(zone);
        let today = sync::Days::today(chrono_tz::Europe::Paris)
            .first
            .to_string();
        insert(&source, &day_rows(&today, 3, 8, false));
        let first = run(&store, &system, Target::Today);
        assert_eq!(first.mode, Mode::Full);
        assert!(
            first
                .watermark
                .as_deref()
                .is_some_and(|w| w.ends_with("+00:00")),
            "{first:?}"
        );

        // When one row changes afterwards and a changes run follows
        source.execute(
            "UPDATE acd_agent_states SET activity_code = 'LATE', changed_at = clock_timestamp() \
                        WHERE started_at = (SELECT min(started_at) FROM acd_agent_states)",
        );
        let r = run(&store, &system, Target::Today);

        // Then it reads exactly that row (not nothing west of UTC, not the day east of it), and stores it
        assert_eq!(r.mode, Mode::Changes);
        assert_eq!((r.counts.read, r.counts.updated), (1, 1), "{zone}");
    }
}

on_both_stores!(
    a_start_corrected_on_an_earlier_day_leaves_no_duplicate_after_the_full_sync,
    |kind| {
        // Given an incremental system, yesterday synced in full with a session 09:00 -> 10:00, and today's
        // full sync that set the watermark
        let (store, source, system) = incremental_source(kind);
        let today = sync::Days::today(chrono_tz::Europe::Paris).first;
        let yesterday = today - chrono::Duration::days(1);
        insert(
            &source,
            &[(
                "C".to_owned(),
                Some("X".to_owned()),
                format!("{yesterday} 09:00:00"),
                Some(format!("{yesterday} 10:00:00")),
            )],
        );
        run(&store, &system, Target::Days(sync::Days::one(yesterday)));
        run(&store, &system, Target::Today);

        // When the source corrects that session's start to 09:01 and a changes run reads it
        source.execute(&format!(
            "UPDATE acd_agent_states SET started_at = '{yesterday} 09:01:00', change_id = nextval('acd_change_seq') WHERE agent_id = 'C'"
        ));
        let changes = run(&store, &system, Target::Today);
        assert_eq!((changes.mode, changes.counts.inserted), (Mode::Changes, 1));
        let sessions_of_c = "SELECT COUNT(*) FROM agent_sessions s JOIN external_agent_ids a \
                             ON a.id = s.external_agent_id WHERE a.external_id = 'C'";
        assert_eq!(
            store.count(sessions_of_c),
            2,
            "a changes run cannot delete the old start"
        );
        assert_eq!(store.count("SELECT COUNT(*) FROM changed_days"), 1);

        // And then the full sync of today runs (periodic, or sync --full)
        let mut s = store.open();
        s.lock(false).unwrap();
        let outcomes =
            sync::sync_and_reconcile(&mut s, &system, Target::Days(sync::Days::one(today)));
        drop(s);

        // Then it also reads yesterday in full: one session for C, at the corrected start, and nothing
        // left to reconcile
        assert_eq!(outcomes.len(), 2);
        let yesterdays = outcomes[1].as_ref().unwrap();
        assert_eq!(
            (yesterdays.days.first, yesterdays.counts.deleted),
            (yesterday, 1)
        );
        assert_eq!(store.count(sessions_of_c), 1);
        assert_eq!(store.count("SELECT COUNT(*) FROM changed_days"), 0);
    }
);
