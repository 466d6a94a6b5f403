//! Storage faults (issue 16). On an SQLite store: a full disk or an I/O error at any write of a run (strace
//! makes the Nth pwrite64 fail) ends in a clear error, leaves the file intact and equal to what it was before
//! or after the run, and the next run converges to a clean run's store; a read-only store file is said so; a
//! store path that does not exist is refused by `sync` and created by `migrate`. On a PostgreSQL store: the
//! connection cut at COMMIT (before it, and just after it): the runs table says what became of the cut run,
//! and the next run converges.
//!
//! The helpers at the top (a day of sessions and its correction, configs, runs) serve `failpoints.rs` too.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use acdsync::store::schema::import_runs::dsl as r;
use diesel::prelude::*;

use crate::common::*;

/// The day every test here syncs.
pub const DATE: &str = "2026-01-15";

/// Rows fetched from the source per batch (and stored sessions read per page): small, so that a run of the
/// day fetches 13 batches.
pub const BATCH_ROWS: usize = 250;

/// A day of sessions in two SQLite sources: `before`, 3,000 sessions of 100 agents from 06:00 to 16:00
/// (codes BREAK and LUNCH), and `after`, the same day corrected a little, as a source does between two
/// syncs: 66 sessions updated (60 ends, 6 codes to a new code TRAINING), 6 deleted (0.2 %), 40 inserted (20
/// new agents, a new code MEETING). A sync from one to the other inserts, updates and deletes.
pub struct Day {
    pub before: Source,
    pub after: Source,
}

impl Day {
    pub fn new() -> Day {
        let day = Day {
            before: Source::new(SourceKind::Sqlite),
            after: Source::new(SourceKind::Sqlite),
        };
        for source in [&day.before, &day.after] {
            source.execute(
                "INSERT INTO acd_agent_states \
                 WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2999) \
                 SELECT 'A' || (i % 100), CASE WHEN i % 7 = 0 THEN 'BREAK' WHEN i % 11 = 0 THEN 'LUNCH' END, \
                        datetime('2026-01-15 06:00:00', '+' || (i / 100 * 20) || ' minutes'), \
                        datetime('2026-01-15 06:00:00', '+' || (i / 100 * 20 + 20) || ' minutes') FROM n",
            );
        }
        for change in [
            "UPDATE acd_agent_states SET ended_at = datetime(ended_at, '-2 minutes') WHERE agent_id IN ('A3', 'A17')",
            "UPDATE acd_agent_states SET activity_code = 'TRAINING' WHERE agent_id = 'A5' AND started_at < '2026-01-15 08:00:00'",
            "DELETE FROM acd_agent_states WHERE agent_id = 'A9' AND started_at >= '2026-01-15 14:00:00'",
            "INSERT INTO acd_agent_states \
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 39) \
             SELECT 'N' || (i % 20), CASE WHEN i % 2 = 0 THEN 'MEETING' END, \
                    datetime('2026-01-15 16:00:00', '+' || (i / 20 * 30) || ' minutes'), \
                    datetime('2026-01-15 16:00:00', '+' || (i / 20 * 30 + 30) || ' minutes') FROM n",
        ] {
            day.after.execute(change);
        }
        assert_eq!((day.before.rows(), day.after.rows()), (3000, 3034));
        day
    }
}

/// A config file `name` in `dir`: the store at `url`, one system `acd` (UTC) reading `source` with the
/// generic sessions query, BATCH_ROWS rows a batch.
pub fn config(dir: &Path, name: &str, url: &str, source: &Source) -> PathBuf {
    std::fs::write(dir.join("q.sql"), acdsync::demo::GENERIC_SESSIONS_SQL).unwrap();
    let cfg = dir.join(name);
    let system = system_toml(
        "acd",
        "UTC",
        "q.sql",
        &format!(
            "connection_string = \"{}\"\nwindow_parameters = \"literal\"\nbatch_rows = {BATCH_ROWS}",
            source.connection_string
        ),
    );
    std::fs::write(&cfg, format!("[wfm]\ndatabase_url = \"{url}\"\n\n{system}")).unwrap();
    cfg
}

/// The arguments of `acdsync sync` of the day with the config `cfg` (waiting up to 10 s for the run lock,
/// which PostgreSQL frees a moment after a process that held it died).
pub fn sync_args(cfg: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--config".into(), cfg.into()];
    args.extend(["sync", "--date", DATE, "--wait-lock", "10s"].map(OsString::from));
    args
}

/// `acdsync sync` of the day with the config `cfg`, run in the config's folder, with no failpoint armed.
pub fn acdsync(cfg: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("acdsync"));
    c.current_dir(cfg.parent().unwrap())
        .env_remove("ACDSYNC_DATABASE_URL")
        .env_remove("ACDSYNC_CONFIG")
        .env_remove("ACDSYNC_FAILPOINTS")
        .args(sync_args(cfg));
    c
}

/// Runs `acdsync sync` with `cfg` and requires it to succeed.
pub fn plain_sync(cfg: &Path, what: &str) -> Output {
    let out = acdsync(cfg).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: a plain sync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What a store holds after a sync: the `external_activity` view and the number of sessions.
#[derive(Debug, PartialEq)]
pub struct Contents {
    pub view: Vec<ViewRow>,
    pub sessions: i64,
}

pub fn contents(store: &TestStore) -> Contents {
    Contents {
        view: store.view(),
        sessions: store.count("SELECT COUNT(*) FROM agent_sessions"),
    }
}

/// What a fresh store of `kind` holds after one clean sync of `source`.
pub fn clean_sync(kind: StoreKind, source: &Source) -> Contents {
    let store = TestStore::migrated(kind);
    let dir = tempfile::tempdir().unwrap();
    plain_sync(
        &config(dir.path(), "clean.toml", &store.url, source),
        "the clean run",
    );
    let clean = contents(&store);
    assert!(clean.sessions >= 3000, "{}", clean.sessions);
    clean
}

/// A row of `import_runs`: id, status, error.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct Run {
    pub id: i64,
    pub status: String,
    pub error: Option<String>,
}

/// The runs recorded after run `id`, in order.
pub fn runs_since(store: &TestStore, id: i64) -> Vec<Run> {
    let q = r::import_runs
        .select((r::id, r::status, r::error))
        .filter(r::id.gt(id))
        .order(r::id);
    match &mut store.dba() {
        Dba::Postgres(c) => q.load(c),
        Dba::Sqlite(c) => q.load(c),
    }
    .unwrap()
}

/// The id of the last run recorded (0 when none).
pub fn last_run_id(store: &TestStore) -> i64 {
    store.count("SELECT COALESCE(MAX(id), 0) FROM import_runs")
}

/// The statuses of `runs`.
pub fn statuses(runs: &[Run]) -> Vec<&str> {
    runs.iter().map(|r| r.status.as_str()).collect()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What acdsync says to the operator on standard error (its `acdsync: ` lines, not the log).
pub fn said(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| l.starts_with("acdsync: "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An SQLite store synced once from `day.before`, and in `dir` the config of the sync of `day.after`.
struct SqliteSynced {
    store: TestStore,
    file: PathBuf,
    dir: tempfile::TempDir,
    after_cfg: PathBuf,
}

impl SqliteSynced {
    fn new(day: &Day) -> SqliteSynced {
        let store = TestStore::migrated(StoreKind::Sqlite);
        let file = PathBuf::from(store.url.strip_prefix("sqlite://").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let before_cfg = config(dir.path(), "before.toml", &store.url, &day.before);
        let after_cfg = config(dir.path(), "after.toml", &store.url, &day.after);
        plain_sync(&before_cfg, "the first sync");
        SqliteSynced {
            store,
            file,
            dir,
            after_cfg,
        }
    }

    /// The store file with its `-wal` and `-shm` (none once the last connection closed).
    fn files(&self) -> [PathBuf; 3] {
        let f = self.file.display();
        [
            self.file.clone(),
            format!("{f}-wal").into(),
            format!("{f}-shm").into(),
        ]
    }

    /// Saves the store's file as it is now (its connections closed: no `-wal` holds anything).
    fn snapshot(&self) -> Vec<u8> {
        for extra in &self.files()[1..] {
            assert!(!extra.exists(), "{} left behind", extra.display());
        }
        std::fs::read(&self.file).unwrap()
    }

    /// Puts the saved file back.
    fn restore(&self, saved: &[u8]) {
        for extra in &self.files()[1..] {
            let _ = std::fs::remove_file(extra);
        }
        std::fs::write(&self.file, saved).unwrap();
    }

    fn integrity_ok(&self) -> bool {
        self.store
            .count("SELECT COUNT(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'")
            == 1
    }
}

/// `acdsync sync` with `cfg` under `strace -f` tracing pwrite64 (to `trace`, or nowhere), with `inject` if
/// given (`pwrite64:error=ENOSPC:when=7`, say).
fn under_strace(cfg: &Path, trace: &Path, inject: Option<&str>) -> Output {
    let mut c = Command::new("strace");
    c.args(["-f", "-qq", "-e", "trace=pwrite64", "-o"])
        .arg(trace)
        .current_dir(cfg.parent().unwrap());
    if let Some(inject) = inject {
        c.args(["-e", &format!("inject={inject}")]);
    }
    c.arg("--")
        .arg(assert_cmd::cargo::cargo_bin("acdsync"))
        .args(sync_args(cfg))
        .env_remove("ACDSYNC_DATABASE_URL")
        .env_remove("ACDSYNC_CONFIG")
        .env_remove("ACDSYNC_FAILPOINTS")
        .output()
        .unwrap()
}

/// The pwrite64 calls of the busiest thread in an `strace -f -o` trace. strace counts the calls of each
/// thread apart (`when=N` fails the Nth call of every thread that makes N), so this is how far N goes.
fn pwrite_calls(trace: &Path) -> u64 {
    let mut per_thread = std::collections::HashMap::<&str, u64>::new();
    let text = std::fs::read_to_string(trace).unwrap();
    for line in text.lines().filter(|l| l.contains("pwrite64(")) {
        // (`PID pwrite64(…`: strace -f names the thread of each call.)
        let thread = line
            .split_once(' ')
            .filter(|(pid, _)| pid.bytes().all(|b| b.is_ascii_digit()))
            .map_or("", |(pid, _)| pid);
        *per_thread.entry(thread).or_default() += 1;
    }
    per_thread.values().copied().max().unwrap_or(0)
}

/// Every N up to `calls` if they are 40 or fewer, else 40 values spread from the first call to the last.
fn spread(calls: u64) -> Vec<u64> {
    match calls {
        0..=40 => (1..=calls).collect(),
        _ => (0..40).map(|k| 1 + k * (calls - 1) / 39).collect(),
    }
}

/// What one faulty run of `a_full_disk_or_an_io_error_at_any_write…` is checked against.
struct Sweep<'a> {
    s: &'a SqliteSynced,
    saved: &'a [u8],
    before: &'a Contents,
    after: &'a Contents,
    calls: u64,
}

impl Sweep<'_> {
    /// One faulty run: the store as it was, its sync's `n`th pwrite64 failing with `errno`; then one more
    /// plain run. Returns whether the faulty run failed.
    fn fault(&self, errno: &str, n: u64) -> bool {
        // When the sync of the correction runs on the store as it was, its Nth write failing with a full disk
        // (ENOSPC) or an I/O error (EIO)
        let s = self.s;
        s.restore(self.saved);
        let last = last_run_id(&s.store);
        let out = under_strace(
            &s.after_cfg,
            Path::new("/dev/null"),
            Some(&format!("pwrite64:error={errno}:when={n}")),
        );
        let err = stderr(&out);
        let what = format!(
            "{errno} at pwrite64 {n} of {}: {:?}\n{err}",
            self.calls, out.status
        );

        // Then the file is intact, and holds what it held before the run or what the run makes of it, as the
        // runs table says
        assert!(s.integrity_ok(), "{what}");
        let now = contents(&s.store);
        let runs = runs_since(&s.store, last);
        if &now == self.after {
            assert_eq!(
                statuses(&runs).last(),
                Some(&"succeeded"),
                "{what}: the run's sessions are stored, but import_runs says {runs:?}"
            );
        } else {
            assert!(
                &now == self.before,
                "{what}: the store is neither before nor after"
            );
            assert!(
                !statuses(&runs).contains(&"succeeded"),
                "{what}: nothing of the run is stored, but import_runs says {runs:?}"
            );
        }

        // And a run that failed exits with a code of its own, saying what happened (not the failed rollback
        // that may follow) and naming the file
        let failed = match out.status.code() {
            Some(0) => {
                assert!(
                    &now == self.after,
                    "{what}: exit 0 but the run's writes are missing"
                );
                false
            }
            Some(_) => {
                // (A full disk met while SQLite grows FILE-shm is an I/O error to SQLite.)
                let told = err.contains("disk I/O error")
                    || (errno == "ENOSPC" && err.contains("database or disk is full"));
                assert!(told, "{what}");
                assert!(!err.contains("cannot rollback"), "{what}");
                // (The operator must know which disk: the error names the store's file.)
                assert!(
                    said(&err).contains(&s.file.display().to_string()),
                    "{what}: the error does not name the file"
                );
                true
            }
            None => panic!("{what}: killed by a signal"),
        };

        // And the next plain run converges to the clean run's store, and leaves no run `running`
        plain_sync(&s.after_cfg, &what);
        assert!(s.integrity_ok(), "{what}");
        assert_eq!(&contents(&s.store), self.after, "{what}");
        assert_eq!(
            s.store
                .count("SELECT COUNT(*) FROM import_runs WHERE status = 'running'"),
            0,
            "{what}"
        );
        failed
    }
}

/// The message of a caught panic.
pub fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_full_disk_or_an_io_error_at_any_write_leaves_the_sqlite_store_whole_and_the_next_run_converges(
) {
    // Given an SQLite store synced once from a day of 3,000 sessions, whose source then corrects 112 of them
    // (inserts, updates, deletes to do), and what a clean sync of the corrected day gives a fresh store
    let day = Day::new();
    let s = SqliteSynced::new(&day);
    let before = contents(&s.store);
    let after = clean_sync(StoreKind::Sqlite, &day.after);
    let saved = s.snapshot();

    // And the pwrite64 calls of the sync of the correction, counted under strace
    let trace = s.dir.path().join("pwrite64.trace");
    let counted = under_strace(&s.after_cfg, &trace, None);
    assert_eq!(counted.status.code(), Some(0), "{}", stderr(&counted));
    assert_eq!(contents(&s.store), after);
    let calls = pwrite_calls(&trace);
    assert!(calls > 0, "no pwrite64 call traced");

    // When each of those writes in turn fails, with ENOSPC and with EIO, Then (`Sweep::fault`) the file is
    // intact and holds the before or the after state, the run says what happened, and the next run converges
    let sweep = Sweep {
        s: &s,
        saved: &saved,
        before: &before,
        after: &after,
        calls,
    };
    let (mut failed, mut wrong) = (Vec::new(), Vec::new());
    for errno in ["ENOSPC", "EIO"] {
        for n in spread(calls) {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sweep.fault(errno, n))) {
                Ok(true) => failed.push(format!("{errno}@{n}")),
                Ok(false) => {}
                Err(p) => wrong.push(panic_text(p)),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} faulty runs went wrong:\n\n{}",
        wrong.len(),
        2 * spread(calls).len(),
        wrong.join("\n\n")
    );

    // And some of them made the run fail (a write SQLite retries, or a checkpoint after the commit, whose
    // failure SQLite absorbs, does not)
    for errno in ["ENOSPC", "EIO"] {
        assert!(
            failed.iter().any(|f| f.starts_with(errno)),
            "no {errno} made a run fail in {calls} pwrite64 calls"
        );
    }
}

#[test]
fn a_commit_that_meets_a_full_disk_names_the_database_file() {
    // Given an SQLite store synced once, and a sync with writes to do
    let day = Day::new();
    let s = SqliteSynced::new(&day);
    let saved = s.snapshot();
    let trace = s.dir.path().join("pwrite64.trace");
    let counted = under_strace(&s.after_cfg, &trace, None);
    assert_eq!(counted.status.code(), Some(0), "{}", stderr(&counted));
    let calls = pwrite_calls(&trace);

    // When the disk is full at each write of the run in turn
    let mut commits = 0;
    for n in spread(calls) {
        s.restore(&saved);
        let out = under_strace(
            &s.after_cfg,
            Path::new("/dev/null"),
            Some(&format!("pwrite64:error=ENOSPC:when={n}")),
        );
        let err = stderr(&out);
        // Then each failure names the file the disk could not take (the operator must know which disk)
        if !out.status.success() {
            commits += usize::from(err.contains("committing"));
            assert!(
                said(&err).contains(&s.file.display().to_string()),
                "ENOSPC at pwrite64 {n}: {err}"
            );
        }
        plain_sync(&s.after_cfg, "after a full disk");
    }
    assert!(commits > 0, "no injected fault failed a commit");
}

/// Makes `path` belong to nobody (uid and gid 65534) with `mode`.
fn nobodys(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(path, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `acdsync sync` with `cfg` run as nobody.
fn as_nobody(cfg: &Path) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(assert_cmd::cargo::cargo_bin("acdsync"))
        .args(sync_args(cfg))
        .current_dir(cfg.parent().unwrap())
        .env_remove("ACDSYNC_DATABASE_URL")
        .env_remove("ACDSYNC_CONFIG")
        .env_remove("ACDSYNC_FAILPOINTS")
        .output()
        .unwrap()
}

/// An SQLite store synced once (by root), in a folder that belongs to nobody, as do the store file, its lock
/// file, the sources and the configs; the store file's mode `store_mode`.
fn nobodys_store(day: &Day, store_mode: u32) -> SqliteSynced {
    let s = SqliteSynced::new(day);
    nobodys(s.file.parent().unwrap(), 0o755);
    nobodys(&s.file, store_mode);
    nobodys(&PathBuf::from(format!("{}.lock", s.file.display())), 0o644);
    for source in [&day.before, &day.after] {
        nobodys(source.path().parent().unwrap(), 0o755);
        nobodys(&source.path(), 0o644);
    }
    nobodys(s.dir.path(), 0o755);
    for f in ["before.toml", "after.toml", "q.sql"] {
        nobodys(&s.dir.path().join(f), 0o644);
    }
    s
}

#[test]
fn a_read_only_store_file_is_said_so_and_nothing_changes() {
    // Given an SQLite store synced once, the store file read-only (mode 0444) in a folder its user may write
    let day = Day::new();
    let s = nobodys_store(&day, 0o444);
    let before = contents(&s.store);

    // When that user (nobody) syncs a correction
    let out = as_nobody(&s.after_cfg);

    // Then the sync is refused as a configuration error that names the database and says it is not writable
    // by this user, and the store is as it was
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("not writable by this process (uid 65534)")
            && err.contains(&s.file.display().to_string()),
        "{err}"
    );
    assert_eq!(contents(&s.store), before);
}

#[test]
fn a_read_only_store_file_made_writable_again_syncs() {
    // Given an SQLite store file read-only (mode 0444) for its user, who tried to sync and was told so
    let day = Day::new();
    let s = nobodys_store(&day, 0o444);
    let refused = as_nobody(&s.after_cfg);
    assert_eq!(refused.status.code(), Some(78), "{}", stderr(&refused));

    // When the operator makes the file writable and the user syncs again, Then the sync names the file
    // still in the way: FILE-shm, which SQLite created read-only beside the read-only file (it copies the
    // file's mode), with its mode
    nobodys(&s.file, 0o644);
    let shm = PathBuf::from(format!("{}-shm", s.file.display()));
    let out = as_nobody(&s.after_cfg);
    if shm.exists() {
        assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("{} (mode 0444)", shm.display()))
                && !stderr(&out).contains(&format!("{} (mode", s.file.display())),
            "{}",
            stderr(&out)
        );
        // And once that file is writable too, it syncs
        nobodys(&shm, 0o644);
    }
    let out = as_nobody(&s.after_cfg);

    // Then the sync succeeds and the store is a clean run's
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        contents(&s.store),
        clean_sync(StoreKind::Sqlite, &day.after)
    );
}

#[test]
fn a_store_path_that_does_not_exist_is_refused_by_sync_and_created_by_migrate() {
    // Given a config whose SQLite store names a file that does not exist (a typo)
    let day = Day::new();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("wfm-typo.db");
    let cfg = config(
        dir.path(),
        "acdsync.toml",
        &format!("sqlite://{}", missing.display()),
        &day.before,
    );

    // When a sync runs, Then it is refused as a configuration error naming the file, and no file appears
    let out = acdsync(&cfg).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("does not exist"),
        "{err}"
    );
    assert!(!missing.exists(), "sync created the store file");

    // When `migrate` runs, Then it creates the file, and a sync then fills it as a clean run does
    let migrated = Command::new(assert_cmd::cargo::cargo_bin("acdsync"))
        .env_remove("ACDSYNC_DATABASE_URL")
        .env_remove("ACDSYNC_CONFIG")
        .arg("--config")
        .arg(&cfg)
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(migrated.status.code(), Some(0), "{}", stderr(&migrated));
    assert!(missing.exists());
    plain_sync(&cfg, "the sync after migrate");
    let url = format!("sqlite://{}", missing.display());
    assert_eq!(
        contents_at(&url),
        clean_sync(StoreKind::Sqlite, &day.before).view
    );
}

/// The `external_activity` view of the store at `url` (one that is not a `TestStore`).
fn contents_at(url: &str) -> Vec<ViewRow> {
    use acdsync::store::schema::external_activity::dsl as v;
    let q = v::external_activity
        .select((
            v::external_agent_id,
            v::employee_id,
            v::activity_code,
            v::activity_id,
            v::started_at,
            v::ended_at,
        ))
        .order((v::external_agent_id, v::started_at));
    match &mut Dba::open(url) {
        Dba::Postgres(c) => q.load(c),
        Dba::Sqlite(c) => q.load(c),
    }
    .unwrap()
}

/// A PostgreSQL store synced once from `day.before`, and configs for both sources in `dir`.
#[cfg(feature = "failpoints")]
struct PgSynced {
    store: TestStore,
    _dir: tempfile::TempDir,
    after_cfg: PathBuf,
}

#[cfg(feature = "failpoints")]
impl PgSynced {
    fn new(day: &Day) -> PgSynced {
        let store = TestStore::migrated(StoreKind::Postgres);
        let dir = tempfile::tempdir().unwrap();
        let before_cfg = config(dir.path(), "before.toml", &store.url, &day.before);
        let after_cfg = config(dir.path(), "after.toml", &store.url, &day.after);
        plain_sync(&before_cfg, "the first sync");
        PgSynced {
            store,
            _dir: dir,
            after_cfg,
        }
    }

    /// Runs the sync of `cfg` paused at the failpoint `point` (`ACDSYNC_FAILPOINTS=point=pause`: it says so
    /// and sleeps 5 s); meanwhile terminates its backend(s) of this store whose state is `state`. Returns the
    /// run's output and how many backends were terminated.
    fn cut_at(&self, cfg: &Path, point: &str, state: &str) -> (Output, i64) {
        use std::io::{BufRead, Read};
        let mut child = acdsync(cfg)
            .env("ACDSYNC_FAILPOINTS", format!("{point}=pause"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        let paused = format!("acdsync: failpoint {point}: paused");
        let mut text = String::new();
        while !text.contains(&paused) {
            if err.read_line(&mut text).unwrap() == 0 {
                panic!("the sync ended before it paused at {point}: {text}");
            }
        }
        // (The store's connections carry application_name 'acdsync'; the test's own connection does not.)
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let cut = loop {
            let cut = self.store.count(&format!(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = 'acdsync' AND datname = current_database() AND state = '{state}'"
            ));
            if cut > 0 || std::time::Instant::now() > deadline {
                break cut;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        err.read_to_string(&mut text).unwrap();
        let status = child.wait().unwrap();
        let out = Output {
            status,
            stdout: Vec::new(),
            stderr: text.into_bytes(),
        };
        (out, cut)
    }
}

#[cfg(feature = "failpoints")]
#[test]
fn a_postgresql_connection_cut_before_the_commit_keeps_nothing_and_the_next_run_converges() {
    // Given a PostgreSQL store synced once from a day of 3,000 sessions, whose source then corrects 112 of
    // them, and what a clean sync of the corrected day gives a fresh store
    let day = Day::new();
    let s = PgSynced::new(&day);
    let before = contents(&s.store);
    let after = clean_sync(StoreKind::Postgres, &day.after);
    let last = last_run_id(&s.store);

    // When the sync of the correction has written everything and recorded its run, and its store connection
    // is cut before COMMIT (its backend, idle in the open transaction, terminated)
    let (out, cut) = s.cut_at(&s.after_cfg, "before_commit", "idle in transaction");
    let err = stderr(&out);
    assert_eq!(cut, 1, "{err}");

    // Then the sync fails (1: the sync failed; 69: the WFM database cannot be reached) saying the commit
    // failed, nothing of it is kept, and no row says it succeeded
    assert!(
        matches!(out.status.code(), Some(1 | 69)),
        "{:?} {err}",
        out.status
    );
    assert!(said(&err).contains("committing"), "{err}");
    // (The server may or may not have committed when the connection went: the message says so.)
    assert!(
        said(&err).contains("whether this run was kept is unknown")
            && !said(&err).contains("nothing written"),
        "{err}"
    );
    assert_eq!(contents(&s.store), before);
    let runs = runs_since(&s.store, last);
    assert!(
        matches!(statuses(&runs)[..], ["running"] | ["failed"]),
        "{runs:?}"
    );

    // And the next plain run converges to the clean run's store, the cut run `abandoned` (or `failed`), and
    // no run left `running`
    plain_sync(&s.after_cfg, "after the cut");
    assert_eq!(contents(&s.store), after);
    let runs = runs_since(&s.store, last);
    assert!(
        matches!(
            statuses(&runs)[..],
            ["abandoned", "succeeded"] | ["failed", "succeeded"]
        ),
        "{runs:?}"
    );
    assert_eq!(
        s.store
            .count("SELECT COUNT(*) FROM import_runs WHERE status = 'running'"),
        0
    );
}

#[cfg(feature = "failpoints")]
#[test]
fn a_postgresql_connection_cut_after_the_commit_keeps_the_run_and_the_next_run_converges() {
    // Given a PostgreSQL store synced once from a day of 3,000 sessions, whose source then corrects 112 of
    // them, and what a clean sync of the corrected day gives a fresh store
    let day = Day::new();
    let s = PgSynced::new(&day);
    let after = clean_sync(StoreKind::Postgres, &day.after);
    let last = last_run_id(&s.store);

    // When the sync of the correction has committed, and its store connection is then cut (its backend,
    // idle, terminated)
    let (out, cut) = s.cut_at(&s.after_cfg, "after_commit", "idle");
    let err = stderr(&out);
    assert_eq!(cut, 1, "{err}");

    // Then the sync succeeded (its run lock goes with the connection), its row says so, and the store holds
    // all of it
    assert_eq!(out.status.code(), Some(0), "{err}");
    let runs = runs_since(&s.store, last);
    assert_eq!(statuses(&runs), ["succeeded"], "{runs:?}");
    assert_eq!(contents(&s.store), after);

    // And the next plain run finds nothing to write, and the store is the clean run's
    plain_sync(&s.after_cfg, "after the cut");
    assert_eq!(contents(&s.store), after);
    let runs = runs_since(&s.store, last);
    assert_eq!(statuses(&runs), ["succeeded", "succeeded"], "{runs:?}");
    assert_eq!(
        s.store.count(&format!(
            "SELECT sessions_inserted + sessions_updated + sessions_deleted FROM import_runs WHERE id = {}",
            runs[1].id
        )),
        0
    );
}
