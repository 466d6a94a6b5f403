//! Bounded waits (issue 14): a DBA's lock on agent_sessions, or another program writing the SQLite file,
//! makes a sync fail after [wfm] lock_timeout with exit 75 and a message naming what it waited for (and, on
//! PostgreSQL, a failed run row saying so), instead of waiting for ever; `sync --wait-lock` waits for another
//! run's lock instead of exiting 75 at once; a server that cannot be reached is tried again, with backoff.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use acdsync::store::{Create, Store};
use diesel::connection::SimpleConnection;
use diesel::Connection;

use crate::common::*;

/// A config with one system reading a SQLite source through its ODBC driver (variable ACDSYNC_T_WAIT), into
/// the store at `url`, with `extra` lines in [wfm].
fn config(dir: &std::path::Path, url: &str, extra: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("q.sql"), acdsync::demo::GENERIC_SESSIONS_SQL).unwrap();
    let cfg = dir.join("acdsync.toml");
    std::fs::write(
        &cfg,
        format!(
            "[wfm]\ndatabase_url = \"{url}\"\n{extra}\n{}",
            system_toml(
                "s",
                "Europe/Paris",
                "q.sql",
                "connection_string_env = \"ACDSYNC_T_WAIT\"\nwindow_parameters = \"literal\""
            )
        ),
    )
    .unwrap();
    cfg
}

fn sync(cfg: &std::path::Path, source: &Source, extra: &[&str]) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("acdsync"));
    c.env("ACDSYNC_T_WAIT", &source.connection_string)
        .env_remove("ACDSYNC_DATABASE_URL")
        .env_remove("ACDSYNC_CONFIG")
        .arg("--config")
        .arg(cfg)
        .args(["sync", "--date", "2026-01-15"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn day_of_sessions() -> Source {
    let source = Source::new(SourceKind::Sqlite);
    source.set_rows(&[row(
        "1",
        None,
        "2026-01-15 08:00:00",
        Some("2026-01-15 09:00:00"),
    )]);
    source
}

#[test]
fn a_dba_lock_on_agent_sessions_ends_the_run_after_lock_timeout() {
    // Given a PostgreSQL store whose agent_sessions a DBA locked (LOCK TABLE, transaction left open)
    let store = TestStore::migrated(StoreKind::Postgres);
    let source = day_of_sessions();
    let mut dba = diesel::PgConnection::establish(&store.url).unwrap();
    dba.batch_execute("BEGIN; LOCK TABLE agent_sessions")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &store.url, "lock_timeout = \"2s\"");

    // When a sync runs
    let started = Instant::now();
    let out = sync(&cfg, &source, &[]).output().unwrap();
    let took = started.elapsed();

    // Then it gives up after the lock timeout with exit 75, naming what it waited for, and its run row says so
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(
        stderr.contains("waited [wfm] lock_timeout (2s) for a lock on the WFM database"),
        "{stderr}"
    );
    dba.batch_execute("ROLLBACK").unwrap();
    assert_eq!(
        store.count("SELECT COUNT(*) FROM import_runs WHERE status = 'failed' AND error LIKE '%lock_timeout (2s)%'"),
        1
    );

    // And once the DBA is done, the next sync succeeds
    let next = sync(&cfg, &source, &[]).output().unwrap();
    assert_eq!(
        next.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    assert_eq!(store.count("SELECT COUNT(*) FROM agent_sessions"), 1);
}

#[test]
fn another_writer_of_the_sqlite_file_ends_the_run_after_lock_timeout() {
    // Given an SQLite store another program holds a write transaction on
    let store = TestStore::migrated(StoreKind::Sqlite);
    let source = day_of_sessions();
    let path = store.url.strip_prefix("sqlite://").unwrap().to_owned();
    let mut other = diesel::SqliteConnection::establish(&path).unwrap();
    other.batch_execute("BEGIN IMMEDIATE").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &store.url, "lock_timeout = \"1s\"");

    // When a sync runs, Then it gives up after about a second with exit 75 and says why
    let started = Instant::now();
    let out = sync(&cfg, &source, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        stderr.contains("waited [wfm] lock_timeout (1s)"),
        "{stderr}"
    );
    other.batch_execute("ROLLBACK").unwrap();
}

#[test]
fn wait_lock_waits_for_the_other_run_then_syncs() {
    // Given another run holding the run lock of an SQLite store
    let store = TestStore::migrated(StoreKind::Sqlite);
    let source = day_of_sessions();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &store.url, "");
    let mut holder = Store::open(&store.database_url(), Create::Never).unwrap();
    holder.lock(false).unwrap();

    // When a sync waits for it up to 1 s, Then it exits 75 after that second, having written nothing
    let started = Instant::now();
    let out = sync(&cfg, &source, &["--wait-lock", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75));
    assert!(started.elapsed() >= Duration::from_secs(1));

    // When a sync waits up to 20 s and the other run ends after one second, Then it syncs
    let child = sync(&cfg, &source, &["--wait-lock", "20s"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    holder.unlock();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("waiting for it"), "{stderr}");
    assert_eq!(store.count("SELECT COUNT(*) FROM agent_sessions"), 1);
}

#[test]
fn connecting_is_tried_again_when_the_server_cannot_be_reached_and_not_otherwise() {
    // Given a source whose server refuses connections (nothing listens on port 1), one whose driver does not
    // exist, and a WFM database on a port where nothing listens either
    let store = TestStore::migrated(StoreKind::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("q.sql"),
        acdsync::demo::GENERIC_SESSIONS_SQL,
    )
    .unwrap();
    let cfg = dir.path().join("acdsync.toml");
    let system = |name: &str, env: &str| {
        let more = format!(
            "connection_string_env = \"{env}\"\nconnect_retries = 3\nconnect_retry_delay = \"100ms\""
        );
        system_toml(name, "UTC", "q.sql", &more)
    };
    std::fs::write(
        &cfg,
        format!(
            "[wfm]\ndatabase_url = \"{}\"\n{}{}",
            store.url,
            system("down", "ACDSYNC_T_DOWN"),
            system("nodriver", "ACDSYNC_T_NODRIVER")
        ),
    )
    .unwrap();
    let run = |extra_env: &[(&str, &str)], args: &[&str]| {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("acdsync"));
        c.env_remove("ACDSYNC_DATABASE_URL")
            .env(
                "ACDSYNC_T_DOWN",
                "Driver={PostgreSQL Unicode};Server=127.0.0.1;Port=1;Database=x;Uid=x;",
            )
            .env("ACDSYNC_T_NODRIVER", "Driver={No Such Driver}")
            .arg("--config")
            .arg(&cfg)
            .args(args);
        for (k, v) in extra_env {
            c.env(k, v);
        }
        c.output().unwrap()
    };

    // When both systems sync
    let out = run(&[], &["sync", "--date", "2026-01-15"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();

    // Then the refused source is tried 3 times (2 retries logged), the missing driver once, and each fails
    // its own system (exit 69)
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    let retries = |server: &str| {
        stderr
            .lines()
            .filter(|l| l.contains("could not connect; trying again") && l.contains(server))
            .count()
    };
    assert_eq!(retries("the source of system \\\"down\\\""), 2, "{stderr}");
    assert_eq!(retries("nodriver"), 0, "{stderr}");
    assert_eq!(
        store.count("SELECT COUNT(*) FROM import_runs WHERE status = 'failed'"),
        2
    );

    // And a WFM database nobody answers for is tried 3 times too (the default), then exit 69
    let out = run(
        &[(
            "ACDSYNC_DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/nowhere",
        )],
        &["sync", "--date", "2026-01-15"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    let store_retries = stderr
        .lines()
        .filter(|l| l.contains("could not connect; trying again") && l.contains("WFM database"))
        .count();
    assert_eq!(store_retries, 2, "{stderr}");
}
