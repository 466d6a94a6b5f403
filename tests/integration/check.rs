//! `acdsync check` (issue 14): the WFM database and every source answer, each query returns the columns it
//! must, and nothing is written anywhere.

use crate::common::*;

#[test]
fn check_reports_each_part_and_writes_nothing() {
    // Given a migrated SQLite store and three systems: one that works, one whose ODBC driver does not exist,
    // one whose query returns three columns
    let store = TestStore::migrated(StoreKind::Sqlite);
    let source = Source::new(SourceKind::Sqlite);
    source.set_rows(&[row(
        "1",
        None,
        "1970-01-02 08:00:00",
        Some("1970-01-02 09:00:00"),
    )]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("q.sql"),
        acdsync::demo::GENERIC_SESSIONS_SQL,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("three.sql"),
        "SELECT agent_id, started_at, ended_at FROM acd_agent_states WHERE started_at >= {window_start} AND started_at < {window_end}",
    )
    .unwrap();
    let system = |name: &str, sql: &str, env: &str| {
        let more = format!("connection_string_env = \"{env}\"\nwindow_parameters = \"literal\"");
        system_toml(name, "Europe/Paris", sql, &more)
    };
    let cfg = dir.path().join("acdsync.toml");
    std::fs::write(
        &cfg,
        format!(
            "[wfm]\ndatabase_url = \"{}\"\n\n{}{}{}",
            store.url,
            system("good", "q.sql", "ACDSYNC_T_CHECK_GOOD"),
            system("nodriver", "q.sql", "ACDSYNC_T_CHECK_NONE"),
            system("three", "three.sql", "ACDSYNC_T_CHECK_GOOD")
        ),
    )
    .unwrap();
    let check = |systems: &[&str]| {
        let mut c = assert_cmd::Command::cargo_bin("acdsync").unwrap();
        c.env_remove("ACDSYNC_DATABASE_URL")
            .env("ACDSYNC_T_CHECK_GOOD", &source.connection_string)
            .env(
                "ACDSYNC_T_CHECK_NONE",
                "Driver={No Such Driver};Pwd=Check-S3cret",
            )
            .arg("--config")
            .arg(&cfg)
            .arg("check");
        for s in systems {
            c.args(["--system", s]);
        }
        c.assert()
    };

    // When everything is checked
    let out = check(&[]).code(69);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let all = format!(
        "{stdout}{}",
        String::from_utf8_lossy(&out.get_output().stderr)
    );

    // Then each part has its line: the store and the good system answer (its row of 1970-01-02 read as a
    // sync reads it), the missing driver and the three columns fail, naming why; no password shows
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(
        lines[0].starts_with("ok      WFM database") && lines[0].contains("schema up to date"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("ok      system \"good\"") && lines[1].contains("1 row(s) 1970-01-02"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("FAILED  system \"nodriver\"") && lines[2].contains("cannot connect"),
        "{stdout}"
    );
    assert!(
        lines[3].starts_with("FAILED  system \"three\"")
            && lines[3].contains("returns 3 column(s)"),
        "{stdout}"
    );
    assert!(!all.contains("Check-S3cret"), "{all}");

    // And one system checked alone answers: exit 0
    check(&["good"]).success();

    // And nothing was written: no system registered, no run recorded
    assert_eq!(store.count("SELECT COUNT(*) FROM external_systems"), 0);
    assert_eq!(store.count("SELECT COUNT(*) FROM import_runs"), 0);
}
