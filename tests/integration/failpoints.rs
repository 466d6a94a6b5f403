//! Failpoints (issue 16): every named failpoint of a sync (`acdsync::failpoint::POINTS`) × {an error
//! returned, the process aborted} × {PostgreSQL, SQLite store}, and for the points a run passes once per
//! batch (each batch fetched, each batch written) a later pass too. In each case a store synced once from a
//! day of sessions syncs the day as its source corrected it, and that sync meets the failpoint; the runs
//! table must tell the truth about it, and one more plain sync must leave exactly the store a clean sync of
//! the corrected day gives a fresh store. docs/reliability.md lists the points and the number of cases.

use std::os::unix::process::ExitStatusExt;

use acdsync::failpoint::POINTS;

use crate::common::*;
use crate::on_both_stores;
use crate::storage_faults::*;

/// The points a run passes once per batch: their first pass and their third are swept (a run of the
/// corrected day fetches 13 batches and writes 3: inserts, updates, deletes).
const PER_BATCH: &[&str] = &["batch_fetched", "batch_written"];

/// The points passed before the run's row is written in `import_runs`.
const BEFORE_THE_RUN_ROW: &[&str] = &["store_connected", "lock_taken"];

/// The point passed once the run is committed.
const COMMITTED: &str = "after_commit";

/// How many cases the sweep runs on each store: docs/reliability.md and the README say so.
const CASES_PER_STORE: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Error,
    Abort,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Error => "error",
            Action::Abort => "abort",
        }
    }
}

/// Which passes of `point` fail.
fn passes(point: &str) -> &'static [u64] {
    match PER_BATCH.contains(&point) {
        true => &[1, 3],
        false => &[1],
    }
}

/// The statuses of the runs the faulty sync leaves in `import_runs`, before the next run and after it.
fn recorded(point: &str, action: Action) -> (&'static [&'static str], &'static [&'static str]) {
    match (point, action) {
        (p, _) if BEFORE_THE_RUN_ROW.contains(&p) => (&[], &[]),
        (COMMITTED, _) => (&["succeeded"], &["succeeded"]),
        (_, Action::Error) => (&["failed"], &["failed"]),
        // Nobody could write more: the next run of the system marks it.
        (_, Action::Abort) => (&["running"], &["abandoned"]),
    }
}

/// One case: a fresh store of `kind` synced once from `day.before`, then the sync of `day.after` failing at
/// the `nth` pass of `point` by `action`, then one more plain sync. `before` and `after` are what clean
/// syncs of the two days give a fresh store.
fn case(
    kind: StoreKind,
    day: &Day,
    (before, after): (&Contents, &Contents),
    (point, nth, action): (&str, u64, Action),
) {
    // Given a store synced once from the day
    let store = TestStore::migrated(kind);
    let dir = tempfile::tempdir().unwrap();
    let before_cfg = config(dir.path(), "before.toml", &store.url, &day.before);
    let after_cfg = config(dir.path(), "after.toml", &store.url, &day.after);
    let armed = format!("{point}={}@{nth}", action.name());
    plain_sync(&before_cfg, &armed);
    assert_eq!(&contents(&store), before, "{kind:?} store, {armed}");
    let last = last_run_id(&store);

    // When the sync of the corrected day meets the failpoint
    let out = acdsync(&after_cfg)
        .env("ACDSYNC_FAILPOINTS", &armed)
        .output()
        .unwrap();
    let err = stderr(&out);
    let what = format!("{kind:?} store, {armed}: {:?}\n{err}", out.status);

    // Then an error fails the sync (exit 1) saying so; an abort ends the process at once (SIGABRT)
    match action {
        Action::Error => {
            assert_eq!(out.status.code(), Some(1), "{what}");
            assert!(
                said(&err).contains(&format!("failpoint {point}: injected error")),
                "{what}"
            );
        }
        Action::Abort => {
            assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{what}");
            assert!(
                err.contains(&format!("acdsync: failpoint {point}: aborting")),
                "{what}"
            );
        }
    }

    // And the runs table tells the truth about it: no row before the run's row is written; `succeeded` once
    // committed; else `failed` with the failpoint in its error, or `running` when the process died; and the
    // store holds what that says (all of the run once committed, none of it otherwise)
    let (now, settled) = recorded(point, action);
    let runs = runs_since(&store, last);
    assert_eq!(statuses(&runs), now, "{what}\n{runs:?}");
    if now == ["failed"] {
        let error = runs[0].error.as_deref().unwrap_or_default();
        assert!(
            error.contains(&format!("failpoint {point}")),
            "{what}\n{runs:?}"
        );
    }
    let kept = match point {
        COMMITTED => after,
        _ => before,
    };
    assert_eq!(&contents(&store), kept, "{what}");

    // When one more plain sync runs
    plain_sync(&after_cfg, &what);

    // Then the store is exactly what a clean sync of the corrected day gives a fresh store, the faulty run's
    // row is settled (an aborted run's `abandoned`), the new run `succeeded`, and no run is left `running`
    assert_eq!(&contents(&store), after, "{what}");
    let runs = runs_since(&store, last);
    let mut want = settled.to_vec();
    want.push("succeeded");
    assert_eq!(statuses(&runs), want, "{what}\n{runs:?}");
    assert_eq!(
        store.count("SELECT COUNT(*) FROM import_runs WHERE status = 'running'"),
        0,
        "{what}"
    );
}

on_both_stores!(
    every_failpoint_met_by_an_error_or_an_abort_is_made_good_by_the_next_run,
    |kind| {
        // Given a day of 3,000 sessions in an SQLite source and the same day corrected a little (inserts,
        // updates and deletes to do), and what a clean sync of each gives a fresh store
        let day = Day::new();
        let before = clean_sync(kind, &day.before);
        let after = clean_sync(kind, &day.after);
        assert_ne!(before, after);

        // When the sync of the correction meets each failpoint, at each swept pass, with each action, Then
        // (`case`) the runs table tells the truth and one more run leaves the clean run's store
        let (mut cases, mut wrong) = (0, Vec::new());
        for point in POINTS {
            for &nth in passes(point) {
                for action in [Action::Error, Action::Abort] {
                    let one = || case(kind, &day, (&before, &after), (point, nth, action));
                    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(one)) {
                        wrong.push(panic_text(p));
                    }
                    cases += 1;
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "{} of {cases} cases went wrong:\n\n{}",
            wrong.len(),
            wrong.join("\n\n")
        );

        // And every point was swept: a new point in POINTS is swept too, and changes this number (say it in
        // docs/reliability.md and the README)
        assert_eq!(cases, CASES_PER_STORE);
    }
);

#[test]
fn an_error_after_the_commit_does_not_say_that_nothing_was_written() {
    // Given a store synced once from the day
    let day = Day::new();
    let store = TestStore::migrated(StoreKind::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    plain_sync(
        &config(dir.path(), "before.toml", &store.url, &day.before),
        "the first sync",
    );

    // When the sync of the corrected day fails after its commit
    let out = acdsync(&config(dir.path(), "after.toml", &store.url, &day.after))
        .env("ACDSYNC_FAILPOINTS", "after_commit=error")
        .output()
        .unwrap();

    // Then it fails (exit 1), and what it says agrees with the store: the run's writes are there
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(contents(&store), clean_sync(StoreKind::Sqlite, &day.after));
    assert!(!said(&err).contains("nothing written"), "{err}");
}
