//! The mapping rules hold against plain SQL from a DBA, on both backends; migrations go up and down.

use crate::common::*;
use crate::on_both_stores;
use acdsync::store::{Create, Store};

/// A system with one agent ID and one code, as a first sync leaves them.
fn seeded(kind: StoreKind) -> TestStore {
    let store = TestStore::new(kind);
    store
        .execute(
            "INSERT INTO external_systems (id, name, time_zone) VALUES (1, 'paris', 'Europe/Paris');
             INSERT INTO external_activity_codes (external_system_id, code, activity_id) VALUES (1, 'BREAK', 1);
             INSERT INTO external_agent_ids (external_system_id, external_id) VALUES (1, '1001');
             INSERT INTO activities (id, name) VALUES (2, 'Break');
             INSERT INTO employees (id, name) VALUES (10, 'Ada'), (11, 'Grace');",
        )
        .unwrap();
    store
}

fn refused(store: &TestStore, sql: &str, needles: &[&str]) {
    let err = store.execute(sql).expect_err(sql);
    assert!(
        needles.iter().any(|n| err.contains(n)),
        "{sql}\nwas refused with {err:?}, expected one of {needles:?}"
    );
}

on_both_stores!(a_code_has_exactly_one_activity, |kind| {
    let store = seeded(kind);
    // A second owner for the same code of the same system
    refused(
        &store,
        "INSERT INTO external_activity_codes (external_system_id, code, activity_id) VALUES (1, 'BREAK', 2)",
        &["external_activity_codes_one_owner", "UNIQUE constraint failed: external_activity_codes.external_system_id, external_activity_codes.code"],
    );
    // No activity at all
    refused(
        &store,
        "UPDATE external_activity_codes SET activity_id = NULL",
        &["null value", "NOT NULL constraint failed"],
    );
    // An activity that does not exist
    refused(
        &store,
        "UPDATE external_activity_codes SET activity_id = 99",
        &[
            "external_activity_codes_activity_fk",
            "FOREIGN KEY constraint failed",
        ],
    );
    // Many codes may share one activity; a code inserted without one lands on Present
    store
        .execute("INSERT INTO external_activity_codes (external_system_id, code) VALUES (1, 'PAUSE'); UPDATE external_activity_codes SET activity_id = 2;")
        .unwrap();
    assert_eq!(
        store.count("SELECT COUNT(*) FROM external_activity_codes WHERE activity_id = 2"),
        2
    );
});

on_both_stores!(an_agent_id_has_at_most_one_employee, |kind| {
    let store = seeded(kind);
    refused(
        &store,
        "INSERT INTO external_agent_ids (external_system_id, external_id, employee_id) VALUES (1, '1001', 11)",
        &["external_agent_ids_one_owner", "UNIQUE constraint failed: external_agent_ids.external_system_id, external_agent_ids.external_id"],
    );
    refused(
        &store,
        "UPDATE external_agent_ids SET employee_id = 99",
        &[
            "external_agent_ids_employee_fk",
            "FOREIGN KEY constraint failed",
        ],
    );
    // One employee may own many IDs
    store
        .execute(
            "INSERT INTO external_agent_ids (external_system_id, external_id, employee_id) VALUES (1, 'PJSIP/1001', 10);
             UPDATE external_agent_ids SET employee_id = 10 WHERE external_id = '1001';",
        )
        .unwrap();
    assert_eq!(
        store.count("SELECT COUNT(*) FROM external_agent_ids WHERE employee_id = 10"),
        2
    );
    // Deleting the employee unmaps the IDs rather than losing them
    store
        .execute("DELETE FROM employees WHERE id = 10")
        .unwrap();
    assert_eq!(
        store.count("SELECT COUNT(*) FROM external_agent_ids WHERE employee_id IS NULL"),
        2
    );
});

on_both_stores!(
    present_cannot_be_deleted_and_sessions_stay_consistent,
    |kind| {
        let store = seeded(kind);
        refused(&store, "DELETE FROM activities WHERE id = 1", &["Present"]);
        refused(
        &store,
        "INSERT INTO agent_sessions (external_system_id, external_agent_id, started_at, ended_at) VALUES (1, 1, '2026-01-01 10:00:00', '2026-01-01 09:00:00')",
        &["agent_sessions_end_after_start", "CHECK constraint failed"],
    );
        // A session cannot point at another system's agent ID
        store.execute("INSERT INTO external_systems (id, name, time_zone) VALUES (2, 'lyon', 'Europe/Paris')").unwrap();
        refused(
        &store,
        "INSERT INTO agent_sessions (external_system_id, external_agent_id, started_at) VALUES (2, 1, '2026-01-01 10:00:00')",
        &["agent_sessions_agent_fk", "FOREIGN KEY constraint failed"],
    );
        // Writing every column back unchanged (an ORM's save of a mapping) is not a renumbering
        store
            .execute("INSERT INTO agent_sessions (external_system_id, external_agent_id, started_at) VALUES (1, 1, '2026-01-01 10:00:00')")
            .unwrap();
        store
            .execute("UPDATE external_agent_ids SET id = id, external_system_id = external_system_id, employee_id = NULL WHERE id = 1")
            .unwrap();
        refused(
            &store,
            "DELETE FROM external_agent_ids WHERE id = 1",
            &["agent_sessions_agent_fk", "FOREIGN KEY constraint failed"],
        );
    }
);

on_both_stores!(migrations_go_down_and_up_again, |kind| {
    let store = TestStore::new(kind);
    let mut s = Store::open(&store.database_url(), Create::Never).unwrap();
    s.revert_all().unwrap();
    assert!(s.check_schema().is_err(), "a reverted schema is behind");
    let shipped = std::fs::read_dir("migrations/postgres").unwrap().count();
    assert_eq!(s.migrate().unwrap().len(), shipped);
    s.check_schema().unwrap();
    assert!(
        s.migrate().unwrap().is_empty(),
        "migrate twice applies nothing"
    );
});

#[test]
fn both_backends_have_the_same_migrations() {
    let names = |dir: &str| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let pg = names("migrations/postgres");
    assert!(!pg.is_empty());
    assert_eq!(pg, names("migrations/sqlite"));
    for m in &pg {
        for backend in ["postgres", "sqlite"] {
            let down =
                std::fs::read_to_string(format!("migrations/{backend}/{m}/down.sql")).unwrap();
            assert!(
                down.contains("DROP"),
                "{backend}/{m}/down.sql must undo its up.sql"
            );
        }
    }
}

on_both_stores!(the_dba_queries_run_and_answer, |kind| {
    // Given a synced day with two unmapped agents and two new codes
    let store = TestStore::new(kind);
    let source = Source::new(SourceKind::Sqlite);
    source.set_rows(&[
        row(
            "1001",
            Some("BREAK"),
            "2026-01-15 10:00:00",
            Some("2026-01-15 10:15:00"),
        ),
        row("1002", Some("LUNCH"), "2026-01-15 12:00:00", None),
        Row {
            agent: None,
            code: None,
            start: Some("2026-01-15 12:00:00"),
            end: None,
        },
    ]);
    let system = source.system(
        "demo-acd",
        "Europe/Paris",
        acdsync::config::WindowParameters::Literal,
    );
    store.sync(&system, day("2026-01-15")).unwrap();

    // When each shipped DBA query runs, Then it answers what its comment promises
    let count = |file: &str| {
        let sql = std::fs::read_to_string(format!("sql/dba/{file}")).unwrap();
        store.count(&format!(
            "SELECT COUNT(*) FROM ({}) AS q",
            sql.trim().trim_end_matches(';')
        ))
    };
    assert_eq!(count("last_runs.sql"), 1);
    assert_eq!(count("unmapped_agent_ids.sql"), 2);
    assert_eq!(count("codes_on_present.sql"), 2);
    assert_eq!(count("rejected_rows_of_last_run.sql"), 1);
    let map = std::fs::read_to_string("sql/dba/map.sql").unwrap();
    store.execute(&map).unwrap();
    assert_eq!(count("unmapped_agent_ids.sql"), 1);
    assert_eq!(count("codes_on_present.sql"), 1);
    assert_eq!(
        store
            .view()
            .iter()
            .filter(|v| v.employee_id.is_some())
            .count(),
        1
    );
});

#[test]
fn sqlite_rules_hold_in_a_client_that_leaves_foreign_keys_off() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;

    // Given a migrated SQLite WFM database opened the way the sqlite3 shell opens it (no PRAGMA)
    let store = seeded(StoreKind::Sqlite);
    let path = store.url.strip_prefix("sqlite://").unwrap().to_owned();
    let mut plain = diesel::sqlite::SqliteConnection::establish(&path).unwrap();
    let refuse = |c: &mut diesel::sqlite::SqliteConnection, sql: &str, needle: &str| {
        let err = c.batch_execute(sql).expect_err(sql).to_string();
        assert!(
            err.contains(needle),
            "{sql}\nwas refused with {err:?}, expected {needle:?}"
        );
    };
    plain.batch_execute("PRAGMA foreign_keys = OFF").unwrap();

    // Then the mapping references still hold
    refuse(
        &mut plain,
        "UPDATE external_activity_codes SET activity_id = 99",
        "external_activity_codes_activity_fk",
    );
    refuse(
        &mut plain,
        "INSERT INTO external_activity_codes (external_system_id, code, activity_id) VALUES (1, 'X', 99)",
        "external_activity_codes_activity_fk",
    );
    refuse(
        &mut plain,
        "UPDATE external_agent_ids SET employee_id = 99",
        "external_agent_ids_employee_fk",
    );
    refuse(&mut plain, "DELETE FROM activities WHERE id = 1", "Present");
    plain
        .batch_execute("UPDATE external_activity_codes SET activity_id = 2")
        .unwrap();
    refuse(
        &mut plain,
        "DELETE FROM activities WHERE id = 2",
        "external_activity_codes_activity_fk",
    );
    plain
        .batch_execute(
            "UPDATE external_agent_ids SET employee_id = 10; DELETE FROM employees WHERE id = 10",
        )
        .unwrap();
    assert_eq!(
        store.count("SELECT COUNT(*) FROM external_agent_ids WHERE employee_id IS NULL"),
        1,
        "deleting an employee unmaps"
    );

    // And a session time has one spelling only, so a second spelling cannot slip past the unique key
    plain
        .batch_execute("INSERT INTO agent_sessions (external_system_id, external_agent_id, started_at) VALUES (1, 1, '2026-01-01 10:00:00')")
        .unwrap();
    refuse(
        &mut plain,
        "INSERT INTO agent_sessions (external_system_id, external_agent_id, started_at) VALUES (1, 1, '2026-01-01T10:00:00')",
        "agent_sessions_time_format",
    );
    for other_spelling in [
        "2026-01-01 10:00:00.000",
        "2026-01-01 10:00:00+05:00",
        "2026-01-01 10:00:00.500000",
        "2026-01-01 10:00",
    ] {
        refuse(
            &mut plain,
            &format!("INSERT INTO agent_sessions (external_system_id, external_agent_id, started_at) VALUES (1, 1, '{other_spelling}')"),
            "agent_sessions_time_format",
        );
    }
    plain
        .batch_execute(
            "INSERT INTO agent_sessions (external_system_id, external_agent_id, started_at, ended_at) \
             VALUES (1, 1, '2026-01-01 11:00:00.500', '2026-01-01 11:00:00.500001')",
        )
        .unwrap();
    refuse(
        &mut plain,
        "DELETE FROM external_agent_ids WHERE id = 1",
        "agent_sessions_agent_fk",
    );
}
