//! Storage faults say what happened (issue 14): a full disk under an SQLite store is reported as a full disk
//! (not as the failed rollback that follows it), leaves the file intact, and the next run converges; an
//! SQLite source named by a path that does not exist is refused instead of being created empty.

use std::process::Command;

use crate::common::*;

fn config(dir: &std::path::Path, url: &str, connection: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("q.sql"), acdsync::demo::GENERIC_SESSIONS_SQL).unwrap();
    let cfg = dir.join("acdsync.toml");
    std::fs::write(
        &cfg,
        format!(
            "[wfm]\ndatabase_url = \"{url}\"\n{}",
            system_toml(
                "s",
                "UTC",
                "q.sql",
                &format!("connection_string = \"{connection}\"\nwindow_parameters = \"literal\"")
            )
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn a_full_disk_under_the_sqlite_store_is_reported_as_such_and_the_next_run_converges() {
    // Given 3,000 sessions in an SQLite source and an empty SQLite store
    let source = Source::new(SourceKind::Sqlite);
    source.execute(
        "INSERT INTO acd_agent_states \
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2999) \
         SELECT 'A' || (i % 100), NULL, datetime('2026-01-15 06:00:00', '+' || (i / 100 * 10) || ' minutes'), \
                datetime('2026-01-15 06:00:00', '+' || (i / 100 * 10 + 10) || ' minutes') FROM n",
    );
    assert_eq!(source.rows(), 3000);
    let store = TestStore::migrated(StoreKind::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &store.url, &source.connection_string);
    let bin = assert_cmd::cargo::cargo_bin("acdsync");
    let mut full_disks = 0;
    for when in [1, 2, 4, 8, 16, 64] {
        // When the disk is full from the store's `when`-th write on (strace makes pwrite64 fail with ENOSPC)
        let out = Command::new("strace")
            .args(["-f", "-o", "/dev/null", "-e", "trace=pwrite64", "-e"])
            .arg(format!("inject=pwrite64:error=ENOSPC:when={when}+"))
            .arg("--")
            .arg(&bin)
            .arg("--config")
            .arg(&cfg)
            .args(["sync", "--date", "2026-01-15"])
            .env_remove("ACDSYNC_DATABASE_URL")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();

        // Then a failed run says the disk is full, never that a rollback failed
        if !out.status.success() {
            full_disks += 1;
            assert!(
                stderr.contains("database or disk is full") || stderr.contains("disk I/O error"),
                "when={when}: {stderr}"
            );
            assert!(!stderr.contains("cannot rollback"), "when={when}: {stderr}");
        }
        // And the file is intact, and a run with room converges to all 3,000 sessions
        assert_eq!(
            store.count("SELECT COUNT(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'"),
            1
        );
        let next = Command::new(&bin)
            .arg("--config")
            .arg(&cfg)
            .args(["sync", "--date", "2026-01-15"])
            .env_remove("ACDSYNC_DATABASE_URL")
            .output()
            .unwrap();
        assert!(
            next.status.success(),
            "when={when}: {}",
            String::from_utf8_lossy(&next.stderr)
        );
        assert_eq!(
            store.count("SELECT COUNT(*) FROM agent_sessions"),
            3000,
            "when={when}: {}",
            String::from_utf8_lossy(&next.stdout)
        );
        store.execute("DELETE FROM agent_sessions").unwrap();
    }
    assert!(full_disks > 0, "no injected fault made a run fail");
}

#[test]
fn an_sqlite_source_file_that_does_not_exist_is_refused_not_created() {
    // Given a config whose SQLite source names a file that does not exist (a relative path, from another
    // working directory)
    let store = TestStore::migrated(StoreKind::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &store.url,
        "Driver=SQLite3;Database=acd-typo.db;StepAPI=1",
    );

    // When a sync runs, Then it is refused as a configuration error naming the full path, and no file appears
    let out = assert_cmd::Command::cargo_bin("acdsync")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("ACDSYNC_DATABASE_URL")
        .arg("--config")
        .arg(&cfg)
        .args(["sync", "--date", "2026-01-15"])
        .assert()
        .code(78);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let full = dir.path().join("acd-typo.db");
    assert!(
        stderr.contains("does not exist") && stderr.contains(&full.display().to_string()),
        "{stderr}"
    );
    assert!(!full.exists(), "the driver created an empty file");
}

/// An SQLite store, its source and its config, in folders of mode `folders` and files of mode `files`
/// (root's), and the store's path; its -wal and -shm files removed.
struct RootsStore {
    _source: Source,
    _store: TestStore,
    _dir: tempfile::TempDir,
    cfg: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl RootsStore {
    fn new(folders: u32, files: u32) -> RootsStore {
        let source = Source::new(SourceKind::Sqlite);
        source.set_rows(&[row(
            "1",
            None,
            "2026-01-15 08:00:00",
            Some("2026-01-15 09:00:00"),
        )]);
        let store = TestStore::migrated(StoreKind::Sqlite);
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &store.url, &source.connection_string);
        let path = std::path::PathBuf::from(store.url.strip_prefix("sqlite://").unwrap());
        for p in [
            dir.path(),
            path.parent().unwrap(),
            source.path().parent().unwrap(),
        ] {
            set_mode(p, folders);
        }
        for p in [
            cfg.clone(),
            dir.path().join("q.sql"),
            path.clone(),
            source.path(),
        ] {
            set_mode(&p, files);
        }
        let _ = std::fs::remove_file(format!("{}-wal", path.display()));
        let _ = std::fs::remove_file(format!("{}-shm", path.display()));
        RootsStore {
            _source: source,
            _store: store,
            _dir: dir,
            cfg,
            path,
        }
    }

    /// A sync by the user nobody: its exit code and standard error.
    fn sync_as_nobody(&self) -> (Option<i32>, String) {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(assert_cmd::cargo::cargo_bin("acdsync"))
            .arg("--config")
            .arg(&self.cfg)
            .args(["sync", "--date", "2026-01-15"])
            .env_remove("ACDSYNC_DATABASE_URL")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn set_mode(p: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
}

#[test]
fn a_store_this_user_may_not_write_is_said_so() {
    // Given an SQLite store (and its folder) that belong to root, and a user who may only read them
    let site = RootsStore::new(0o755, 0o644);

    // When that user (nobody) syncs
    let (code, stderr) = site.sync_as_nobody();

    // Then the failure says that the file or its folder is not writable by this user, as a configuration
    // error, not "readonly database" alone
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("not writable by this process (uid 65534)") && stderr.contains("FILE-wal"),
        "{stderr}"
    );
}

#[test]
fn a_run_lock_file_this_user_may_not_open_is_said_so() {
    // Given an SQLite store its user may write, beside a run lock file root left (mode 0600)
    let site = RootsStore::new(0o777, 0o666);
    let lock = std::path::PathBuf::from(format!("{}.lock", site.path.display()));
    std::fs::write(&lock, "").unwrap();
    set_mode(&lock, 0o600);

    // When that user (nobody) syncs
    let (code, stderr) = site.sync_as_nobody();

    // Then it is a configuration error (exit 78) naming the lock file and what to do
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot open the run lock file {}", lock.display()))
            && stderr.contains("fix its owner or mode"),
        "{stderr}"
    );
}
