//! The mass-delete guard (issue 16): a full sync that would delete most of its window's stored sessions, or
//! that reads nothing for a window holding sessions, is refused: nothing written for that system, its run
//! `refused` with the numbers, exit 66, one line saying what to check and how to override; the other systems
//! still synced. A normal correction passes; `--allow-mass-delete` lets it through and its run row says so.

use crate::common::*;
use crate::on_both_stores;

/// Two systems, "paris" and "lyon", each reading a SQLite source of its own, into one store.
struct Site(CliSite);

impl std::ops::Deref for Site {
    type Target = CliSite;
    fn deref(&self) -> &CliSite {
        &self.0
    }
}

/// `n` sessions of agent A<i> on 2026-01-15, one a minute from 06:00, each 30 s long.
fn fill(source: &Source, n: u32) {
    source.execute("DELETE FROM acd_agent_states");
    if n > 0 {
        source.execute(&format!(
            "INSERT INTO acd_agent_states (agent_id, activity_code, started_at, ended_at) \
             WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < {}) \
             SELECT 'A' || (n % 7), NULL, printf('2026-01-15 %02d:%02d:00', 6 + n / 60, n % 60), \
                    printf('2026-01-15 %02d:%02d:30', 6 + n / 60, n % 60) FROM i",
            n - 1
        ));
    }
}

impl Site {
    fn new(kind: StoreKind, extra: &str) -> Site {
        Site(CliSite::new(kind, &[("paris", extra), ("lyon", extra)]))
    }

    fn paris(&self) -> &Source {
        self.source("paris")
    }

    fn lyon(&self) -> &Source {
        self.source("lyon")
    }

    fn sync(&self, extra: &[&str]) -> CliOut {
        let mut args = vec!["sync", "--date", "2026-01-15"];
        args.extend(extra);
        self.run(&args)
    }

    fn sessions(&self, system: &str) -> i64 {
        self.store.count(&format!(
            "SELECT COUNT(*) FROM agent_sessions s JOIN external_systems e ON e.id = s.external_system_id WHERE e.name = '{system}'"
        ))
    }

    /// Paris's stored sessions: (id, start and end as text).
    fn paris_sessions(&self) -> Vec<(i64, String)> {
        let ids = self.store.session_ids();
        ids.into_iter()
            .filter_map(|id| {
                let system = self.store.text(&format!(
                    "SELECT e.name AS t FROM agent_sessions s JOIN external_systems e ON e.id = s.external_system_id WHERE s.id = {id}"
                ));
                (system == "paris").then(|| {
                    let times = self.store.text(&format!(
                        "SELECT CAST(started_at AS TEXT) || ' ' || COALESCE(CAST(ended_at AS TEXT), '') AS t FROM agent_sessions WHERE id = {id}"
                    ));
                    (id, times)
                })
            })
            .collect()
    }

    /// The status, error and override of the system's last run.
    fn last_run(&self, system: &str) -> (String, String, String) {
        let q = |column: &str| {
            let sql = format!(
                "SELECT COALESCE({column}, '') AS t FROM import_runs r JOIN external_systems e ON e.id = r.external_system_id \
                 WHERE e.name = '{system}' ORDER BY r.id DESC LIMIT 1"
            );
            self.store.text(&sql)
        };
        (q("status"), q("error"), q("mass_delete_override"))
    }

    /// Both systems synced once: paris with `n` sessions, lyon with 30.
    fn synced(kind: StoreKind, n: u32, extra: &str) -> Site {
        let site = Site::new(kind, extra);
        fill(site.paris(), n);
        fill(site.lyon(), 30);
        let out = site.sync(&[]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(site.sessions("paris"), i64::from(n));
        site
    }
}

/// The refusal a user sees: exit 66, the one line on stderr, nothing written for paris, its run `refused`
/// with `numbers` in it, and lyon synced with its change.
fn assert_refused(site: &Site, out: &CliOut, before: &[(i64, String)], numbers: &str) {
    assert_eq!(out.code, Some(66), "{}{}", out.stdout, out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("refused"))
        .unwrap_or_else(|| panic!("no refusal line: {}", out.stderr));
    assert!(
        line.contains("system \"paris\"")
            && line.contains(numbers)
            && line.contains("nothing was written")
            && line.contains("--allow-mass-delete"),
        "{line}"
    );
    assert_eq!(site.paris_sessions(), before, "paris's sessions changed");
    let (status, error, _) = site.last_run("paris");
    assert_eq!(status, "refused");
    assert!(error.contains(numbers), "{error}");
    assert_eq!(site.last_run("lyon").0, "succeeded");
}

on_both_stores!(an_empty_source_is_refused_and_writes_nothing, |kind| {
    // Given paris synced with 5 sessions (under 20: only an empty source trips the guard) and lyon with 30
    let site = Site::synced(kind, 5, "");
    let before = site.paris_sessions();
    // When paris's source returns nothing, and lyon's has one session more
    fill(site.paris(), 0);
    fill(site.lyon(), 31);
    let out = site.sync(&[]);
    // Then paris is refused and keeps its 5 sessions; lyon is synced
    assert_refused(
        &site,
        &out,
        &before,
        "the source returned no row for 2026-01-15, which holds 5 stored session(s)",
    );
    assert_eq!(site.sessions("paris"), 5);
    assert_eq!(site.sessions("lyon"), 31);
});

on_both_stores!(
    a_source_that_lost_most_rows_is_refused_until_overridden,
    |kind| {
        // Given paris synced with 100 sessions
        let site = Site::synced(kind, 100, "");
        let before = site.paris_sessions();
        // When its source keeps only the first 10
        site.paris()
            .execute("DELETE FROM acd_agent_states WHERE started_at >= '2026-01-15 06:10:00'");
        let out = site.sync(&[]);
        // Then the sync is refused with the numbers, and nothing of paris changed
        assert_refused(
            &site,
            &out,
            &before,
            "would delete 90 of the 100 sessions stored for 2026-01-15",
        );
        assert_eq!(site.sessions("paris"), 100);

        // And with --allow-mass-delete it goes through, its run row saying what it let through
        let out = site.sync(&["--allow-mass-delete"]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(site.sessions("paris"), 10);
        let (status, _, overridden) = site.last_run("paris");
        assert_eq!(status, "succeeded");
        assert!(
            overridden.starts_with("allowed: this sync would delete 90 of the 100 sessions"),
            "{overridden}"
        );
        // And a run the guard had no reason to stop records no override
        let out = site.sync(&["--allow-mass-delete"]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(site.last_run("paris").2, "");
    }
);

on_both_stores!(a_normal_correction_passes, |kind| {
    // Given paris synced with 100 sessions
    let site = Site::synced(kind, 100, "");
    // When the source corrects itself: 5 sessions gone, 10 ends changed, 5 new
    site.paris()
        .execute("DELETE FROM acd_agent_states WHERE started_at < '2026-01-15 06:05:00'");
    site.paris().execute("UPDATE acd_agent_states SET ended_at = replace(ended_at, ':30', ':45') WHERE started_at >= '2026-01-15 07:00:00' AND started_at < '2026-01-15 07:10:00'");
    site.paris().execute("INSERT INTO acd_agent_states VALUES ('B1', NULL, '2026-01-15 12:00:00', '2026-01-15 12:01:00'), ('B1', NULL, '2026-01-15 12:02:00', '2026-01-15 12:03:00'), ('B1', NULL, '2026-01-15 12:04:00', '2026-01-15 12:05:00'), ('B1', NULL, '2026-01-15 12:06:00', '2026-01-15 12:07:00'), ('B1', NULL, '2026-01-15 12:08:00', '2026-01-15 12:09:00')");
    let out = site.sync(&[]);
    // Then it is applied
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(site.sessions("paris"), 100);
    assert_eq!(
        site.store.count("SELECT COUNT(*) FROM import_runs WHERE status = 'succeeded' AND sessions_deleted = 5 AND sessions_updated = 10 AND sessions_inserted = 5"),
        1
    );
});

on_both_stores!(
    the_system_setting_overrides_and_the_share_is_configurable,
    |kind| {
        // Given systems that allow mass deletes in their config
        let site = Site::synced(kind, 40, "allow_mass_delete = true");
        fill(site.paris(), 0);
        let out = site.sync(&[]);
        // Then an empty source empties the window, and the run row says it was allowed
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(site.sessions("paris"), 0);
        assert!(site
            .last_run("paris")
            .2
            .starts_with("allowed: the source returned no row"));

        // And with mass_delete_share = 0.1, deleting 5 of 40 (12.5 %) is refused
        let site = Site::synced(kind, 40, "mass_delete_share = 0.1");
        let before = site.paris_sessions();
        site.paris()
            .execute("DELETE FROM acd_agent_states WHERE started_at < '2026-01-15 06:05:00'");
        let out = site.sync(&[]);
        assert_refused(&site, &out, &before, "would delete 5 of the 40 sessions stored for 2026-01-15 (more than mass_delete_share = 0.1");
    }
);

#[test]
fn in_incremental_mode_the_guard_stops_the_full_sync_not_the_changes_runs() {
    // Given an incremental system (its change key SQLite's rowid) with 30 sessions of today synced in full
    let site = Site::new(StoreKind::Sqlite, "");
    let today = paris_today();
    site.make_incremental("paris");
    site.paris().execute(&format!(
        "INSERT INTO acd_agent_states (agent_id, activity_code, started_at, ended_at) \
         WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < 29) \
         SELECT 'A' || n, NULL, printf('{today} 00:%02d:00', n), printf('{today} 00:%02d:30', n) FROM i"
    ));
    let first = site.run(&["sync", "--system", "paris"]);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert_eq!(site.sessions("paris"), 30);

    // When the source loses 25 of them, Then a changes run (which never deletes) passes
    site.paris()
        .execute("DELETE FROM acd_agent_states WHERE rowid > 5");
    let changes = site.run(&["sync", "--system", "paris"]);
    assert_eq!(changes.code, Some(0), "{}", changes.stderr);
    assert_eq!(site.sessions("paris"), 30);
    // And the full sync of the day is refused, with the numbers, and deletes nothing
    let full = site.run(&["sync", "--system", "paris", "--full"]);
    assert_eq!(full.code, Some(66), "{}{}", full.stdout, full.stderr);
    assert!(
        full.stderr
            .contains("would delete 25 of the 30 sessions stored for"),
        "{}",
        full.stderr
    );
    assert_eq!(site.sessions("paris"), 30);
    assert_eq!(site.last_run("paris").0, "refused");
}
