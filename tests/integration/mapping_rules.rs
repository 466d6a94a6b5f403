//! The rules of migration 2026-11-30-000003 (dated ownership of agent IDs, activity names, mapped_at) hold
//! against a DBA's plain SQL, on both backends; the migration goes down and up with the mappings kept; the
//! DBA queries of sql/dba/ about mappings run and answer.

use crate::common::*;
use crate::on_both_stores;

/// The hand-on instant of the tests (UTC, as a DBA types it in either dialect).
const T: &str = "2026-03-01 00:00:00";

/// A system with three agent IDs (1001 owned by Ada from the beginning, 1002 and 1003 unmapped), a code on
/// Present as a sync discovers it, and three employees.
fn seeded(kind: StoreKind) -> TestStore {
    let store = TestStore::new(kind);
    store
        .execute(
            "INSERT INTO external_systems (id, name, time_zone) VALUES (1, 'paris', 'Europe/Paris');
             INSERT INTO employees (id, name) VALUES (10, 'Ada'), (11, 'Grace'), (12, 'Linus');
             INSERT INTO external_agent_ids (id, external_system_id, external_id, employee_id)
                 VALUES (1, 1, '1001', 10), (2, 1, '1002', NULL), (3, 1, '1003', NULL);
             INSERT INTO external_activity_codes (external_system_id, code, activity_id) VALUES (1, 'BREAK', 1);
             INSERT INTO activities (name) VALUES ('Break');",
        )
        .unwrap();
    store
}

/// `sql` is refused with an error containing `needle`; the error, for messages.
fn refused(store: &TestStore, sql: &str, needle: &str) -> String {
    let err = store.execute(sql).expect_err(sql);
    assert!(
        err.contains(needle),
        "{sql}\nwas refused with {err:?}, expected {needle:?}"
    );
    eprintln!("refused: {err}");
    err
}

/// The periods of agent ID row `id`: (employee, from, to) as text, from the beginning on.
fn periods(store: &TestStore, id: i64) -> Vec<(i64, Option<String>, Option<String>)> {
    #[derive(diesel::QueryableByName)]
    struct P {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        employee_id: i64,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
        valid_from: Option<chrono::NaiveDateTime>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
        valid_to: Option<chrono::NaiveDateTime>,
    }
    use diesel::RunQueryDsl;
    let q = diesel::sql_query(format!(
        "SELECT employee_id, valid_from, valid_to FROM agent_id_owners WHERE external_agent_id = {id} \
         ORDER BY valid_from IS NOT NULL, valid_from"
    ));
    let rows: Vec<P> = match &mut store.dba() {
        Dba::Postgres(c) => q.load(c),
        Dba::Sqlite(c) => q.load(c),
    }
    .unwrap();
    let f = |t: Option<chrono::NaiveDateTime>| t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string());
    rows.into_iter()
        .map(|p| (p.employee_id, f(p.valid_from), f(p.valid_to)))
        .collect()
}

fn period(
    employee: i64,
    from: Option<&str>,
    to: Option<&str>,
) -> (i64, Option<String>, Option<String>) {
    (employee, from.map(str::to_owned), to.map(str::to_owned))
}

/// external_agent_ids.employee_id of agent ID row `id` (-1 for NULL).
fn open_owner(store: &TestStore, id: i64) -> i64 {
    store.count(&format!(
        "SELECT COALESCE(employee_id, -1) FROM external_agent_ids WHERE id = {id}"
    ))
}

on_both_stores!(
    two_owners_of_an_agent_id_at_one_instant_are_refused,
    |kind| {
        // Given agent ID 1001 owned by Ada from the beginning, open-ended
        let store = seeded(kind);
        let one_owner = "agent_id_owners_one_owner_at_a_time";

        // When a DBA gives it a second owner from a date without ending Ada's period, Then it is refused
        refused(
        &store,
        &format!("INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from) VALUES (1, 11, '{T}')"),
        one_owner,
    );
        // And so is a closed period inside Ada's, and a second owner from the beginning
        refused(
            &store,
            "INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from, valid_to) \
         VALUES (1, 11, '2026-01-01 00:00:00', '2026-01-02 00:00:00')",
            one_owner,
        );
        refused(
            &store,
            "INSERT INTO agent_id_owners (external_agent_id, employee_id) VALUES (1, 11)",
            one_owner,
        );
        // And the hand-on in the wrong order (the new owner first) is refused at its INSERT; the transaction,
        // left open, goes with its connection: nothing changed
        refused(
        &store,
        &format!(
            "BEGIN; \
             INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from) VALUES (1, 11, '{T}'); \
             UPDATE agent_id_owners SET valid_to = '{T}' WHERE external_agent_id = 1 AND employee_id = 10; \
             COMMIT;"
        ),
        one_owner,
    );
        assert_eq!(periods(&store, 1), [period(10, None, None)]);

        // When two periods follow each other, Then stretching one over the other is refused too
        store
        .execute(&format!(
            "UPDATE agent_id_owners SET valid_to = '{T}' WHERE external_agent_id = 1;
             INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from) VALUES (1, 11, '{T}');"
        ))
        .unwrap();
        refused(
            &store,
            "UPDATE agent_id_owners SET valid_to = '2026-03-02 00:00:00' WHERE employee_id = 10",
            one_owner,
        );
        refused(
            &store,
            "UPDATE agent_id_owners SET valid_from = NULL WHERE employee_id = 11",
            one_owner,
        );
        // But another agent ID is another matter: Grace may own 1002 over the same time
        store
            .execute("INSERT INTO agent_id_owners (external_agent_id, employee_id) VALUES (2, 11)")
            .unwrap();
        assert_eq!(store.count("SELECT COUNT(*) FROM agent_id_owners"), 3);
    }
);

on_both_stores!(
    an_agent_id_handed_on_in_one_transaction_is_accepted,
    |kind| {
        // Given agent ID 1001 owned by Ada from the beginning
        let store = seeded(kind);

        // When a DBA hands it on to Grace from T in one transaction: Ada's period ends at T, Grace's starts there
        store
        .execute(&format!(
            "BEGIN;
             UPDATE agent_id_owners SET valid_to = '{T}' WHERE external_agent_id = 1 AND valid_to IS NULL;
             INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from) VALUES (1, 11, '{T}');
             COMMIT;"
        ))
        .unwrap();

        // Then both periods are kept and the open-ended one's owner is the ID's employee_id
        assert_eq!(
            periods(&store, 1),
            [period(10, None, Some(T)), period(11, Some(T), None)]
        );
        assert_eq!(open_owner(&store, 1), 11);
    }
);

on_both_stores!(adjacent_periods_are_accepted, |kind| {
    // Given agent ID 1002 with no owner
    let store = seeded(kind);

    // When periods that meet at their bounds are inserted, in any order ([.., T) and [T, ..) share no instant)
    store
        .execute(&format!(
            "INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from) VALUES (2, 12, '2026-04-01 00:00:00');
             INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_to) VALUES (2, 10, '{T}');
             INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from, valid_to)
                 VALUES (2, 11, '{T}', '2026-04-01 00:00:00');"
        ))
        .unwrap();

    // Then all three are kept, and the last one is the open-ended owner
    assert_eq!(
        periods(&store, 2),
        [
            period(10, None, Some(T)),
            period(11, Some(T), Some("2026-04-01 00:00:00")),
            period(12, Some("2026-04-01 00:00:00"), None)
        ]
    );
    assert_eq!(open_owner(&store, 2), 12);
});

on_both_stores!(a_period_must_end_after_it_starts, |kind| {
    // Given agent ID 1002 with no owner
    let store = seeded(kind);

    // When a period ends before it starts, or where it starts (it would hold no instant), Then it is refused
    refused(
        &store,
        &format!("INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from, valid_to) VALUES (2, 11, '{T}', '2026-02-01 00:00:00')"),
        "agent_id_owners_period_order",
    );
    refused(
        &store,
        &format!("INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from, valid_to) VALUES (2, 11, '{T}', '{T}')"),
        "agent_id_owners_period_order",
    );
    // Also when another period is in the way: the message says what is wrong with this one
    refused(
        &store,
        &format!("UPDATE agent_id_owners SET valid_from = '{T}', valid_to = '2026-02-01 00:00:00' WHERE external_agent_id = 1"),
        "agent_id_owners_period_order",
    );
    assert_eq!(
        store.count("SELECT COUNT(*) FROM agent_id_owners WHERE external_agent_id = 2"),
        0
    );
});

on_both_stores!(a_period_names_an_existing_agent_id_and_employee, |kind| {
    // Given three agent IDs and three employees
    let store = seeded(kind);

    // When a period names an agent ID or an employee that does not exist, Then it is refused
    refused(
        &store,
        "INSERT INTO agent_id_owners (external_agent_id, employee_id) VALUES (99, 10)",
        "agent_id_owners_agent_fk",
    );
    refused(
        &store,
        "INSERT INTO agent_id_owners (external_agent_id, employee_id) VALUES (2, 99)",
        "agent_id_owners_employee_fk",
    );
    refused(
        &store,
        "UPDATE agent_id_owners SET employee_id = 99 WHERE external_agent_id = 1",
        "agent_id_owners_employee_fk",
    );
    // And deleting an agent ID (no session stored) deletes its periods
    store
        .execute("DELETE FROM external_agent_ids WHERE id = 1")
        .unwrap();
    assert_eq!(store.count("SELECT COUNT(*) FROM agent_id_owners"), 0);
});

on_both_stores!(present_cannot_be_renamed_and_other_activities_can, |kind| {
    // Given the system activity Present and an activity Break
    let store = seeded(kind);

    // When a DBA renames Present, Then it is refused
    refused(
        &store,
        "UPDATE activities SET name = 'Available' WHERE id = 1",
        "it cannot be renamed",
    );
    // But writing its name back unchanged (an ORM's save) passes, and Break may be renamed
    store
        .execute("UPDATE activities SET name = 'Present' WHERE id = 1")
        .unwrap();
    store
        .execute("UPDATE activities SET name = 'Pause' WHERE id = 2")
        .unwrap();
    assert_eq!(
        store.count(
            "SELECT COUNT(*) FROM activities WHERE (id, name) IN ((1, 'Present'), (2, 'Pause'))"
        ),
        2
    );
});

on_both_stores!(activity_names_are_unique_ignoring_case_and_spaces, |kind| {
    // Given an activity Break
    let store = seeded(kind);

    // When a DBA adds 'break' or ' Break ', or renames another activity to ' BREAK', Then it is refused
    for name in ["break", " Break ", "BREAK  "] {
        refused(
            &store,
            &format!("INSERT INTO activities (name) VALUES ('{name}')"),
            "activities_name_folded_key",
        );
    }
    store
        .execute("INSERT INTO activities (name) VALUES ('Lunch')")
        .unwrap();
    refused(
        &store,
        "UPDATE activities SET name = ' BREAK' WHERE name = 'Lunch'",
        "activities_name_folded_key",
    );
    // But another name is another activity
    store
        .execute("INSERT INTO activities (name) VALUES ('Break time')")
        .unwrap();
    assert_eq!(store.count("SELECT COUNT(*) FROM activities"), 4);
});

on_both_stores!(an_employee_external_ref_is_unique_and_not_blank, |kind| {
    // Given Ada with the HR reference E-10
    let store = seeded(kind);
    store
        .execute("UPDATE employees SET external_ref = 'E-10' WHERE id = 10")
        .unwrap();

    // When another employee takes the same reference, or a blank one, Then it is refused
    refused(
        &store,
        "UPDATE employees SET external_ref = 'E-10' WHERE id = 11",
        // SQLite names the columns of a unique index, not the index
        match kind {
            StoreKind::Postgres => "employees_external_ref_key",
            StoreKind::Sqlite => "UNIQUE constraint failed: employees.external_ref",
        },
    );
    refused(
        &store,
        "INSERT INTO employees (name, external_ref) VALUES ('Alan', '  ')",
        "employees_external_ref_not_blank",
    );
    // But any number of employees may have none
    store
        .execute("INSERT INTO employees (name) VALUES ('Alan'), ('Barbara')")
        .unwrap();
    assert_eq!(
        store.count("SELECT COUNT(*) FROM employees WHERE external_ref IS NULL"),
        4
    );
});

on_both_stores!(
    a_direct_update_of_employee_id_replaces_the_history,
    |kind| {
        // Given agent ID 1001 handed on from Ada to Grace at T
        let store = seeded(kind);
        store
        .execute(&format!(
            "UPDATE agent_id_owners SET valid_to = '{T}' WHERE external_agent_id = 1;
             INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from) VALUES (1, 11, '{T}');"
        ))
        .unwrap();

        // When an old script sets external_agent_ids.employee_id to Linus
        store
            .execute("UPDATE external_agent_ids SET employee_id = 12 WHERE id = 1")
            .unwrap();

        // Then Linus owns the ID from the beginning, as that UPDATE meant before dated ownership
        assert_eq!(periods(&store, 1), [period(12, None, None)]);
        assert_eq!(open_owner(&store, 1), 12);

        // And setting it to NULL unmaps the ID from the beginning
        store
            .execute("UPDATE external_agent_ids SET employee_id = NULL WHERE id = 1")
            .unwrap();
        assert_eq!(periods(&store, 1), []);

        // And an ID inserted with an employee is owned by it from the beginning
        store
        .execute("INSERT INTO external_agent_ids (id, external_system_id, external_id, employee_id) VALUES (4, 1, '1004', 11)")
        .unwrap();
        assert_eq!(periods(&store, 4), [period(11, None, None)]);
    }
);

on_both_stores!(a_period_change_updates_the_open_period_owner, |kind| {
    // Given agent ID 1002 with no owner
    let store = seeded(kind);
    assert_eq!(open_owner(&store, 2), -1);

    // When Ada gets an open-ended period, Then she is the ID's employee_id
    store
        .execute("INSERT INTO agent_id_owners (external_agent_id, employee_id) VALUES (2, 10)")
        .unwrap();
    assert_eq!(open_owner(&store, 2), 10);
    // When her period ends with nobody after her, Then the ID has no open-ended owner
    store
        .execute(&format!(
            "UPDATE agent_id_owners SET valid_to = '{T}' WHERE external_agent_id = 2"
        ))
        .unwrap();
    assert_eq!(open_owner(&store, 2), -1);
    // When Grace gets the ID from a later date, Then she is its employee_id already
    store
        .execute("INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from) VALUES (2, 11, '2026-04-01 00:00:00')")
        .unwrap();
    assert_eq!(open_owner(&store, 2), 11);
    // When the open period is given to Linus, or moved to another ID, or deleted, Then employee_id follows
    store
        .execute("UPDATE agent_id_owners SET employee_id = 12 WHERE external_agent_id = 2 AND valid_to IS NULL")
        .unwrap();
    assert_eq!(open_owner(&store, 2), 12);
    store
        .execute("UPDATE agent_id_owners SET external_agent_id = 3 WHERE employee_id = 12")
        .unwrap();
    assert_eq!((open_owner(&store, 2), open_owner(&store, 3)), (-1, 12));
    store
        .execute("DELETE FROM agent_id_owners WHERE external_agent_id = 3")
        .unwrap();
    assert_eq!(open_owner(&store, 3), -1);
    // And Ada's ended period was never touched
    assert_eq!(periods(&store, 2), [period(10, None, Some(T))]);
});

on_both_stores!(deleting_an_employee_removes_only_its_periods, |kind| {
    // Given agent ID 1001 handed on from Ada to Grace at T
    let store = seeded(kind);
    store
        .execute(&format!(
            "UPDATE agent_id_owners SET valid_to = '{T}' WHERE external_agent_id = 1;
             INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from) VALUES (1, 11, '{T}');"
        ))
        .unwrap();

    // When Grace, the open-ended owner, is deleted
    store
        .execute("DELETE FROM employees WHERE id = 11")
        .unwrap();

    // Then her period goes, Ada's stays, and the ID has no open-ended owner
    assert_eq!(periods(&store, 1), [period(10, None, Some(T))]);
    assert_eq!(open_owner(&store, 1), -1);

    // When Ada is deleted too, Then the ID is unmapped
    store
        .execute("DELETE FROM employees WHERE id = 10")
        .unwrap();
    assert_eq!(periods(&store, 1), []);
});

on_both_stores!(
    the_view_resolves_each_session_by_its_owner_at_its_start,
    |kind| {
        // Given agent ID 1001 handed on from Ada to Grace at T, and 1002 owned by Linus only from April
        let store = seeded(kind);
        store
        .execute(&format!(
            "BEGIN;
             UPDATE agent_id_owners SET valid_to = '{T}' WHERE external_agent_id = 1;
             INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from) VALUES (1, 11, '{T}');
             INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from) VALUES (2, 12, '2026-04-01 00:00:00');
             COMMIT;"
        ))
        .unwrap();

        // When sessions before, at and after T are stored
        store
        .execute(
            "INSERT INTO agent_sessions (external_system_id, external_agent_id, started_at, ended_at) VALUES
                 (1, 1, '2026-02-28 22:00:00', '2026-03-01 02:00:00'),
                 (1, 1, '2026-03-01 00:00:00', '2026-03-01 01:00:00'),
                 (1, 1, '2026-03-02 08:00:00', NULL),
                 (1, 2, '2026-03-31 23:59:59', NULL),
                 (1, 2, '2026-04-01 00:00:00', NULL),
                 (1, 3, '2026-03-02 08:00:00', NULL)",
        )
        .unwrap();

        // Then each session is its agent ID's owner's at its start: a session that runs over T stays Ada's
        let owners: Vec<(String, String, Option<i64>)> = store
            .view()
            .into_iter()
            .map(|v| {
                (
                    v.agent,
                    v.started_at.format("%m-%d %H:%M:%S").to_string(),
                    v.employee_id,
                )
            })
            .collect();
        let expected = |a: &str, s: &str, e: Option<i64>| (a.to_owned(), s.to_owned(), e);
        assert_eq!(
            owners,
            [
                expected("1001", "02-28 22:00:00", Some(10)),
                expected("1001", "03-01 00:00:00", Some(11)),
                expected("1001", "03-02 08:00:00", Some(11)),
                expected("1002", "03-31 23:59:59", None),
                expected("1002", "04-01 00:00:00", Some(12)),
                expected("1003", "03-02 08:00:00", None),
            ]
        );
    }
);

on_both_stores!(mapped_at_is_set_by_an_assignment_only, |kind| {
    // Given the code BREAK inserted on Present with no mapped_at, as a sync discovers it
    let store = seeded(kind);
    let mapped_at_is_set = |code: &str| {
        store.count(&format!(
            "SELECT COUNT(*) FROM external_activity_codes WHERE code = '{code}' AND mapped_at IS NOT NULL"
        )) == 1
    };
    let recent = match kind {
        StoreKind::Postgres => "mapped_at > now() - interval '1 minute'",
        StoreKind::Sqlite => "mapped_at > strftime('%Y-%m-%d %H:%M:%S', 'now', '-1 minute')",
    };
    assert!(
        !mapped_at_is_set("BREAK"),
        "a discovered code was never mapped"
    );

    // When a sync writes its last-seen time, Then it is still waiting on Present
    store
        .execute("UPDATE external_activity_codes SET last_seen_at = '2026-01-15 10:00:00' WHERE code = 'BREAK'")
        .unwrap();
    assert!(!mapped_at_is_set("BREAK"));

    // When a DBA assigns it with a plain UPDATE of activity_id, Then mapped_at is now
    store
        .execute("UPDATE external_activity_codes SET activity_id = 2 WHERE code = 'BREAK'")
        .unwrap();
    assert_eq!(
        store.count(&format!(
            "SELECT COUNT(*) FROM external_activity_codes WHERE code = 'BREAK' AND {recent}"
        )),
        1
    );

    // When an UPDATE sets mapped_at itself, Then that value is kept
    store
        .execute("UPDATE external_activity_codes SET activity_id = 1, mapped_at = '2026-01-01 12:00:00' WHERE code = 'BREAK'")
        .unwrap();
    assert_eq!(
        store.count("SELECT COUNT(*) FROM external_activity_codes WHERE code = 'BREAK' AND mapped_at = '2026-01-01 12:00:00'"),
        1
    );

    // When codes are inserted on Present, and on another activity (mapped ahead of their first import)
    store
        .execute(
            "INSERT INTO external_activity_codes (external_system_id, code) VALUES (1, 'NEW');
             INSERT INTO external_activity_codes (external_system_id, code, activity_id) VALUES (1, 'LUNCH', 2);",
        )
        .unwrap();
    // Then only the second is mapped
    assert!(!mapped_at_is_set("NEW"));
    assert_eq!(
        store.count(&format!(
            "SELECT COUNT(*) FROM external_activity_codes WHERE code = 'LUNCH' AND {recent}"
        )),
        1
    );
});

/// Reverts the applied migrations down to and including 2026-11-30-000003, as `diesel migration revert`
/// does.
fn revert_mapping_admin(store: &TestStore) {
    use diesel_migrations::MigrationHarness;
    let target = "20261130000003";
    let mut reverted = Vec::new();
    loop {
        let version = match &mut store.dba() {
            Dba::Postgres(c) => c
                .revert_last_migration(acdsync::store::POSTGRES_MIGRATIONS)
                .map(|v| v.to_string()),
            Dba::Sqlite(c) => c
                .revert_last_migration(acdsync::store::SQLITE_MIGRATIONS)
                .map(|v| v.to_string()),
        }
        .unwrap_or_else(|e| panic!("reverting after {reverted:?}: {e}"));
        let done = version.replace(['-', '_'], "") == target;
        reverted.push(version);
        if done {
            return;
        }
    }
}

on_both_stores!(migrating_down_and_up_keeps_the_mappings, |kind| {
    // Given 1001 owned by Ada from the beginning, 1002 handed on from Ada to Grace at T, 1003 unmapped, a
    // session of 1002, BREAK assigned to Break and PAUSE waiting on Present
    let store = seeded(kind);
    store
        .execute(&format!(
            "INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_to) VALUES (2, 10, '{T}');
             INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from) VALUES (2, 11, '{T}');
             INSERT INTO agent_sessions (external_system_id, external_agent_id, started_at) VALUES (1, 2, '2026-04-01 08:00:00');
             UPDATE external_activity_codes SET activity_id = 2 WHERE code = 'BREAK';
             INSERT INTO external_activity_codes (external_system_id, code) VALUES (1, 'PAUSE');
             UPDATE employees SET external_ref = 'E-10' WHERE id = 10;"
        ))
        .unwrap();

    // When the migration is reverted
    revert_mapping_admin(&store);

    // Then each ID keeps its current owner as "the" owner, and the codes their activity
    assert_eq!(
        (
            open_owner(&store, 1),
            open_owner(&store, 2),
            open_owner(&store, 3)
        ),
        (10, 11, -1)
    );
    assert_eq!(
        store.count("SELECT COUNT(*) FROM external_activity_codes WHERE (code = 'BREAK' AND activity_id = 2) OR (code = 'PAUSE' AND activity_id = 1)"),
        2
    );
    assert_eq!(
        store
            .view()
            .iter()
            .map(|v| v.employee_id)
            .collect::<Vec<_>>(),
        [Some(11)],
        "the old view reads external_agent_ids.employee_id"
    );
    assert!(store.execute("SELECT 1 FROM agent_id_owners").is_err());

    // When it is applied again
    let mut s = store.open();
    let applied = s.migrate().unwrap();
    assert!(applied.iter().any(|m| m == "20261130000003"), "{applied:?}");
    s.check_schema().unwrap();

    // Then each mapping is one period from the beginning, BREAK is mapped and PAUSE still waits on Present
    assert_eq!(periods(&store, 1), [period(10, None, None)]);
    assert_eq!(periods(&store, 2), [period(11, None, None)]);
    assert_eq!(periods(&store, 3), []);
    assert_eq!(
        store.count("SELECT COUNT(*) FROM external_activity_codes WHERE code = 'BREAK' AND mapped_at IS NOT NULL"),
        1
    );
    assert_eq!(
        store.count("SELECT COUNT(*) FROM external_activity_codes WHERE code = 'PAUSE' AND mapped_at IS NULL"),
        1
    );
    assert_eq!(
        store
            .view()
            .iter()
            .map(|v| v.employee_id)
            .collect::<Vec<_>>(),
        [Some(11)]
    );
});

#[test]
fn sqlite_ownership_rules_hold_in_a_client_that_leaves_foreign_keys_off() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;

    // Given a migrated SQLite WFM database opened the way the sqlite3 shell opens it (no PRAGMA)
    let store = seeded(StoreKind::Sqlite);
    let path = store.url.strip_prefix("sqlite://").unwrap().to_owned();
    let mut plain = diesel::sqlite::SqliteConnection::establish(&path).unwrap();
    plain.batch_execute("PRAGMA foreign_keys = OFF").unwrap();
    let refuse = |c: &mut diesel::sqlite::SqliteConnection, sql: &str, needle: &str| {
        let err = c.batch_execute(sql).expect_err(sql).to_string();
        assert!(
            err.contains(needle),
            "{sql}\nwas refused with {err:?}, expected {needle:?}"
        );
    };

    // Then a period must name an existing agent ID and employee, and the single-owner rule holds
    refuse(
        &mut plain,
        "INSERT INTO agent_id_owners (external_agent_id, employee_id) VALUES (99, 10)",
        "agent_id_owners_agent_fk",
    );
    refuse(
        &mut plain,
        "INSERT INTO agent_id_owners (external_agent_id, employee_id) VALUES (2, 99)",
        "agent_id_owners_employee_fk",
    );
    refuse(
        &mut plain,
        "UPDATE agent_id_owners SET employee_id = 99",
        "agent_id_owners_employee_fk",
    );
    refuse(
        &mut plain,
        "INSERT INTO agent_id_owners (external_agent_id, employee_id) VALUES (1, 11)",
        "agent_id_owners_one_owner_at_a_time",
    );
    // And deleting an employee or an agent ID deletes their periods
    plain
        .batch_execute(&format!(
            "UPDATE agent_id_owners SET valid_to = '{T}' WHERE external_agent_id = 1;
             INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from) VALUES (1, 11, '{T}');
             INSERT INTO agent_id_owners (external_agent_id, employee_id) VALUES (3, 12);
             DELETE FROM employees WHERE id = 11;
             DELETE FROM external_agent_ids WHERE id = 3;"
        ))
        .unwrap();
    assert_eq!(periods(&store, 1), [period(10, None, Some(T))]);
    assert_eq!(open_owner(&store, 1), -1);
    assert_eq!(store.count("SELECT COUNT(*) FROM agent_id_owners"), 1);
    // And a period's bounds have one spelling only, so that they compare as instants
    refuse(
        &mut plain,
        "INSERT INTO agent_id_owners (external_agent_id, employee_id, valid_from) VALUES (2, 12, '2026-03-01T00:00:00')",
        "agent_id_owners_time_format",
    );
}

on_both_stores!(the_dba_mapping_queries_run_and_answer, |kind| {
    // Given a synced day in Paris with two agent IDs and two new codes
    let store = TestStore::new(kind);
    let source = Source::new(SourceKind::Sqlite);
    source.set_rows(&[
        row(
            "1001",
            Some("BREAK"),
            "2026-01-15 10:00:00",
            Some("2026-01-15 10:15:00"),
        ),
        row(
            "1001",
            None,
            "2026-01-16 00:30:00",
            Some("2026-01-16 02:30:00"),
        ),
        row("1002", Some("LUNCH"), "2026-01-15 12:00:00", None),
    ]);
    let system = source.system(
        "demo-acd",
        "Europe/Paris",
        acdsync::config::WindowParameters::Literal,
    );
    store.sync(&system, day("2026-01-15")).unwrap();
    store.sync(&system, day("2026-01-16")).unwrap();
    let file = |name: &str| {
        let flavour = format!("sql/dba/{}.sqlite.sql", name.trim_end_matches(".sql"));
        match kind {
            StoreKind::Sqlite if std::path::Path::new(&flavour).exists() => {
                std::fs::read_to_string(flavour).unwrap()
            }
            _ => std::fs::read_to_string(format!("sql/dba/{name}")).unwrap(),
        }
    };
    let count = |name: &str| {
        store.count(&format!(
            "SELECT COUNT(*) FROM ({}) AS q",
            file(name).trim().trim_end_matches(';')
        ))
    };
    assert_eq!(count("unmapped_agent_ids.sql"), 2);
    assert_eq!(count("codes_on_present.sql"), 2);

    // When a DBA maps 1001 to Ada (map.sql), then hands it on to Grace from 16 January, local midnight
    store.execute(&file("map.sql")).unwrap();
    store.execute(&file("hand_on_agent_id.sql")).unwrap();

    // Then the session of the 15th stays Ada's and the one after midnight (23:30 UTC) is Grace's
    let ada = store.count("SELECT id FROM employees WHERE name = 'Ada Lovelace'");
    let grace = store.count("SELECT id FROM employees WHERE name = 'Grace Hopper'");
    assert_eq!(
        store
            .view()
            .iter()
            .filter(|v| v.agent == "1001")
            .map(|v| v.employee_id)
            .collect::<Vec<_>>(),
        [Some(ada), Some(grace)]
    );
    // And each query answers what its comment promises
    assert_eq!(count("agent_id_history.sql"), 2, "two periods of 1001");
    assert_eq!(
        store.count(&format!(
            "SELECT COUNT(*) FROM ({}) AS q WHERE employee = 'Grace Hopper' AND sessions = 1",
            file("agent_id_history.sql").trim().trim_end_matches(';')
        )),
        1
    );
    assert_eq!(
        count("mapping_per_employee.sql"),
        2,
        "Ada and Grace, one period each"
    );
    assert_eq!(
        count("mapping_per_activity.sql"),
        2,
        "Present with LUNCH, Break with BREAK"
    );
    assert_eq!(count("unmapped_agent_ids.sql"), 1, "1002");
    assert_eq!(count("codes_on_present.sql"), 1, "LUNCH");
    // Sessions per local day (PostgreSQL: the 15th and the 16th in Paris) or UTC day (SQLite: both the 15th)
    let days = match kind {
        StoreKind::Postgres => 2,
        StoreKind::Sqlite => 1,
    };
    assert_eq!(count("sessions_per_day.sql"), days);
});
