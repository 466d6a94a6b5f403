//! Named failpoints at every step boundary of a sync, compiled in only with the feature `failpoints` (the
//! test command's build; a release build has none: `hit` is then an empty inline function).
//!
//! `ACDSYNC_FAILPOINTS="NAME=ACTION[@N];…"` arms them: at the Nth time (default the first) the sync passes
//! NAME, `error` makes the step fail with an error (the run goes on as for any failure: rolled back,
//! recorded `failed`), `abort` ends the process at once (`abort()`: no rollback, no cleanup, as a crash or
//! SIGKILL), and `pause` prints `acdsync: failpoint NAME: paused` on standard error and sleeps 5 s, so that
//! a test can act meanwhile (cut the store's connection at COMMIT, say). `tests/integration/failpoints.rs` sweeps every point × both actions × both stores.

/// Every failpoint, in the order a sync passes them.
pub const POINTS: &[&str] = &[
    // The WFM database is open (and its schema checked).
    "store_connected",
    // The run lock is held.
    "lock_taken",
    // The source's ODBC connection is open, its query not yet run.
    "source_connected",
    // After each batch fetched from the source.
    "batch_fetched",
    // After each batch of sessions written (inserted, updated or deleted) in the run's transaction.
    "batch_written",
    // The merge is done; the run's record (counts, first/last seen, watermark, import_runs row) is next.
    "before_run_record",
    // The run is recorded in its transaction; COMMIT is next.
    "before_commit",
    // Committed: the sessions and the run's row are durable.
    "after_commit",
];

#[cfg(feature = "failpoints")]
mod armed {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Action {
        Error,
        Abort,
        Pause,
    }

    fn plan() -> &'static HashMap<String, (Action, u64)> {
        static PLAN: OnceLock<HashMap<String, (Action, u64)>> = OnceLock::new();
        PLAN.get_or_init(|| {
            let spec = std::env::var("ACDSYNC_FAILPOINTS").unwrap_or_default();
            spec.split(';')
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    let (name, action) = s.split_once('=').unwrap_or_else(|| {
                        panic!("ACDSYNC_FAILPOINTS: {s:?} is not NAME=ACTION[@N]")
                    });
                    let (action, nth) = action.split_once('@').unwrap_or((action, "1"));
                    let action = match action.trim() {
                        "error" => Action::Error,
                        "abort" => Action::Abort,
                        "pause" => Action::Pause,
                        other => panic!("ACDSYNC_FAILPOINTS: unknown action {other:?}"),
                    };
                    let nth = nth
                        .trim()
                        .parse()
                        .expect("ACDSYNC_FAILPOINTS: @N is a number");
                    assert!(
                        super::POINTS.contains(&name.trim()),
                        "ACDSYNC_FAILPOINTS: unknown failpoint {name:?}"
                    );
                    (name.trim().to_owned(), (action, nth))
                })
                .collect()
        })
    }

    pub fn hit(name: &'static str) -> anyhow::Result<()> {
        let Some(&(action, nth)) = plan().get(name) else {
            return Ok(());
        };
        static HITS: Mutex<Option<HashMap<&'static str, u64>>> = Mutex::new(None);
        let count = {
            let mut hits = HITS.lock().unwrap_or_else(|e| e.into_inner());
            let n = hits
                .get_or_insert_with(HashMap::new)
                .entry(name)
                .or_insert(0);
            *n += 1;
            *n
        };
        if count != nth {
            return Ok(());
        }
        match action {
            Action::Error => Err(anyhow::anyhow!("failpoint {name}: injected error")),
            Action::Abort => {
                eprintln!("acdsync: failpoint {name}: aborting");
                std::process::abort()
            }
            Action::Pause => {
                eprintln!("acdsync: failpoint {name}: paused");
                std::thread::sleep(std::time::Duration::from_secs(5));
                Ok(())
            }
        }
    }
}

/// Passes the failpoint `name` (see the module's documentation).
#[cfg(feature = "failpoints")]
pub fn hit(name: &'static str) -> anyhow::Result<()> {
    debug_assert!(POINTS.contains(&name), "unknown failpoint {name}");
    armed::hit(name)
}

/// Passes the failpoint `name`: nothing without the feature `failpoints`.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &'static str) -> anyhow::Result<()> {
    Ok(())
}
