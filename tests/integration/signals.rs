//! An unattended job and its signals (issue 14): SIGTERM at any moment of a sync stops it at a safe point,
//! rolls back, records the run as `interrupted`, releases the run lock before the process exits and exits
//! 143 within 10 s; the next sync, started at once, succeeds and leaves the store a clean run leaves. And a
//! sync whose source fails early exits with its documented code, never by a signal (the store's reader thread
//! is joined before the process exits).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::on_both_stores;

/// A config reading `acd_agent_states` of a PostgreSQL source through psqlODBC, its connection string in
/// the variable ACDSYNC_T_SIG, into the store at `url`.
fn config(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("q.sql"), acdsync::demo::GENERIC_SESSIONS_SQL).unwrap();
    let cfg = dir.join("acdsync.toml");
    std::fs::write(
        &cfg,
        format!(
            "[wfm]\ndatabase_url = \"{url}\"\n\n{}",
            system_toml(
                "pg",
                "Europe/Paris",
                "q.sql",
                "connection_string_env = \"ACDSYNC_T_SIG\""
            )
        ),
    )
    .unwrap();
    cfg
}

/// Waits until process `pid` catches SIGTERM (`SigCgt` in /proc/PID/status).
fn handlers_installed(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .unwrap_or(0);
        if caught & (1 << (libc::SIGTERM - 1)) != 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("process {pid} did not install its SIGTERM handler within 10 s");
}

fn sync_command(cfg: &std::path::Path, connection: &str) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("acdsync"));
    c.env("ACDSYNC_T_SIG", connection)
        .env_remove("ACDSYNC_DATABASE_URL")
        .env_remove("ACDSYNC_CONFIG")
        .arg("--config")
        .arg(cfg)
        .args(["sync", "--date", "2026-01-15"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// 40,000 sessions of a day in a PostgreSQL source, a store (migrated, config in the folder returned) that
/// synced them once, and how long that clean run took.
fn synced_once(kind: StoreKind) -> (Source, TestStore, tempfile::TempDir, Duration) {
    let source = Source::new(SourceKind::Postgres);
    source.execute(
        "INSERT INTO acd_agent_states (agent_id, activity_code, started_at, ended_at) \
         SELECT 'A' || (i % 2000), CASE WHEN i % 3 = 0 THEN 'BREAK' END, \
                TIMESTAMP '2026-01-15 06:00:00' + (i / 2000) * interval '40 seconds', \
                TIMESTAMP '2026-01-15 06:00:00' + (i / 2000 + 1) * interval '40 seconds' \
         FROM generate_series(0, 39999) i",
    );
    let store = TestStore::migrated(kind);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &store.url);
    let started = Instant::now();
    let clean = sync_command(&cfg, &source.connection_string)
        .output()
        .unwrap();
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let takes = started.elapsed();
    assert_eq!(store.count("SELECT COUNT(*) FROM agent_sessions"), 40_000);
    (source, store, dir, takes)
}

on_both_stores!(sigterm_at_any_moment_stops_a_sync_cleanly, |kind| {
    // Given 40,000 sessions of a day in a PostgreSQL source, and a store that synced them once (the clean run)
    let (source, store, dir, takes) = synced_once(kind);
    let cfg = dir.path().join("acdsync.toml");
    let want = store.view();
    assert_eq!(want.len(), 40_000);

    let cases: u64 = std::env::var("ACDSYNC_SIGTERM_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut rng = Lcg(7 + kind as u64);
    let mut interrupted = 0;
    for case in 0..cases {
        // When the store is emptied and a sync gets SIGTERM at a random moment of its run
        store.execute("DELETE FROM agent_sessions").unwrap();
        let runs_before = store.count("SELECT COUNT(*) FROM import_runs");
        let mut child = sync_command(&cfg, &source.connection_string)
            .spawn()
            .unwrap();
        // (From the moment the process has installed its handlers: before that, as for any program, the
        // signal's default action ends it.)
        handlers_installed(child.id());
        let at = Duration::from_millis(rng.below(takes.as_millis() as u64 + 1));
        std::thread::sleep(at);
        let signalled = Instant::now();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        let stopped_in = signalled.elapsed();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        let what = format!(
            "case {case}, SIGTERM {at:?} into a run of about {takes:?}: {status:?}\n{stderr}"
        );

        // Then it exits 143 (interrupted: nothing kept, the run recorded so) or 0 (it had finished), within 10 s
        assert!(stopped_in < Duration::from_secs(10), "{what}");
        let last = |status: &str| {
            store.count(&format!(
                "SELECT COUNT(*) FROM import_runs WHERE status = '{status}' AND id = (SELECT MAX(id) FROM import_runs)"
            ))
        };
        match status.code() {
            // (Signalled before its run started, the system is not synced and has no run row.)
            Some(143) if store.count("SELECT COUNT(*) FROM import_runs") == runs_before => {
                assert!(
                    stderr.contains("not synced: interrupted by SIGTERM"),
                    "{what}"
                );
                assert_eq!(
                    store.count("SELECT COUNT(*) FROM agent_sessions"),
                    0,
                    "{what}"
                );
            }
            Some(143) => {
                interrupted += 1;
                assert_eq!(last("interrupted"), 1, "{what}");
                assert!(stderr.contains("interrupted by SIGTERM"), "{what}");
                assert_eq!(
                    store.count("SELECT COUNT(*) FROM agent_sessions"),
                    0,
                    "{what}"
                );
            }
            Some(0) => assert_eq!(last("succeeded"), 1, "{what}"),
            other => panic!("exit {other:?}: {what}"),
        }
        assert_eq!(
            store.count("SELECT COUNT(*) FROM import_runs WHERE status = 'running'"),
            0
        );

        // And a sync started at once finds the lock free and leaves the store the clean run left
        let next = sync_command(&cfg, &source.connection_string)
            .output()
            .unwrap();
        assert_eq!(
            next.status.code(),
            Some(0),
            "{what}\nnext: {}",
            String::from_utf8_lossy(&next.stderr)
        );
        assert_eq!(store.view(), want, "{what}");
    }
    assert!(
        interrupted > 0,
        "no SIGTERM landed inside a run in {cases} cases"
    );
});

on_both_stores!(
    sigkill_at_any_moment_leaves_a_store_the_next_run_makes_clean,
    |kind| {
        // Given 40,000 sessions of a day in a PostgreSQL source, and a store that synced them once (the clean run)
        let (source, store, dir, takes) = synced_once(kind);
        let cfg = dir.path().join("acdsync.toml");
        let want = store.view();
        let cases: u64 = std::env::var("ACDSYNC_SIGKILL_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50);
        let mut rng = Lcg(11 + kind as u64);
        let mut killed_inside = 0;
        for case in 0..cases {
            // When the store is emptied (or a tenth of its sessions changed in the source) and a sync is killed
            // (SIGKILL: no handler, no rollback by acdsync) at a random moment of its run
            let change = case % 2 == 1;
            if change {
                source.execute("UPDATE acd_agent_states SET ended_at = ended_at + interval '1 second' WHERE length(agent_id) % 10 = 3");
            } else {
                store.execute("DELETE FROM agent_sessions").unwrap();
            }
            let mut child = sync_command(&cfg, &source.connection_string)
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(
                rng.below(takes.as_millis() as u64 + 1),
            ));
            if child.try_wait().unwrap().is_none() {
                killed_inside += 1;
            }
            let _ = child.kill();
            let _ = child.wait();

            // Then the next sync succeeds (the killed run, if it was under way, marked abandoned; PostgreSQL frees
            // a killed session's lock once it notices, so it waits for the lock a little), and the store is the
            // one a clean run makes of the source
            let next = sync_command(&cfg, &source.connection_string)
                .args(["--wait-lock", "10s"])
                .output()
                .unwrap();
            let what = format!("case {case}: {}", String::from_utf8_lossy(&next.stderr));
            assert_eq!(next.status.code(), Some(0), "{what}");
            assert_eq!(
                store.count("SELECT COUNT(*) FROM import_runs WHERE status = 'running'"),
                0,
                "{what}"
            );
            if change {
                source.execute("UPDATE acd_agent_states SET ended_at = ended_at - interval '1 second' WHERE length(agent_id) % 10 = 3");
                let back = sync_command(&cfg, &source.connection_string)
                    .output()
                    .unwrap();
                assert_eq!(back.status.code(), Some(0), "{what}");
            }
            assert_eq!(store.view(), want, "{what}");
        }
        assert!(
            killed_inside > cases / 4,
            "only {killed_inside} of {cases} kills landed inside a run"
        );
    }
);

#[test]
fn a_sync_whose_source_fails_early_exits_with_its_code_never_a_signal() {
    // Given a PostgreSQL store, a source whose ODBC driver does not exist, and a source whose query fails at
    // its first fetch (a division by zero in each row: the store's reader thread is connecting by then)
    let store = TestStore::migrated(StoreKind::Postgres);
    let source = Source::new(SourceKind::Postgres);
    source.execute("INSERT INTO acd_agent_states VALUES ('a', NULL, '2026-01-15 08:00:00', NULL)");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &store.url);
    let failing = dir.path().join("fails.toml");
    std::fs::write(dir.path().join("fails.sql"), "SELECT agent_id, activity_code, started_at, \
         CASE WHEN 1 / (length(agent_id) - length(agent_id)) = 0 THEN ended_at END \
         FROM acd_agent_states WHERE started_at >= {lookback_start} AND started_at < {window_end} \
         AND (started_at >= {window_start} OR ended_at IS NULL OR ended_at >= {window_start}) ORDER BY started_at").unwrap();
    std::fs::write(
        &failing,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("q.sql", "fails.sql"),
    )
    .unwrap();

    // When 100 syncs fail, half of each kind, Then each exits with its documented code (69: the source
    // cannot be reached; 1: the sync failed), none by a signal, and each failure is recorded
    for i in 0..100 {
        let (config, connection, code) = match i % 2 {
            0 => (
                &cfg,
                "Driver={No Such Driver};Server=127.0.0.1".to_owned(),
                69,
            ),
            _ => (&failing, source.connection_string.clone(), 1),
        };
        let out = sync_command(config, &connection).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(code),
            "run {i}: {:?} {stderr}",
            out.status
        );
    }
    assert_eq!(
        store.count("SELECT COUNT(*) FROM import_runs WHERE status = 'failed'"),
        100
    );
}
