//! SIGTERM while a statement is in flight (issue 14): a source query the server is still working on, or a
//! store statement waiting behind a DBA's lock, is cancelled, so that the run stops within 10 s, not when
//! the statement ends; it rolls back, is recorded as `interrupted`, and the process exits 143.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::Connection;

use crate::common::*;

/// A config with one system reading `sql` from `source` (variable ACDSYNC_T_CANCEL) into the store at
/// `url`, with `extra` lines in [wfm].
fn config(dir: &std::path::Path, url: &str, extra: &str, sql: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("q.sql"), sql).unwrap();
    let cfg = dir.join("acdsync.toml");
    std::fs::write(
        &cfg,
        format!(
            "[wfm]\ndatabase_url = \"{url}\"\n{extra}\n{}",
            system_toml(
                "s",
                "Europe/Paris",
                "q.sql",
                "connection_string_env = \"ACDSYNC_T_CANCEL\"\nwindow_parameters = \"literal\""
            )
        ),
    )
    .unwrap();
    cfg
}

/// Starts a sync, sends it SIGTERM `after` its start, and returns its exit code, its stderr and how long it
/// took to end after the signal.
fn sigterm_after(
    cfg: &std::path::Path,
    source: &Source,
    after: Duration,
) -> (Option<i32>, String, Duration) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("acdsync"))
        .env("ACDSYNC_T_CANCEL", &source.connection_string)
        .env_remove("ACDSYNC_DATABASE_URL")
        .env_remove("ACDSYNC_CONFIG")
        .arg("--config")
        .arg(cfg)
        .args(["sync", "--date", "2026-01-15"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let signalled = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let took = signalled.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr, took)
}

/// The generic query, made to keep its server busy for a minute or more before its first row.
fn slow_query(kind: SourceKind) -> String {
    let slow = match kind {
        SourceKind::Postgres => "(SELECT pg_sleep(120) AS z) slow",
        SourceKind::MariaDb => "(SELECT SLEEP(120) AS z) slow",
        // (SQLite has no sleep: a count to ten billion keeps it busy for minutes.)
        SourceKind::Sqlite => {
            "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000000) SELECT COUNT(*) AS z FROM c) slow"
        }
    };
    acdsync::demo::GENERIC_SESSIONS_SQL.replace(
        "FROM acd_agent_states\n",
        &format!("FROM acd_agent_states CROSS JOIN {slow}\n"),
    )
}

fn sigterm_cancels_the_source_query(source_kind: SourceKind, store_kind: StoreKind) {
    // Given a source whose query keeps its server busy for minutes before its first row
    let source = Source::new(source_kind);
    source.set_rows(&[row(
        "1",
        None,
        "2026-01-15 08:00:00",
        Some("2026-01-15 09:00:00"),
    )]);
    let store = TestStore::migrated(store_kind);
    let dir = tempfile::tempdir().unwrap();
    let sql = slow_query(source_kind);
    assert_ne!(sql, acdsync::demo::GENERIC_SESSIONS_SQL);
    let cfg = config(dir.path(), &store.url, "", &sql);

    // When a sync gets SIGTERM 2 s into the query
    let (code, stderr, took) = sigterm_after(&cfg, &source, Duration::from_secs(2));

    // Then the query is cancelled: it exits 143 within 10 s, and its run is recorded as interrupted
    assert_eq!(code, Some(143), "{stderr}");
    assert!(
        took < Duration::from_secs(10),
        "ended {took:?} after SIGTERM\n{stderr}"
    );
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert_eq!(
        store.count("SELECT COUNT(*) FROM import_runs WHERE status = 'interrupted'"),
        1,
        "{stderr}"
    );
    assert_eq!(store.count("SELECT COUNT(*) FROM agent_sessions"), 0);
}

#[test]
fn sigterm_cancels_a_postgresql_source_query_in_flight() {
    sigterm_cancels_the_source_query(SourceKind::Postgres, StoreKind::Postgres);
}

#[test]
fn sigterm_cancels_a_mariadb_source_query_in_flight() {
    sigterm_cancels_the_source_query(SourceKind::MariaDb, StoreKind::Sqlite);
}

#[test]
fn sigterm_cancels_a_sqlite_source_query_in_flight() {
    sigterm_cancels_the_source_query(SourceKind::Sqlite, StoreKind::Sqlite);
}

#[test]
fn sigterm_cancels_a_store_statement_waiting_behind_a_dba_lock() {
    // Given a PostgreSQL store whose agent_sessions a DBA locked (transaction left open), and a lock_timeout
    // of ten minutes
    let store = TestStore::migrated(StoreKind::Postgres);
    let source = Source::new(SourceKind::Sqlite);
    source.set_rows(&[row(
        "1",
        None,
        "2026-01-15 08:00:00",
        Some("2026-01-15 09:00:00"),
    )]);
    let mut dba = diesel::PgConnection::establish(&store.url).unwrap();
    dba.batch_execute("BEGIN; LOCK TABLE agent_sessions")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &store.url,
        "lock_timeout = \"10m\"",
        acdsync::demo::GENERIC_SESSIONS_SQL,
    );

    // When a sync waiting for the lock gets SIGTERM after 3 s
    let (code, stderr, took) = sigterm_after(&cfg, &source, Duration::from_secs(3));

    // Then its statement is cancelled: it exits 143 within 10 s, with the run recorded as interrupted while
    // the DBA still holds the lock
    assert_eq!(code, Some(143), "{stderr}");
    assert!(
        took < Duration::from_secs(10),
        "ended {took:?} after SIGTERM\n{stderr}"
    );
    assert_eq!(
        store.count("SELECT COUNT(*) FROM import_runs WHERE status = 'interrupted'"),
        1,
        "{stderr}"
    );

    // And once the DBA is done, the next sync succeeds
    dba.batch_execute("ROLLBACK").unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin("acdsync"))
        .env("ACDSYNC_T_CANCEL", &source.connection_string)
        .env_remove("ACDSYNC_DATABASE_URL")
        .arg("--config")
        .arg(&cfg)
        .args(["sync", "--date", "2026-01-15"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(store.count("SELECT COUNT(*) FROM agent_sessions"), 1);
}
