//! Values the WFM database cannot hold (issue 14): a NUL byte in an agent ID or a code, which MariaDB keeps
//! in a VARCHAR and PostgreSQL cannot store in text, rejects its row (row number, field, the value written
//! with `\0`); the other rows are imported, on both stores, in the sessions and the events shapes. Nothing is
//! cut at the NUL.

use acdsync::config::{ExternalSystemConfig, WindowParameters};
use acdsync::source::query::{QueryKind, SourceQuery};

use crate::common::*;
use crate::on_both_stores;

on_both_stores!(a_nul_byte_in_an_id_or_a_code_rejects_only_its_row, |kind| {
    // Given a MariaDB source whose rows 2 and 3 hold a NUL in the agent ID and in the code
    let source = Source::new(SourceKind::MariaDb);
    source.execute(
        "INSERT INTO acd_agent_states VALUES \
           ('90', NULL, '2026-01-15 08:00:00', '2026-01-15 09:00:00'), \
           (CONCAT('90', CHAR(0), '01'), NULL, '2026-01-15 08:30:00', NULL), \
           ('91', CONCAT('BR', CHAR(0)), '2026-01-15 08:45:00', '2026-01-15 09:00:00'), \
           ('92', 'LUNCH', '2026-01-15 12:00:00', '2026-01-15 12:30:00')",
    );
    let system = source.system("maria", "Europe/Paris", WindowParameters::Bound);
    let store = TestStore::new(kind);

    // When the day is synced
    let r = store.sync(&system, day("2026-01-15")).unwrap();

    // Then the two rows are rejected, naming the row and the field, and the others are imported as they are
    assert_eq!((r.counts.inserted, r.counts.rejected), (2, 2));
    let rejected = store.rejected_reasons();
    let summary: Vec<(i64, String)> = rejected.iter().map(|r| (r.0, r.5.clone())).collect();
    assert_eq!(summary.len(), 2, "{rejected:?}");
    assert!(
        summary[0].0 == 2 && summary[0].1.contains("agent_id holds a NUL byte"),
        "{rejected:?}"
    );
    assert!(
        summary[1].0 == 3 && summary[1].1.contains("activity_code holds a NUL byte"),
        "{rejected:?}"
    );
    assert_eq!(
        store.count(r"SELECT COUNT(*) FROM rejected_rows WHERE agent_id = '90\001'"),
        1,
        "the value is kept, its NUL written \\0"
    );
    let agents: Vec<String> = store.view().into_iter().map(|v| v.agent).collect();
    assert_eq!(agents, ["90", "92"], "no ID cut at the NUL");
});

#[test]
fn a_nul_byte_in_an_event_rejects_only_that_event() {
    // Given a MariaDB event table with a NUL in one event's agent ID
    let source = Source::new(SourceKind::MariaDb);
    source.execute("CREATE TABLE acd_agent_events (id bigint PRIMARY KEY, agent_id varchar(80) NOT NULL, event_time datetime(6) NOT NULL, event varchar(16) NOT NULL, activity_code varchar(100), scope varchar(100))");
    source.execute(
        "INSERT INTO acd_agent_events VALUES \
           (1, 'a', '2026-01-15 08:00:00', 'login', NULL, NULL), \
           (2, CONCAT('b', CHAR(0)), '2026-01-15 08:10:00', 'login', NULL, NULL), \
           (3, 'a', '2026-01-15 09:00:00', 'logout', NULL, NULL)",
    );
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/sources/generic_events.sql");
    let query = SourceQuery::load(&path, QueryKind::Events).unwrap();
    let system = ExternalSystemConfig::new(
        "ev",
        "Europe/Paris",
        query,
        &source.connection_string,
        WindowParameters::Bound,
    )
    .unwrap();
    let store = TestStore::new(StoreKind::Postgres);

    // When the day is synced
    let r = store.sync(&system, day("2026-01-15")).unwrap();

    // Then agent a's session is imported and b's login is rejected with its row and the reason
    assert_eq!((r.counts.inserted, r.counts.rejected), (1, 1));
    let rejected = store.rejected_reasons();
    assert!(
        rejected[0].0 == 2 && rejected[0].5.contains("agent_id holds a NUL byte"),
        "{rejected:?}"
    );
}

on_both_stores!(
    a_value_longer_than_its_buffer_rejects_its_row_by_number,
    |kind| {
        // Given 200 sessions whose row 157 (in start order) has an agent ID of 300 bytes, read with
        // max_text_bytes = 100 and batches of 64 rows (the long value is in the third batch)
        let source = Source::new(SourceKind::Sqlite);
        let mut rows = Vec::new();
        for i in 0..200u32 {
            let start = format!("2026-01-15 {:02}:{:02}:00", 6 + i / 60, i % 60);
            let end = format!("2026-01-15 {:02}:{:02}:30", 6 + i / 60, i % 60);
            let agent = if i == 156 {
                "L".repeat(300)
            } else {
                format!("a{i}")
            };
            rows.push((agent, start, end));
        }
        let rows: Vec<Row> = rows
            .iter()
            // (`row` takes static text: the test's few strings live until it ends.)
            .map(|(a, s, e)| {
                let leak = |t: &String| -> &'static str { Box::leak(t.clone().into_boxed_str()) };
                row(leak(a), None, leak(s), Some(leak(e)))
            })
            .collect();
        source.set_rows(&rows);
        let mut system = source.system("long", "UTC", WindowParameters::Literal);
        system.max_text_bytes = 100;
        system.batch_rows = 64;
        let store = TestStore::new(kind);

        // When the day is synced
        let r = store.sync(&system, day("2026-01-15")).unwrap();

        // Then that row is rejected, named by its number and field, and the 199 others are imported; no ID is
        // stored cut
        assert_eq!((r.counts.inserted, r.counts.rejected), (199, 1));
        let rejected = store.rejected_reasons();
        assert_eq!(rejected[0].0, 157, "{rejected:?}");
        assert!(
            rejected[0]
                .5
                .contains("agent_id is 300 bytes, longer than its fetch buffer of 100 bytes"),
            "{rejected:?}"
        );
        assert_eq!(
            store.count("SELECT COUNT(*) FROM external_agent_ids WHERE external_id LIKE 'LLL%'"),
            0
        );
    }
);
