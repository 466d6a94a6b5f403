//! `sync --dry-run` (issue 16): it does everything up to the write and writes nothing at all (the store's
//! dump is the same byte for byte: no session, no agent ID or code, no run row, no sequence advanced), its
//! diff is what the real sync then does, and it says when the mass-delete guard would refuse.

use std::collections::BTreeSet;
use std::process::Command;

use chrono::NaiveDateTime;

use crate::common::*;
use crate::on_both_stores;

/// What a dry run needs of a site: the binary's outcome as a tuple, and a dump of the whole store.
trait DrySite {
    fn run3(&self, args: &[&str]) -> (Option<i32>, String, String);
    fn dump(&self) -> Vec<u8>;
}

impl DrySite for CliSite {
    /// The exit code, standard output and standard error of `acdsync ARGS`.
    fn run3(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = self.run(args);
        (out.code, out.stdout, out.stderr)
    }

    /// The whole store, as bytes a difference shows in: PostgreSQL's `pg_dump` (data and sequences),
    /// SQLite's database file and its `.dump`.
    fn dump(&self) -> Vec<u8> {
        match self.store.url.strip_prefix("sqlite://") {
            Some(path) => {
                let mut bytes = std::fs::read(path).unwrap();
                let text = Command::new("sqlite3")
                    .arg(path)
                    .arg(".dump")
                    .output()
                    .unwrap();
                assert!(text.status.success());
                bytes.extend(text.stdout);
                bytes
            }
            None => {
                let out = Command::new("pg_dump")
                    .args(["--no-owner", "--no-comments"])
                    .arg(&self.store.url)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                // (pg_dump 15.14 and later frame its output with a random \restrict key.)
                String::from_utf8(out.stdout)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes()
            }
        }
    }
}

/// A session as (agent, code, start, end), UTC.
type S = (String, Option<String>, NaiveDateTime, Option<NaiveDateTime>);

fn utc(v: &serde_json::Value) -> Option<NaiveDateTime> {
    v.as_str()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap().naive_utc())
}

fn session(v: &serde_json::Value) -> S {
    (
        v["agent_id"].as_str().unwrap().to_owned(),
        v["activity_code"].as_str().map(str::to_owned),
        utc(&v["started_at"]).unwrap(),
        utc(&v["ended_at"]),
    )
}

fn stored(store: &TestStore) -> BTreeSet<S> {
    store
        .view()
        .into_iter()
        .map(|r| (r.agent, r.code, r.started_at, r.ended_at))
        .collect()
}

on_both_stores!(
    a_dry_run_writes_nothing_and_its_diff_is_what_the_sync_does,
    |kind| {
        // Given a day synced once, then changed in the source: a session gone, two ends moved, a code changed,
        // and sessions of a new agent with a new code
        let site = CliSite::paris_only(kind);
        site.paris().set_rows(&[
            row(
                "1001",
                None,
                "2026-01-15 08:00:00",
                Some("2026-01-15 09:00:00"),
            ),
            row(
                "1001",
                Some("BRK"),
                "2026-01-15 09:00:00",
                Some("2026-01-15 09:15:00"),
            ),
            row(
                "1002",
                None,
                "2026-01-15 08:30:00",
                Some("2026-01-15 10:00:00"),
            ),
            row(
                "1003",
                None,
                "2026-01-15 07:00:00",
                Some("2026-01-15 07:30:00"),
            ),
            row("1003", None, "2026-01-15 11:00:00", None),
        ]);
        let (code, _, err) = site.run3(&["sync", "--date", "2026-01-15"]);
        assert_eq!(code, Some(0), "{err}");
        site.paris().set_rows(&[
            row(
                "1001",
                None,
                "2026-01-15 08:00:00",
                Some("2026-01-15 09:05:00"),
            ),
            row(
                "1001",
                Some("LUNCH"),
                "2026-01-15 09:00:00",
                Some("2026-01-15 09:15:00"),
            ),
            row(
                "1002",
                None,
                "2026-01-15 08:30:00",
                Some("2026-01-15 10:00:00"),
            ),
            row(
                "1003",
                None,
                "2026-01-15 11:00:00",
                Some("2026-01-15 12:00:00"),
            ),
            row(
                "2001",
                Some("TRAIN"),
                "2026-01-15 13:00:00",
                Some("2026-01-15 14:00:00"),
            ),
        ]);
        let before = site.dump();
        let stored_before = stored(&site.store);

        // When a dry run runs, as text and as JSON, for the day and as a range
        let (code, text, err) = site.run3(&["sync", "--date", "2026-01-15", "--dry-run"]);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            text.contains("dry run, nothing written: system \"paris\", 2026-01-15 (full)"),
            "{text}"
        );
        assert!(
            text.contains("would insert 1, update 3, delete 1; unchanged 1"),
            "{text}"
        );
        assert!(
            text.contains("new agent IDs it would register (1): 2001"),
            "{text}"
        );
        assert!(
            text.contains("new activity codes it would register (2): LUNCH, TRAIN"),
            "{text}"
        );
        let (code, json, err) = site.run3(&[
            "sync",
            "--from",
            "2026-01-15",
            "--to",
            "2026-01-15",
            "--dry-run",
            "--format",
            "json",
        ]);
        assert_eq!(code, Some(0), "{err}");
        let (code, csv, err) = site.run3(&[
            "sync",
            "--date",
            "2026-01-15",
            "--dry-run",
            "--format",
            "csv",
        ]);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            csv.starts_with("change,system,agent_id,activity_code,started_at,ended_at\n"),
            "{csv}"
        );
        assert!(
            csv.contains(
                "delete,paris,1003,,2026-01-15T07:00:00+01:00,2026-01-15T07:30:00+01:00\n"
            ),
            "{csv}"
        );

        // Then the store is the same, byte for byte
        assert!(site.dump() == before, "a dry run changed the store");

        // And the real sync then does exactly what the dry run said
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        let r = &report[0];
        assert_eq!(r["system"], "paris");
        assert_eq!(r["counts"]["insert"], 1);
        let (code, _, err) = site.run3(&["sync", "--date", "2026-01-15"]);
        assert_eq!(code, Some(0), "{err}");
        let stored_after = stored(&site.store);
        let inserted: BTreeSet<S> = r["insert"]
            .as_array()
            .unwrap()
            .iter()
            .map(session)
            .collect();
        let deleted: BTreeSet<S> = r["delete"]
            .as_array()
            .unwrap()
            .iter()
            .map(session)
            .collect();
        let updated: BTreeSet<(S, S)> = r["update"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (session(&u["before"]), session(&u["after"])))
            .collect();
        let key = |s: &S| (s.0.clone(), s.2);
        let gone: BTreeSet<S> = stored_before
            .iter()
            .filter(|b| !stored_after.iter().any(|a| key(a) == key(b)))
            .cloned()
            .collect();
        let new: BTreeSet<S> = stored_after
            .iter()
            .filter(|a| !stored_before.iter().any(|b| key(a) == key(b)))
            .cloned()
            .collect();
        let changed: BTreeSet<(S, S)> = stored_before
            .iter()
            .filter_map(|b| {
                let a = stored_after.iter().find(|a| key(a) == key(b) && *a != b)?;
                Some((b.clone(), a.clone()))
            })
            .collect();
        assert_eq!(inserted, new);
        assert_eq!(deleted, gone);
        assert_eq!(updated, changed);
        assert_eq!(r["new_agent_ids"], serde_json::json!(["2001"]));
        assert_eq!(
            r["new_activity_codes"],
            serde_json::json!(["LUNCH", "TRAIN"])
        );
    }
);

on_both_stores!(a_dry_run_says_when_the_guard_would_refuse, |kind| {
    // Given a day synced once, then an empty source
    let site = CliSite::paris_only(kind);
    site.paris().set_rows(&[
        row(
            "1001",
            None,
            "2026-01-15 08:00:00",
            Some("2026-01-15 09:00:00"),
        ),
        row(
            "1002",
            None,
            "2026-01-15 08:30:00",
            Some("2026-01-15 10:00:00"),
        ),
    ]);
    let (code, _, err) = site.run3(&["sync", "--date", "2026-01-15"]);
    assert_eq!(code, Some(0), "{err}");
    site.paris().set_rows(&[]);
    let before = site.dump();

    // When a dry run runs, Then it says the guard would refuse (exit 66) and writes nothing
    let (code, text, err) = site.run3(&["sync", "--date", "2026-01-15", "--dry-run"]);
    assert_eq!(code, Some(66), "{text}{err}");
    assert!(
        text.contains("the mass-delete guard would refuse this sync"),
        "{text}"
    );
    assert!(
        text.contains("would insert 0, update 0, delete 2"),
        "{text}"
    );
    assert!(site.dump() == before, "a dry run changed the store");
});

#[test]
fn a_dry_run_of_a_system_the_store_has_never_seen_registers_nothing() {
    // Given a migrated store that has never synced "paris"
    let site = CliSite::paris_only(StoreKind::Sqlite);
    site.paris().set_rows(&[row(
        "1001",
        Some("BRK"),
        "2026-01-15 08:00:00",
        Some("2026-01-15 09:00:00"),
    )]);
    let before = site.dump();
    // When a dry run runs, Then it would insert the session and register its names, and writes nothing
    let (code, text, err) = site.run3(&["sync", "--date", "2026-01-15", "--dry-run"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        text.contains("would insert 1, update 0, delete 0"),
        "{text}"
    );
    assert!(site.dump() == before, "a dry run changed the store");
    assert_eq!(site.store.count("SELECT COUNT(*) FROM external_systems"), 0);
}

#[test]
fn a_dry_run_in_incremental_mode_reads_the_changes_and_moves_no_watermark() {
    // Given an incremental system (its change key SQLite's rowid) whose first sync of today set a watermark
    let site = CliSite::paris_only(StoreKind::Sqlite);
    let today = paris_today();
    site.make_incremental("paris");
    site.paris().execute(&format!(
        "INSERT INTO acd_agent_states VALUES ('1001', NULL, '{today} 00:00:10', '{today} 00:00:20')"
    ));
    let (code, _, err) = site.run3(&["sync"]);
    assert_eq!(code, Some(0), "{err}");
    let watermark = || {
        site.store
            .text("SELECT COALESCE(watermark, '') AS t FROM external_systems")
    };
    assert_eq!(watermark(), "1");
    site.paris().execute(&format!(
        "INSERT INTO acd_agent_states VALUES ('1002', NULL, '{today} 00:00:30', NULL)"
    ));
    let before = site.dump();

    // When a dry run of today runs, Then it reads by changes, would insert the new session, and moves nothing
    let (code, text, err) = site.run3(&["sync", "--dry-run"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        text.contains(&format!("system \"paris\", {today} (changes)")),
        "{text}"
    );
    assert!(
        text.contains("would insert 1, update 0, delete 0"),
        "{text}"
    );
    assert!(site.dump() == before, "a dry run changed the store");
    assert_eq!(watermark(), "1");
}

#[test]
fn a_dry_run_goes_on_after_a_system_that_fails() {
    // Given two systems, the first of which ("lyon") has lost its source table
    let site = CliSite::new(StoreKind::Sqlite, &[("lyon", ""), ("paris", "")]);
    site.source("lyon").execute("DROP TABLE acd_agent_states");
    site.source("paris").set_rows(&[row(
        "1001",
        None,
        "2026-01-15 08:00:00",
        Some("2026-01-15 09:00:00"),
    )]);
    // When a dry run runs, Then lyon's failure is reported, paris's dry run is printed, and it exits 1
    let out = site.run(&["sync", "--date", "2026-01-15", "--dry-run"]);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("system \"lyon\": dry run failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("system \"paris\", 2026-01-15 (full)"),
        "{}",
        out.stdout
    );
}
