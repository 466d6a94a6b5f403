//! The `acdsync` binary as an operator runs it: exit codes, messages, and no password in any output.

use std::path::Path;

use acdsync::store::{Create, Store};
use assert_cmd::Command;

use crate::common::*;

fn acdsync() -> Command {
    let mut c = Command::cargo_bin("acdsync").unwrap();
    c.env_remove("ACDSYNC_DATABASE_URL")
        .env_remove("ACDSYNC_CONFIG")
        .env("RUST_LOG", "info");
    c
}

/// `acdsync --config CFG sync --date 2026-01-15`, with the config's connection variable set to NOWHERE.
fn sync_day(cfg: &Path, connection_env: &str) -> assert_cmd::assert::Assert {
    acdsync()
        .env(connection_env, NOWHERE)
        .arg("--config")
        .arg(cfg)
        .args(["sync", "--date", "2026-01-15"])
        .assert()
}

/// A connection string for tests that fail before reaching the source.
const NOWHERE: &str = "Driver=SQLite3;Database=/nonexistent/acd.db";

fn write_config(dir: &Path, database_url: &str, connection_string_env: &str) -> std::path::PathBuf {
    let sql = dir.join("q.sql");
    std::fs::write(&sql, acdsync::demo::GENERIC_SESSIONS_SQL).unwrap();
    let cfg = dir.join("acdsync.toml");
    std::fs::write(
        &cfg,
        format!(
            "[wfm]\ndatabase_url = \"{database_url}\"\n\n[[system]]\nname = \"paris\"\ntime_zone = \"Europe/Paris\"\nsql_file = \"q.sql\"\nconnection_string_env = \"{connection_string_env}\"\nwindow_parameters = \"literal\"\n"
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn the_demo_runs_end_to_end_and_a_second_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let out = acdsync()
        .args(["demo", "--dir"])
        .arg(&demo)
        .args(["--date", "2026-03-29"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("new agent IDs (50)"), "{stdout}");
    assert!(stdout.contains("rejected        3"), "{stdout}");
    assert!(
        stdout.contains("new activity codes (6), on Present until mapped"),
        "{stdout}"
    );

    // The config it wrote drives `sync` directly: the same day again is unchanged.
    let again = acdsync()
        .arg("--config")
        .arg(demo.join("acdsync.toml"))
        .args(["sync", "--date", "2026-03-29"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&again.get_output().stdout).into_owned();
    assert!(
        stdout.contains("inserted        0   updated        0   deleted        0"),
        "{stdout}"
    );
}

#[test]
fn sync_refuses_a_missing_sqlite_file_instead_of_creating_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.db");
    let cfg = write_config(
        dir.path(),
        &format!("sqlite://{}", missing.display()),
        "ACDSYNC_T_CS_MISSING",
    );
    let out = sync_day(&cfg, "ACDSYNC_T_CS_MISSING").code(78);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("typo.db does not exist; run `acdsync migrate`"),
        "{stderr}"
    );
    assert!(!missing.exists());
}

#[test]
fn sync_refuses_a_schema_that_is_behind() {
    let db = PgDatabase::new("acdsync_behind");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url(), "ACDSYNC_T_CS_BEHIND");
    let out = sync_day(&cfg, "ACDSYNC_T_CS_BEHIND").code(3);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("schema is behind") && stderr.contains("acdsync migrate"),
        "{stderr}"
    );

    // migrate fixes it, and is safe to run again
    let shipped = std::fs::read_dir("migrations/postgres").unwrap().count();
    for expected in [format!("applied {shipped} migration"), "up to date".into()] {
        acdsync()
            .arg("--config")
            .arg(&cfg)
            .arg("migrate")
            .assert()
            .success()
            .stdout(predicates::str::contains(expected));
    }
}

#[test]
fn a_second_run_while_one_holds_the_lock_exits_75_and_does_nothing() {
    let store = TestStore::new(StoreKind::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &store.url, "ACDSYNC_T_CS_LOCK");
    let mut holder = Store::open(&store.database_url(), Create::Never).unwrap();
    holder.lock(false).unwrap();

    let out = sync_day(&cfg, "ACDSYNC_T_CS_LOCK").code(75);
    assert!(String::from_utf8_lossy(&out.get_output().stderr)
        .contains("another acdsync run is in progress"));
    assert_eq!(store.count("SELECT COUNT(*) FROM import_runs"), 0);
}

#[test]
fn postgres_lock_keeps_a_second_run_out() {
    let store = TestStore::new(StoreKind::Postgres);
    let mut first = Store::open(&store.database_url(), Create::Never).unwrap();
    first.lock(false).unwrap();
    let mut second = Store::open(&store.database_url(), Create::Never).unwrap();
    let err = second.lock(false).unwrap_err();
    assert_eq!(acdsync::error::exit_code(&err), 75);
    // When the first process goes, its lock goes with it (the server frees it as the backend exits).
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while second.lock(false).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock was not freed when its holder disconnected"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn an_unreachable_source_exits_69_and_no_password_is_printed_or_stored() {
    let store = TestStore::new(StoreKind::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    // The server echoes the user name ("role ... does not exist"): the same canary as user and password
    // shows that the password is removed wherever a driver's message carries it.
    let canary = "Canary-S3cret-pw";
    let cs = format!(
        "Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port=5432;Database=postgres;Uid={canary};PWD={canary};"
    );
    let cfg = write_config(dir.path(), &store.url, "ACDSYNC_T_CS_CANARY");
    let out = acdsync()
        .env("ACDSYNC_T_CS_CANARY", &cs)
        .arg("--config")
        .arg(&cfg)
        .args(["--log-format", "json", "sync", "--date", "2026-01-15"])
        .assert()
        .code(69);
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.get_output().stdout),
        String::from_utf8_lossy(&out.get_output().stderr)
    );
    assert!(
        output.contains("cannot connect to its ODBC source")
            && output.contains(r#"role \"***\" does not exist"#),
        "{output}"
    );
    assert!(!output.contains(canary), "the password leaked: {output}");
    assert_eq!(
        store.count(r#"SELECT COUNT(*) FROM import_runs WHERE status = 'failed' AND error LIKE '%role "***" does not exist%'"#),
        1
    );
    assert_eq!(
        store.count(&format!(
            "SELECT COUNT(*) FROM import_runs WHERE error LIKE '%{canary}%'"
        )),
        0
    );
}

/// `acdsync migrate --database-url URL` for a URL it cannot connect with: exit code 69, and its stderr.
fn migrate_cannot_connect(url: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = acdsync()
        .arg("--config")
        .arg(dir.path().join("none.toml"))
        .args(["migrate", "--database-url", url])
        .assert()
        .code(69);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("cannot connect to the WFM database"),
        "{stderr}"
    );
    stderr
}

#[test]
fn a_password_in_the_url_query_is_not_printed() {
    let stderr = migrate_cannot_connect(
        "postgres://postgres@127.0.0.1:5432/no_such_db_acdsync?password=Canary-Query-pw",
    );
    assert!(stderr.contains("no_such_db_acdsync"), "{stderr}");
    assert!(
        !stderr.contains("Canary-Query"),
        "the password leaked: {stderr}"
    );
}

#[test]
fn a_bad_wfm_url_password_is_not_printed() {
    // libpq quotes a malformed percent-encoded token in its error.
    let stderr = migrate_cannot_connect("postgres://postgres:s3cr%ZZet@127.0.0.1:5432/postgres");
    assert!(!stderr.contains("s3cr"), "the password leaked: {stderr}");
}

#[test]
fn a_config_error_names_the_file_and_setting_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("acdsync.toml");
    std::fs::write(&cfg, "[wfm]\ndatabase_url = \"sqlite://x.db\"\n[[system]]\nname = \"lyon\"\ntime_zone = \"Europe/Lyon\"\nsql_file = \"q.sql\"\nconnection_string = \"x\"\n").unwrap();
    let out = acdsync()
        .arg("--config")
        .arg(&cfg)
        .arg("sync")
        .assert()
        .code(78);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("acdsync.toml")
            && stderr.contains("system \"lyon\": time_zone \"Europe/Lyon\""),
        "{stderr}"
    );
}

#[test]
fn one_system_without_its_secret_does_not_stop_the_others() {
    // Given two systems, the second one's connection variable unset
    let store = TestStore::new(StoreKind::Sqlite);
    let source = Source::new(SourceKind::Sqlite);
    source.set_rows(&[row(
        "1001",
        None,
        "2026-01-15 08:00:00",
        Some("2026-01-15 12:00:00"),
    )]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("q.sql"),
        acdsync::demo::GENERIC_SESSIONS_SQL,
    )
    .unwrap();
    let cfg = dir.path().join("acdsync.toml");
    let system = |name: &str, var: &str| {
        let more = format!("connection_string_env = \"{var}\"\nwindow_parameters = \"literal\"");
        system_toml(name, "Europe/Paris", "q.sql", &more)
    };
    std::fs::write(
        &cfg,
        format!(
            "[wfm]\ndatabase_url = \"{}\"\n{}{}",
            store.url,
            system("a", "ACDSYNC_T_A"),
            system("b", "ACDSYNC_T_B_UNSET")
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        acdsync()
            .env("ACDSYNC_T_A", &source.connection_string)
            .env_remove("ACDSYNC_T_B_UNSET")
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .assert()
    };

    // When only the first is synced, Then it succeeds
    run(&["sync", "--system", "a", "--date", "2026-01-15"]).success();

    // When both are synced, Then the first still syncs, the second fails naming its setting, exit 78
    let out = run(&["sync", "--date", "2026-01-15"]).code(78);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stdout.contains("system \"a\""), "{stdout}");
    assert!(stderr.contains("system \"b\": connection_string_env: the environment variable ACDSYNC_T_B_UNSET is not set"), "{stderr}");
    assert_eq!(
        store.count("SELECT COUNT(*) FROM import_runs WHERE status = 'succeeded'"),
        2
    );
    assert_eq!(
        store.count("SELECT COUNT(*) FROM import_runs WHERE status = 'failed'"),
        1
    );
}

#[test]
fn days_outside_1970_to_9999_are_usage_errors_not_panics() {
    for args in [
        &["sync", "--date", "+262142-12-31"][..],
        &["sync", "--date", "1969-12-31"],
        &["sync", "--from", "2026-01-01", "--to", "10000-01-01"],
        &["sync", "--from", "1900-01-01", "--to", "2026-01-01"],
        &[
            "demo",
            "--dir",
            "/nonexistent-acdsync-demo",
            "--date",
            "20000-01-01",
        ],
    ] {
        let out = acdsync().args(args).assert().code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(
            stderr.contains("outside 1970-01-01 to 9999-12-31")
                || stderr.contains("write a day as YYYY-MM-DD"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn the_demo_refuses_a_folder_holding_its_files_unless_forced() {
    // Given a folder where the demo already ran, and a config file of the user's own there
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let run = |extra: &[&str]| {
        acdsync()
            .args(["demo", "--agents", "5", "--date", "2026-01-15", "--dir"])
            .arg(&demo)
            .args(extra)
            .assert()
    };
    run(&[]).success();
    std::fs::write(demo.join("acdsync.toml"), "# mine\n").unwrap();

    // When the demo runs there again, Then it refuses, naming the files, and leaves them alone
    let out = run(&[]).code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("already holds acdsync.toml, generic_sessions.sql, telephony.db, wfm.db")
            && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(demo.join("acdsync.toml")).unwrap(),
        "# mine\n"
    );

    // And with --force it writes the sample again and syncs into the same WFM database: nothing changes
    let out = run(&["--force"]).success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("inserted        0"), "{stdout}");
}

#[test]
fn a_range_that_ends_before_it_starts_is_a_usage_error() {
    let out = acdsync()
        .args(["sync", "--from", "2026-01-16", "--to", "2026-01-15"])
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr)
        .contains("--from 2026-01-16 is after --to 2026-01-15"));
}

#[test]
fn watch_syncs_every_interval_until_sigterm_then_exits_0() {
    // Given a source with today's sessions and an SQLite WFM database
    let dir = tempfile::tempdir().unwrap();
    let source = Source::new(SourceKind::Sqlite);
    let today = acdsync::sync::Days::today(chrono_tz::Europe::Paris).first;
    let start = format!("{today} 09:00:00");
    let end = format!("{today} 10:00:00");
    source.execute(&format!(
        "INSERT INTO acd_agent_states VALUES ('1001', NULL, '{start}', '{end}')"
    ));
    let db = dir.path().join("wfm.db");
    let cfg = write_config(
        dir.path(),
        &format!("sqlite://{}", db.display()),
        "ACDSYNC_T_WATCH",
    );
    acdsync()
        .arg("--config")
        .arg(&cfg)
        .arg("migrate")
        .assert()
        .success();

    // When `sync --watch 1s` runs for a while and then gets SIGTERM
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("acdsync"))
        .env("ACDSYNC_T_WATCH", &source.connection_string)
        .env_remove("ACDSYNC_DATABASE_URL")
        .arg("--config")
        .arg(&cfg)
        .args(["sync", "--watch", "1s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let store = || Dba::open(&format!("sqlite://{}", db.display()));
    let succeeded = |s: &mut Dba| -> i64 {
        use diesel::prelude::*;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        match s {
            Dba::Sqlite(c) => {
                diesel::sql_query(
                    "SELECT COUNT(*) AS n FROM import_runs WHERE status = 'succeeded'",
                )
                .get_result::<N>(c)
                .unwrap()
                .n
            }
            Dba::Postgres(_) => unreachable!(),
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while succeeded(&mut store()) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "fewer than 3 rounds in 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();

    // Then it stops with exit code 0, each round recorded as a run, the session stored once
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stopping on signal"), "{stderr}");
    let mut s = store();
    assert!(succeeded(&mut s) >= 3);
    let runs_not_finished = match &mut s {
        Dba::Sqlite(c) => {
            use acdsync::store::schema::import_runs::dsl as r;
            use diesel::prelude::*;
            r::import_runs
                .filter(r::status.ne("succeeded"))
                .filter(r::status.ne("interrupted"))
                .count()
                .get_result::<i64>(c)
                .unwrap()
        }
        Dba::Postgres(_) => unreachable!(),
    };
    assert_eq!(
        runs_not_finished, 0,
        "a round under way at SIGTERM stops at a safe point (interrupted), none is left running"
    );
}

#[test]
fn a_failure_is_reported_once_one_line_in_text_one_json_object_in_json() {
    // Given a config file that does not exist
    // When sync runs with text logs, then with JSON logs
    let text = acdsync()
        .args(["--config", "/nonexistent/acdsync.toml", "sync"])
        .assert()
        .code(78);
    let json = acdsync()
        .args([
            "--config",
            "/nonexistent/acdsync.toml",
            "--log-format",
            "json",
            "sync",
        ])
        .assert()
        .code(78);

    // Then text mode prints one human line naming the file
    let stderr = String::from_utf8_lossy(&text.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("acdsync: error: cannot read config file /nonexistent/acdsync.toml"),
        "{stderr}"
    );
    // And JSON mode one JSON object with the error and the exit code, and nothing else
    let stderr = String::from_utf8_lossy(&json.get_output().stderr).into_owned();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let line = lines[0];
    assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
    assert!(line.contains("\"exit_code\":78"), "{line}");
    assert!(line.contains("/nonexistent/acdsync.toml"), "{line}");
}

#[test]
fn a_failed_system_is_one_json_object_too() {
    // Given a WFM database file that does not exist (a typo)
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!("sqlite://{}", dir.path().join("typo.db").display()),
        "ACDSYNC_T_JSON_ONE",
    );
    // When sync runs with JSON logs
    let out = acdsync()
        .env("ACDSYNC_T_JSON_ONE", NOWHERE)
        .arg("--config")
        .arg(&cfg)
        .args(["--log-format", "json", "sync", "--date", "2026-01-15"])
        .assert()
        .code(78);
    // Then every line on stderr is a JSON object
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(!stderr.is_empty());
    for line in stderr.lines() {
        assert!(line.starts_with('{') && line.ends_with('}'), "{stderr}");
    }
}

#[test]
fn sync_takes_the_wfm_database_from_database_url_as_migrate_does() {
    // Given a config with an empty [wfm], and a migrated store
    let store = TestStore::new(StoreKind::Sqlite);
    let source = Source::new(SourceKind::Sqlite);
    source.execute(
        "INSERT INTO acd_agent_states VALUES ('1001', 'BREAK', '2026-01-15 09:00:00', '2026-01-15 09:15:00')",
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "sqlite://unused.db", "ACDSYNC_T_DB_URL");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("database_url = \"sqlite://unused.db\"\n", ""),
    )
    .unwrap();
    // When sync is given --database-url
    acdsync()
        .env("ACDSYNC_T_DB_URL", &source.connection_string)
        .arg("--config")
        .arg(&cfg)
        .args(["sync", "--date", "2026-01-15", "--database-url", &store.url])
        .assert()
        .success();
    // Then the session is in that store
    assert_eq!(store.count("SELECT COUNT(*) FROM agent_sessions"), 1);
}

#[test]
fn the_demo_refuses_a_config_file_it_would_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = acdsync()
        .args(["--config", "mine.toml", "demo", "--dir"])
        .arg(dir.path().join("demo"))
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("does not read --config mine.toml"),
        "{stderr}"
    );
    assert!(!dir.path().join("demo").exists(), "nothing written");
}

/// Configuration mistakes that carry a password, each through `sync` and `migrate`, in text and JSON logs:
/// the process fails with a configuration error (78) that names the place (`migrate`, which reads only
/// [wfm], runs when the mistake is elsewhere), and the password is in no output.
#[test]
fn a_password_in_a_broken_config_or_url_is_in_no_output() {
    let canary = "Canary-S3cret/pw";
    let sql = acdsync::demo::GENERIC_SESSIONS_SQL;
    let system = "[[system]]\nname = \"p\"\ntime_zone = \"UTC\"\nsql_file = \"q.sql\"\n";
    let good_wfm = "[wfm]\ndatabase_url = \"sqlite://w.db\"\n";
    // (name, config file text, ACDSYNC_DATABASE_URL, what the message must say)
    let cases: Vec<(&str, String, Option<String>, &str)> = vec![
        ("an unterminated string", format!("{good_wfm}{system}connection_string = \"Driver=X;Pwd={canary};\n"), None, "line 7"),
        ("a list as database_url", format!("[wfm]\ndatabase_url = [\"postgres://u:{canary}@h/db\"]\n{system}connection_string = \"x\"\n"), None, "line 2"),
        ("a duplicate key", format!("[wfm]\ndatabase_url = \"postgres://u:{canary}@h/db\"\ndatabase_url = \"postgres://u:{canary}@h/db\"\n"), None, "line 3"),
        ("a misspelt key", format!("{good_wfm}{system}connection_strng = \"Driver=X;Pwd={canary};\"\n"), None, "connection_strng"),
        ("a password where a number goes", format!("{good_wfm}{system}connection_string = \"x\"\nmax_session_hours = \"{canary}\"\n"), None, "line 8"),
        ("a URL with one slash, from the environment", format!("[wfm]\n{system}connection_string = \"x\"\n"), Some(format!("postgres:/wfm:{canary}@127.0.0.1/db")), "the environment variable ACDSYNC_DATABASE_URL"),
        ("a URL with no colon, from the environment", format!("[wfm]\n{system}connection_string = \"x\"\n"), Some(format!("postgres//wfm:{canary}@127.0.0.1/db")), "must start with postgres://"),
        ("a slash in the password", format!("[wfm]\ndatabase_url = \"postgres://wfm:{canary}@127.0.0.1:5432/db\"\n{system}connection_string = \"x\"\n"), None, "percent-encoded"),
        ("a URL file holding a malformed URL", format!("[wfm]\ndatabase_url_file = \"url.txt\"\n{system}connection_string = \"x\"\n"), None, "database_url_file"),
    ];
    for (name, text, env_url, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("q.sql"), sql).unwrap();
        std::fs::write(
            dir.path().join("url.txt"),
            format!("postgresql:wfm:{canary}@h/db\n"),
        )
        .unwrap();
        let cfg = dir.path().join("acdsync.toml");
        std::fs::write(&cfg, &text).unwrap();
        for format in ["text", "json"] {
            for command in [&["sync", "--date", "2026-01-15"][..], &["migrate"]] {
                let mut c = acdsync();
                c.arg("--config")
                    .arg(&cfg)
                    .args(["--log-format", format])
                    .args(command);
                if let Some(u) = &env_url {
                    c.env("ACDSYNC_DATABASE_URL", u);
                }
                // (`migrate` reads only [wfm]: a mistake in [[system]] does not stop it.)
                let migrate = command == ["migrate"];
                let out = c.assert();
                let code = out.get_output().status.code();
                assert!(
                    code == Some(78) || (migrate && code == Some(0)),
                    "{name}, {format}, {command:?}: exit {code:?}"
                );
                let output = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.get_output().stdout),
                    String::from_utf8_lossy(&out.get_output().stderr)
                );
                let what = format!("{name}, {format}, {command:?}: {output}");
                for leak in [canary, "Canary-S3cret", "S3cret/pw", "S3cret%2Fpw"] {
                    assert!(!output.contains(leak), "the password leaked: {what}");
                }
                assert!(output.contains(says) || code == Some(0), "{what}");
            }
        }
    }
}

/// A sweep of failure modes that carry a password, beyond configuration mistakes: unreachable servers (with
/// retries logged), a driver that does not exist, a server that refuses, `check`, connection strings in every
/// written form; each through text and JSON logs, and the runs table where a run was recorded. With the nine
/// of `a_password_in_a_broken_config_or_url_is_in_no_output`, 27 modes.
#[test]
fn a_password_is_in_no_output_in_any_failure_mode() {
    let canary = "Canary-Pw-9z";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("q.sql"),
        acdsync::demo::GENERIC_SESSIONS_SQL,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("odbc.txt"),
        format!("Driver={{No Such Driver}};Pwd={canary};\n"),
    )
    .unwrap();
    let store = TestStore::migrated(StoreKind::Sqlite);
    let wfm = format!(
        "[wfm]\ndatabase_url = \"{}\"\nconnect_retries = 2\nconnect_retry_delay = \"10ms\"\n",
        store.url
    );
    let system = |connection: &str| {
        let more = format!("{connection}\nconnect_retries = 2\nconnect_retry_delay = \"10ms\"");
        system_toml("p", "UTC", "q.sql", &more)
    };
    let pg_down = format!(
        "Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port=1;Database=x;Uid=u;Pwd={canary};"
    );
    let maria =
        format!("Driver={{MariaDB Unicode}};Server=127.0.0.1;Port=3306;Uid=root;Pwd={canary};");
    // (name, config text, ACDSYNC_DATABASE_URL, command)
    let sync = &["sync", "--date", "2026-01-15"][..];
    let check = &["check"][..];
    let cases: Vec<(&str, String, Option<String>, &[&str])> = vec![
        ("a source that refuses connections (retried)", format!("{wfm}{}", system(&format!("connection_string = \"{pg_down}\""))), None, sync),
        ("a source driver that does not exist", format!("{wfm}{}", system(&format!("connection_string = \"Driver={{Nope}};Pwd={canary};\""))), None, sync),
        ("a braced password", format!("{wfm}{}", system(&format!("connection_string = \"Driver={{Nope}};PWD={{{canary};x}};\""))), None, sync),
        ("Password= instead of Pwd=", format!("{wfm}{}", system(&format!("connection_string = \"Driver={{Nope}};Password={canary};\""))), None, sync),
        ("a connection string file", format!("{wfm}{}", system("connection_string_file = \"odbc.txt\"")), None, sync),
        ("MariaDB refusing a wrong password", format!("{wfm}{}", system(&format!("connection_string = \"{maria}\""))), None, sync),
        ("check of a source that refuses", format!("{wfm}{}", system(&format!("connection_string = \"{pg_down}\""))), None, check),
        ("check of a missing driver", format!("{wfm}{}", system(&format!("connection_string = \"Driver={{Nope}};Pwd={canary};\""))), None, check),
        ("a WFM database that refuses (retried)", system("connection_string = \"x\""), Some(format!("postgres://u:{canary}@127.0.0.1:1/db")), sync),
        ("a WFM password in the query string", system("connection_string = \"x\""), Some(format!("postgres://u@127.0.0.1:1/db?password={canary}")), sync),
        ("a percent-encoded WFM password", system("connection_string = \"x\""), Some(format!("postgres://u:{}%40x@127.0.0.1:1/db", canary)), sync),
        ("an unknown URL scheme", system("connection_string = \"x\""), Some(format!("mysql://u:{canary}@h/db")), sync),
        ("a misspelt sqlite scheme", system("connection_string = \"x\""), Some(format!("sqlit://u:{canary}@h/db")), sync),
        ("a WFM database that refuses, migrate", system("connection_string = \"x\""), Some(format!("postgres://u:{canary}@127.0.0.1:1/db")), &["migrate"]),
        ("a missing SQL file beside an inline password", format!("{wfm}[[system]]\nname = \"p\"\ntime_zone = \"UTC\"\nsql_file = \"missing.sql\"\nconnection_string = \"Driver={{Nope}};Pwd={canary};\"\n"), None, sync),
        ("a bad watermark kind beside an inline password", format!("{wfm}{}[system.incremental]\nsql_file = \"q.sql\"\nwatermark = \"sometimes\"\n", system(&format!("connection_string = \"Driver={{Nope}};Pwd={canary};\""))), None, sync),
        ("an unknown system named with a password in the file", format!("{wfm}{}", system(&format!("connection_string = \"Driver={{Nope}};Pwd={canary};\""))), None, &["sync", "--system", "other"]),
        ("a check of a WFM database that refuses", system("connection_string = \"x\""), Some(format!("postgres://u:{canary}@127.0.0.1:1/db")), check),
    ];
    assert!(cases.len() + 9 >= 25);
    for (name, text, env_url, command) in cases {
        let cfg = dir.path().join("acdsync.toml");
        std::fs::write(&cfg, &text).unwrap();
        for format in ["text", "json"] {
            let mut c = acdsync();
            c.arg("--config")
                .arg(&cfg)
                .args(["--log-format", format])
                .args(command);
            if let Some(u) = &env_url {
                c.env("ACDSYNC_DATABASE_URL", u);
            }
            let out = c.output().unwrap();
            let output = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                !out.status.success(),
                "{name}, {format}: succeeded\n{output}"
            );
            assert!(
                !output.contains(canary),
                "{name}, {format}: the password leaked\n{output}"
            );
        }
    }
    assert_eq!(
        store.count(&format!(
            "SELECT COUNT(*) FROM import_runs WHERE error LIKE '%{canary}%'"
        )),
        0
    );
    assert!(store.count("SELECT COUNT(*) FROM import_runs WHERE status = 'failed'") >= 6);
}
