//! The events shape's property: random event streams of agents around a change of the clocks, built from
//! real instants (a login, states with codes or ready, a logout or none), written as local wall time with a
//! sequence in real-time order, synced day by day forward, backward and as one range (batch sizes 10,000, 3
//! and 1), and by changes (incremental mode: the first events in full, then a few at a time), end in the same
//! store; re-runs write nothing; nothing is rejected; where a wall time happens once
//! and the events of the hour the clocks go back are told apart by the sequence, the stored instants are the
//! real ones. Zones as in `dst_orders`. A short run in the test command; `ACDSYNC_EVENTS_CASES=N` for more.

use std::path::Path;

use acdsync::config::{ExternalSystemConfig, WindowParameters};
use acdsync::source::query::{QueryKind, SourceQuery};
use acdsync::sync::Days;
use chrono::{Duration, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use crate::common::*;

/// An event as it happened: agent, instant (UTC), kind, code.
type Happened = (String, NaiveDateTime, &'static str, Option<&'static str>);

/// One to three agents, each logged in once around `at`, with one to eight states (a code or ready), then a
/// logout, or still logged in now and then.
fn shifts(rng: &mut Lcg, at: NaiveDateTime) -> Vec<Happened> {
    let codes = [None, Some("BREAK"), Some("LUNCH")];
    let mut out = Vec::new();
    let mut first_login = None;
    for agent in 0..=rng.below(3) {
        let agent = format!("e{agent}");
        let mut t = at - Duration::minutes(180)
            + Duration::seconds(rng.below(4 * 3600) as i64)
            + Duration::milliseconds(rng.below(1000) as i64);
        // Now and then logged in within a second and a half of the first agent.
        if let (Some(f), 0) = (first_login, rng.below(3)) {
            t = f + Duration::milliseconds(1 + rng.below(1500) as i64);
        }
        first_login.get_or_insert(t);
        out.push((agent.clone(), t, "login", None));
        for _ in 0..rng.below(8) {
            t += Duration::seconds(60 + rng.below(90 * 60) as i64);
            out.push((agent.clone(), t, "state", codes[rng.below(3) as usize]));
        }
        if rng.below(4) != 0 {
            t += Duration::seconds(60 + rng.below(90 * 60) as i64);
            out.push((agent, t, "logout", None));
        }
    }
    out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    // Now and then an event logged (its sequence) up to 2 s before another agent's that happened earlier:
    // the ACD's threads.
    for i in 1..out.len() {
        let close = out[i].1 - out[i - 1].1 < Duration::seconds(2);
        if out[i].0 != out[i - 1].0 && close && rng.below(2) == 0 {
            out.swap(i - 1, i);
        }
    }
    out
}

fn stored(
    store: &TestStore,
) -> Vec<(String, Option<String>, NaiveDateTime, Option<NaiveDateTime>)> {
    store
        .view()
        .into_iter()
        .map(|v| (v.agent, v.code, v.started_at, v.ended_at))
        .collect()
}

/// The sessions the events make, from their real instants (a state with the code already current changes
/// nothing).
fn truth(
    events: &[Happened],
) -> Vec<(String, Option<String>, NaiveDateTime, Option<NaiveDateTime>)> {
    let mut out = Vec::new();
    let mut open: std::collections::BTreeMap<&str, (NaiveDateTime, Option<&str>)> =
        Default::default();
    for (agent, t, kind, code) in events {
        let current = open.get(agent.as_str()).copied();
        match (*kind, current) {
            ("login", None) => {
                open.insert(agent, (*t, None));
            }
            ("state", Some((_, c))) if c == *code => {}
            ("state", Some((s, c))) => {
                out.push((agent.clone(), c.map(str::to_owned), s, Some(*t)));
                open.insert(agent, (*t, *code));
            }
            ("logout", Some((s, c))) => {
                out.push((agent.clone(), c.map(str::to_owned), s, Some(*t)));
                open.remove(agent.as_str());
            }
            _ => unreachable!("shifts are well formed"),
        }
    }
    for (agent, (s, c)) in open {
        out.push((agent.to_owned(), c.map(str::to_owned), s, None));
    }
    out.sort_by(|a, b| (&a.0, a.2).cmp(&(&b.0, b.2)));
    out
}

fn one_case(source: &Source, zone: &str, back: bool, seed: u64) {
    let tz: Tz = zone.parse().unwrap();
    let at = clock_change(tz, back);
    let mut rng = Lcg(seed);
    let events = shifts(&mut rng, at);
    let what = format!("{zone}, seed {seed}, back {back}: {events:#?}");
    source.execute("DELETE FROM acd_agent_events");
    // Events `range` logged, ids in the order of `events`.
    let log = |range: std::ops::Range<usize>| {
        for (i, (agent, t, kind, code)) in
            events.iter().enumerate().take(range.end).skip(range.start)
        {
            let wall = tz
                .from_utc_datetime(t)
                .naive_local()
                .format("%Y-%m-%d %H:%M:%S%.3f");
            let code = code.map_or("NULL".to_owned(), |c| format!("'{c}'"));
            source.execute(&format!(
                "INSERT INTO acd_agent_events (id, agent_id, event_time, event, activity_code, scope) VALUES ({}, '{agent}', '{wall}', '{kind}', {code}, NULL)",
                i + 1
            ));
        }
    };
    log(0..events.len());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/sources/generic_events.sql");
    let query = SourceQuery::load(&path, QueryKind::Events).unwrap();
    let mut system = ExternalSystemConfig::new(
        "ev",
        zone,
        query,
        &source.connection_string,
        WindowParameters::Literal,
    )
    .unwrap();
    let d = tz.from_utc_datetime(&at).date_naive();
    let day = |k: i64| Days::one(d + Duration::days(k));
    let all = Days {
        first: day(-1).first,
        last: day(1).first,
    };
    let orders: [(usize, Vec<Days>); 3] = [
        (10_000, vec![day(-1), day(0), day(1)]),
        (3, vec![day(1), day(0), day(-1)]),
        (1, vec![all]),
    ];
    let mut stores = Vec::new();
    for (batch, days) in orders {
        system.batch_rows = batch;
        let store = TestStore::new(StoreKind::Sqlite);
        for d in days {
            let r = store.sync(&system, d).unwrap();
            assert_eq!(
                r.counts.rejected,
                0,
                "rejected: {:?}\n{what}",
                store.rejected_reasons()
            );
        }
        stores.push(store);
    }
    // By changes: the first events synced in full (the days as a range), then the others logged a few at a
    // time, each few synced by changes (from where the agents stood)
    let first = 1 + rng.below(events.len() as u64) as usize;
    source.execute(&format!("DELETE FROM acd_agent_events WHERE id > {first}"));
    system.batch_rows = 10_000;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/sources/generic_events_changes.sql");
    let changes = SourceQuery::load(&path, QueryKind::Changes).unwrap();
    let inc = system.clone().with_incremental(
        changes,
        acdsync::source::query::WatermarkKind::Integer,
        std::time::Duration::from_secs(3600),
    );
    let store = TestStore::new(StoreKind::Sqlite);
    store.sync(&inc, all).unwrap();
    let mut at = first;
    while at < events.len() {
        let end = (at + 1 + rng.below(4) as usize).min(events.len());
        log(at..end);
        for r in store.sync_today(&inc) {
            assert_eq!(r.mode, acdsync::sync::Mode::Changes, "{what}");
            assert_eq!(
                r.counts.rejected,
                0,
                "rejected: {:?}\n{what}",
                store.rejected_reasons()
            );
        }
        at = end;
    }
    stores.push(store);
    let want = stored(&stores[0]);
    assert_eq!(
        stored(&stores[1]),
        want,
        "backward differs from forward\n{what}"
    );
    assert_eq!(
        stored(&stores[2]),
        want,
        "range differs from forward\n{what}"
    );
    assert_eq!(
        stored(&stores[3]),
        want,
        "by changes (the first {first} events in full) differs from forward\n{what}"
    );
    let again = stores[3].sync_today(&inc);
    assert_eq!(
        written(&again[0]),
        (0, 0, 0),
        "a changes run with nothing new wrote\n{what}"
    );
    for d in [day(0), day(1), day(-1), all] {
        let r = stores[0].sync(&system, d).unwrap();
        let written = r.counts.inserted + r.counts.updated + r.counts.deleted;
        assert_eq!(written, 0, "a re-run of {d:?} wrote\n{what}");
    }
    // Where every time of a session happens once, it is stored at its real instants.
    let once = |t: NaiveDateTime| {
        let w = tz.from_utc_datetime(&t).naive_local();
        matches!(tz.from_local_datetime(&w), chrono::LocalResult::Single(_))
    };
    let truth = truth(&events);
    assert_eq!(
        want.len(),
        truth.len(),
        "sessions lost or made\n{want:#?}\n{what}"
    );
    // (An event logged after one that happened later is taken at that one's instant: up to 2 s late.)
    let near = |a: NaiveDateTime, b: NaiveDateTime| (a - b).abs() <= Duration::seconds(2);
    for s in truth.iter().filter(|s| once(s.2) && s.3.is_none_or(once)) {
        let found = want.iter().any(|w| {
            w.0 == s.0
                && w.1 == s.1
                && near(w.2, s.2)
                && match (w.3, s.3) {
                    (Some(a), Some(b)) => near(a, b),
                    (a, b) => a == b,
                }
        });
        assert!(found, "{s:?} not stored as it happened\n{want:#?}\n{what}");
    }
}

#[test]
fn events_synced_in_every_order_end_in_the_same_store_around_every_kind_of_change() {
    let cases: u64 = std::env::var("ACDSYNC_EVENTS_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let source = Source::new(SourceKind::Sqlite);
    source.execute("CREATE TABLE acd_agent_events (id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL, event_time TIMESTAMP NOT NULL, event TEXT NOT NULL, activity_code TEXT, scope TEXT)");
    for zone in DST_ZONES {
        for seed in 1..=cases {
            one_case(&source, zone, seed % 2 == 1, seed);
        }
    }
}
