//! The source is read, never written: an SQL file that would write is refused before it is sent, and the
//! connection is read-only, through each ODBC driver.

use acdsync::config::WindowParameters;
use acdsync::source::query::{QueryKind, SourceQuery};
use assert_cmd::Command;

use crate::common::*;

/// `acdsync sync` of 2026-01-15 with `sql` as the system's SQL file, reading `source`.
fn sync_with_sql_file(source: &Source, sql: &str) -> assert_cmd::assert::Assert {
    let store = TestStore::new(StoreKind::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("q.sql"), sql).unwrap();
    let cfg = dir.path().join("acdsync.toml");
    std::fs::write(
        &cfg,
        format!(
            "[wfm]\ndatabase_url = \"{}\"\n\n[[system]]\nname = \"acd\"\ntime_zone = \"Europe/Paris\"\nsql_file = \"q.sql\"\nconnection_string_env = \"ACDSYNC_T_RO\"\n",
            store.url
        ),
    )
    .unwrap();
    Command::cargo_bin("acdsync")
        .unwrap()
        .env_remove("ACDSYNC_DATABASE_URL")
        .env("ACDSYNC_T_RO", &source.connection_string)
        .arg("--config")
        .arg(&cfg)
        .args(["sync", "--date", "2026-01-15"])
        .assert()
}

fn a_source_with_rows(kind: SourceKind) -> Source {
    let source = Source::new(kind);
    source.set_rows(&[
        row(
            "1001",
            None,
            "2026-01-15 08:00:00",
            Some("2026-01-15 09:00:00"),
        ),
        row("1002", Some("BREAK"), "2026-01-15 10:00:00", None),
    ]);
    source
}

#[test]
fn an_sql_file_that_writes_is_refused_before_it_is_sent_through_every_driver() {
    let delete = "DELETE FROM acd_agent_states WHERE started_at >= {window_start} AND started_at < {window_end}";
    let writable_cte = "WITH gone AS (DELETE FROM acd_agent_states WHERE started_at >= {window_start} RETURNING *) \
                        SELECT agent_id, activity_code, started_at, ended_at FROM gone WHERE started_at < {window_end}";
    for (kind, sql) in [
        (SourceKind::Sqlite, delete),
        (SourceKind::MariaDb, delete),
        (SourceKind::Postgres, delete),
        (SourceKind::Postgres, writable_cte),
    ] {
        // Given a source with two rows and an SQL file that deletes them
        let source = a_source_with_rows(kind);
        // When it is synced
        let out = sync_with_sql_file(&source, sql).code(78);
        // Then the config is refused, naming the file and why, and the source keeps its rows
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(
            stderr.contains("q.sql line 1") && stderr.contains("DELETE"),
            "{kind:?}: {stderr}"
        );
        assert!(stderr.contains("only reads the source"), "{stderr}");
        assert_eq!(source.rows(), 2, "{kind:?}: the source was written");
    }
}

#[test]
fn a_query_that_writes_through_a_function_fails_on_the_read_only_connection() {
    // Given sources whose query passes the text check but writes (a sequence's next value)
    let cases = [
        (
            SourceKind::Postgres,
            "CREATE SEQUENCE acd_seq",
            "SELECT agent_id, activity_code, started_at, ended_at FROM acd_agent_states \
             WHERE started_at >= {window_start} AND started_at < {window_end} AND nextval('acd_seq') > 0 \
             ORDER BY started_at",
            "read-only transaction",
        ),
        (
            SourceKind::MariaDb,
            "CREATE SEQUENCE acd_seq",
            "SELECT agent_id, activity_code, started_at, ended_at FROM acd_agent_states \
             WHERE started_at >= {window_start} AND started_at < {window_end} AND NEXTVAL(acd_seq) > 0 \
             ORDER BY started_at",
            "READ ONLY",
        ),
    ];
    for (kind, ddl, sql, needle) in cases {
        let source = a_source_with_rows(kind);
        source.execute(ddl);
        // When it is synced, Then the source refuses the write and the sync fails
        let out = sync_with_sql_file(&source, sql).failure();
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(stderr.contains(needle), "{kind:?}: {stderr}");
    }
}

#[test]
fn the_shipped_source_queries_are_reading_statements() {
    for (file, text, kind) in [
        (
            "generic_sessions.sql",
            include_str!("../../sql/sources/generic_sessions.sql"),
            QueryKind::Window,
        ),
        (
            "postgresql_sessions.sql",
            include_str!("../../sql/sources/postgresql_sessions.sql"),
            QueryKind::Window,
        ),
        (
            "generic_sessions_changes.sql",
            include_str!("../../sql/sources/generic_sessions_changes.sql"),
            QueryKind::Changes,
        ),
    ] {
        SourceQuery::parse(std::path::Path::new(file), text, kind)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    // And a reading query reads through the read-only connection of each driver
    for kind in [
        SourceKind::Sqlite,
        SourceKind::Postgres,
        SourceKind::MariaDb,
    ] {
        let source = a_source_with_rows(kind);
        let store = TestStore::new(StoreKind::Sqlite);
        let system = source.system("acd", "Europe/Paris", WindowParameters::Bound);
        let r = store.sync(&system, day("2026-01-15")).unwrap();
        assert_eq!(r.counts.inserted, 2, "{kind:?}");
    }
}
