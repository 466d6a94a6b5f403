//! The property of issue 12: random chains of agents' states around a change of the clocks, built from
//! real instants and written as local wall time, synced day by day forward, backward, as one range (with
//! batch sizes 10,000, 3 and 1) and by changes, end in the same store; re-runs write nothing; no valid row
//! is rejected; and where a wall time happens once, the stored instant is the real one.
//!
//! Zones whose clocks change at 01:00 UTC, at 02:00 local, at midnight and by 30 minutes. A short run is part
//! of the test command; the long run (documented in docs/time.md) sets the cases per zone:
//!
//!     ACDSYNC_DST_CASES=1000 cargo test --release --test integration dst_orders
//!
//! (`ACDSYNC_DST_ZONE=Asia/Beirut` runs one zone, `ACDSYNC_DST_SEED=N` starts at another seed.)

use acdsync::sync::Days;
use chrono::{Duration, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use crate::common::*;

/// A state as it happened (UTC) and as the source writes it (wall time).
#[derive(Clone, Debug)]
struct State {
    agent: String,
    code: Option<&'static str>,
    start: NaiveDateTime,
    end: Option<NaiveDateTime>,
}

/// One to three agents, each a chain of one to eight states (with gaps now and then, the last one open or
/// lasting up to 30 hours now and then) around `at`; and now and then a second row at the start of a state
/// that happens once, shorter, with the code `TIE` (rejected: the longer is kept).
fn chains(rng: &mut Lcg, tz: Tz, at: NaiveDateTime) -> (Vec<State>, Vec<State>) {
    let codes = [None, Some("BREAK"), Some("CALL"), Some("ACW")];
    let (mut out, mut ties) = (Vec::new(), Vec::new());
    for agent in 0..=rng.below(3) {
        let mut t = at - Duration::minutes(180) + Duration::seconds(rng.below(4 * 3600) as i64);
        let n = 1 + rng.below(8);
        for k in 0..n {
            let last = k + 1 == n;
            let long = last && rng.below(8) == 0;
            let seconds = match long {
                true => 20 * 3600 + rng.below(10 * 3600),
                false => 60 + rng.below(90 * 60),
            } as i64;
            let end = t + Duration::seconds(seconds);
            let open = last && !long && rng.below(4) == 0;
            let state = State {
                agent: format!("a{agent}"),
                code: codes[rng.below(4) as usize],
                start: t,
                end: (!open).then_some(end),
            };
            // (Times that happen once: an end of the repeated hour counts as its first occurrence in the
            // comparison of ties, which is not always the real one.)
            let tie_end = t + Duration::seconds(seconds / 2);
            let times_once = once(tz, t) && once(tz, tie_end) && (open || once(tz, end));
            if times_once && rng.below(6) == 0 {
                ties.push(State {
                    code: Some("TIE"),
                    end: Some(tie_end),
                    ..state.clone()
                });
            }
            out.push(state);
            let gap = if rng.below(3) == 0 {
                rng.below(1200)
            } else {
                0
            };
            t = end + Duration::seconds(gap as i64);
        }
    }
    (out, ties)
}

/// Whether the wall time of the instant `t` happens once.
fn once(tz: Tz, t: NaiveDateTime) -> bool {
    let w = tz.from_utc_datetime(&t).naive_local();
    matches!(tz.from_local_datetime(&w), chrono::LocalResult::Single(_))
}

fn wall(tz: Tz, t: NaiveDateTime) -> String {
    tz.from_utc_datetime(&t)
        .naive_local()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn insert(source: &Source, tz: Tz, rows: &[State]) {
    if rows.is_empty() {
        return;
    }
    let values: Vec<String> = rows
        .iter()
        .map(|r| {
            let q = |v: Option<String>| v.map_or("NULL".to_owned(), |v| format!("'{v}'"));
            format!(
                "('{}', {}, '{}', {})",
                r.agent,
                q(r.code.map(str::to_owned)),
                wall(tz, r.start),
                q(r.end.map(|e| wall(tz, e)))
            )
        })
        .collect();
    source.execute(&format!(
        "INSERT INTO acd_agent_states (agent_id, activity_code, started_at, ended_at) VALUES {}",
        values.join(", ")
    ));
}

type Stored = Vec<(String, Option<String>, NaiveDateTime, Option<NaiveDateTime>)>;

fn stored(store: &TestStore) -> Stored {
    store
        .view()
        .into_iter()
        .filter(|v| v.agent != "seed")
        .map(|v| (v.agent, v.code, v.started_at, v.ended_at))
        .collect()
}

/// A full sync of today, and of every day changes runs wrote to since its last full sync.
fn full_sync_of_today(store: &TestStore, system: &acdsync::config::ExternalSystemConfig) {
    let mut s = store.open();
    s.lock(false).unwrap();
    let today = acdsync::sync::Target::Days(Days::today(system.time_zone));
    for outcome in acdsync::sync::sync_and_reconcile(&mut s, system, today) {
        outcome.unwrap();
    }
}

/// Syncs `days` in turn; returns the rows rejected and the sessions written.
fn sync_days(
    store: &TestStore,
    system: &acdsync::config::ExternalSystemConfig,
    days: &[Days],
) -> (u64, u64) {
    let (mut rejected, mut written) = (0, 0);
    for d in days {
        let r = store.sync(system, *d).unwrap();
        rejected += r.counts.rejected;
        written += r.counts.inserted + r.counts.updated + r.counts.deleted;
    }
    (rejected, written)
}

/// One case: a zone, the autumn or spring change, a seed for the chains.
fn one_case(source: &Source, zone: &str, back: bool, seed: u64) {
    let tz: Tz = zone.parse().unwrap();
    let at = clock_change(tz, back);
    let mut rng = Lcg(seed);
    let (rows, ties) = chains(&mut rng, tz, at);
    let what = format!(
        "{zone}, {} change, seed {seed}: {rows:#?}, ties {ties:#?}",
        if back { "autumn" } else { "spring" }
    );

    source.execute("TRUNCATE acd_agent_states");
    seed_today(source, zone);
    let mut system = incremental_system(
        zone,
        source,
        "change_id",
        "change_id >",
        acdsync::config::WatermarkKind::Integer,
    );

    // By changes: the first run of today sets the watermark, then the rows arrive in random chunks; the
    // full sync of today also reads the days changes runs wrote to (ties seen by different runs).
    let changes = TestStore::new(StoreKind::Sqlite);
    changes.sync_today(&system);
    let mut shuffled: Vec<State> = rows.iter().chain(&ties).cloned().collect();
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut rest = &shuffled[..];
    while !rest.is_empty() {
        let n = 1 + rng.below(rest.len() as u64) as usize;
        insert(source, tz, &rest[..n]);
        rest = &rest[n..];
        changes.sync_today(&system);
    }
    full_sync_of_today(&changes, &system);

    let d = tz.from_utc_datetime(&at).date_naive();
    let day = |k: i64| Days::one(d + Duration::days(k));
    let forward = TestStore::new(StoreKind::Sqlite);
    system.batch_rows = 10_000;
    sync_days(&forward, &system, &[day(-1), day(0), day(1)]);
    let want = stored(&forward);

    let backward = TestStore::new(StoreKind::Sqlite);
    system.batch_rows = 3;
    sync_days(&backward, &system, &[day(1), day(0), day(-1)]);
    assert_eq!(
        stored(&backward),
        want,
        "backward differs from forward\n{what}"
    );

    let range = TestStore::new(StoreKind::Sqlite);
    system.batch_rows = 1;
    let all = Days {
        first: day(-1).first,
        last: day(1).first,
    };
    sync_days(&range, &system, &[all]);
    assert_eq!(stored(&range), want, "range differs from forward\n{what}");
    assert_eq!(
        stored(&changes),
        want,
        "changes differ from forward\n{what}"
    );

    // No row is rejected but the ties, in any order or mode.
    for (name, store) in [
        ("forward", &forward),
        ("backward", &backward),
        ("range", &range),
        ("changes", &changes),
    ] {
        let others =
            "SELECT COUNT(*) FROM rejected_rows WHERE activity_code IS NULL OR activity_code <> 'TIE'";
        let reasons = store.rejected_reasons();
        assert_eq!(
            store.count(others),
            0,
            "{name}: a row was rejected: {reasons:#?}\n{what}"
        );
    }

    // Re-runs write nothing, in any order, and by changes with every row changed again.
    let (_, written) = sync_days(&forward, &system, &[day(0), day(1), day(-1), all]);
    assert_eq!(written, 0, "a re-run wrote\n{what}");
    // (In one batch: ties that a changes run sees in different batches wait for the full sync of their
    // day, docs/incremental.md.)
    system.batch_rows = 10_000;
    source.execute(
        "UPDATE acd_agent_states SET change_id = nextval('acd_change_seq') WHERE agent_id <> 'seed'",
    );
    let again = changes.sync_today(&system);
    assert_eq!(
        again[0].counts.read as usize,
        rows.len() + ties.len(),
        "{what}"
    );
    let written: u64 = again
        .iter()
        .map(|r| r.counts.inserted + r.counts.updated + r.counts.deleted)
        .sum();
    assert_eq!(written, 0, "a changes re-run wrote: {again:?}\n{what}");

    // Every row but the ties is a session; where a wall time happens once, at its real instant.
    assert_eq!(want.len(), rows.len(), "rows lost\n{what}");
    for r in rows.iter().filter(|r| once(tz, r.start)) {
        let s = want
            .iter()
            .find(|s| s.0 == r.agent && s.2 == r.start)
            .unwrap_or_else(|| panic!("no session at the real start of {r:?}\n{what}"));
        if r.end.is_none_or(|e| once(tz, e)) {
            assert_eq!(s.3, r.end, "end of {r:?}\n{what}");
            assert_eq!(s.1.as_deref(), r.code, "code of {r:?}\n{what}");
        }
    }
}

#[test]
fn every_order_of_syncs_ends_in_the_same_store_around_every_kind_of_change() {
    let cases: u64 = std::env::var("ACDSYNC_DST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let first_seed: u64 = std::env::var("ACDSYNC_DST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // One source for every case (emptied before each); the change key keeps growing across cases.
    let source = Source::new(SourceKind::Postgres);
    source.execute("CREATE SEQUENCE acd_change_seq");
    source.execute(
        "ALTER TABLE acd_agent_states ADD COLUMN change_id bigint NOT NULL DEFAULT nextval('acd_change_seq')",
    );
    let only = std::env::var("ACDSYNC_DST_ZONE").ok();
    for zone in DST_ZONES
        .iter()
        .filter(|z| only.as_deref().is_none_or(|o| o == **z))
    {
        for k in 0..cases {
            let seed = first_seed + k;
            one_case(&source, zone, seed % 2 == 1, seed);
        }
    }
}
