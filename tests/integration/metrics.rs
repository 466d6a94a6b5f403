//! Metrics for batch jobs (issue 14): after a sync, `[metrics] textfile` holds each system's last success
//! time, last run duration, status and rows by outcome in the Prometheus text format, written whole.

use crate::common::*;

#[test]
fn a_sync_writes_each_systems_metrics_to_the_textfile() {
    // Given a config with a metrics file, a system whose source works and one whose driver is missing
    let store = TestStore::migrated(StoreKind::Sqlite);
    let source = Source::new(SourceKind::Sqlite);
    source.set_rows(&[
        row(
            "1",
            None,
            "2026-01-15 08:00:00",
            Some("2026-01-15 09:00:00"),
        ),
        row("2", Some("BREAK"), "2026-01-15 08:30:00", None),
    ]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("q.sql"),
        acdsync::demo::GENERIC_SESSIONS_SQL,
    )
    .unwrap();
    let system = |name: &str, env: &str| {
        let more = format!("connection_string_env = \"{env}\"\nwindow_parameters = \"literal\"");
        system_toml(name, "Europe/Paris", "q.sql", &more)
    };
    let cfg = dir.path().join("acdsync.toml");
    std::fs::write(
        &cfg,
        format!(
            "[wfm]\ndatabase_url = \"{}\"\n[metrics]\ntextfile = \"acdsync.prom\"\n\n{}{}",
            store.url,
            system("paris \\\"main\\\"", "ACDSYNC_T_MET_OK"),
            system("lyon", "ACDSYNC_T_MET_NONE")
        ),
    )
    .unwrap();

    // When a sync runs (one system fails)
    assert_cmd::Command::cargo_bin("acdsync")
        .unwrap()
        .env_remove("ACDSYNC_DATABASE_URL")
        .env("ACDSYNC_T_MET_OK", &source.connection_string)
        .env("ACDSYNC_T_MET_NONE", "Driver={No Such Driver}")
        .arg("--config")
        .arg(&cfg)
        .args(["sync", "--date", "2026-01-15"])
        .assert()
        .code(69);

    // Then the file holds both systems' metrics, the label escaped, and no temporary file is left
    let text = std::fs::read_to_string(dir.path().join("acdsync.prom")).unwrap();
    for line in [
        "# TYPE acdsync_last_success_timestamp_seconds gauge",
        "acdsync_last_run_status{system=\"paris \\\"main\\\"\",status=\"succeeded\"} 1",
        "acdsync_last_run_status{system=\"lyon\",status=\"failed\"} 1",
        "acdsync_last_run_rows{system=\"paris \\\"main\\\"\",outcome=\"inserted\"} 2",
        "acdsync_last_run_rows{system=\"paris \\\"main\\\"\",outcome=\"read\"} 2",
        "acdsync_last_run_rows{system=\"lyon\",outcome=\"read\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
    let success: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("acdsync_last_success_timestamp_seconds{"))
        .collect();
    assert_eq!(
        success.len(),
        1,
        "only the system that succeeded has one\n{text}"
    );
    let at: f64 = success[0].rsplit(' ').next().unwrap().parse().unwrap();
    let now = chrono::Utc::now().timestamp() as f64;
    assert!((now - at).abs() < 120.0, "{at} is not now");
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .count();
    assert_eq!(leftovers, 0);
}
