use super::*;
use proptest::prelude::*;

fn zone(name: &str) -> Tz {
    name.parse().unwrap()
}

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
}

fn local(s: &str) -> SourceTime {
    SourceTime::Local(dt(s))
}

fn rh(start: &str, end: Option<&str>, code: Option<&str>) -> RepeatedHourSession {
    RepeatedHourSession {
        agent_id: "a".into(),
        activity_code: code.map(str::to_owned),
        start: local(start),
        end: end.map(local),
    }
}

fn read(tz: &str, rows: &[RepeatedHourSession]) -> Vec<Reading> {
    resolve_repeated_hour(zone(tz), 24, rows)
}

#[test]
fn repeats_are_found_in_every_kind_of_zone() {
    let cases = [
        // zone, a wall time that happens twice, the change (UTC), the span's wall start and end
        (
            "Europe/Paris",
            "2026-10-25 02:30:00",
            "2026-10-25 01:00:00",
            "2026-10-25 02:00:00",
            "2026-10-25 03:00:00",
        ),
        (
            "Asia/Beirut",
            "2026-10-24 23:20:00",
            "2026-10-24 21:00:00",
            "2026-10-24 23:00:00",
            "2026-10-25 00:00:00",
        ),
        (
            "Atlantic/Azores",
            "2026-10-25 00:10:00",
            "2026-10-25 01:00:00",
            "2026-10-25 00:00:00",
            "2026-10-25 01:00:00",
        ),
        (
            "America/Havana",
            "2026-11-01 00:59:59",
            "2026-11-01 05:00:00",
            "2026-11-01 00:00:00",
            "2026-11-01 01:00:00",
        ),
        (
            "Australia/Lord_Howe",
            "2026-04-05 01:45:00",
            "2026-04-04 15:00:00",
            "2026-04-05 01:30:00",
            "2026-04-05 02:00:00",
        ),
    ];
    for (tz, wall, change, start, end) in cases {
        let r = Repeat::of(zone(tz), dt(wall)).unwrap_or_else(|| panic!("{tz} {wall}"));
        assert_eq!(
            (r.change, r.wall_start, r.wall_end),
            (dt(change), dt(start), dt(end)),
            "{tz}"
        );
        let found = Repeat::between(
            zone(tz),
            dt(change) - Duration::days(2),
            dt(change) + Duration::days(2),
        );
        assert_eq!(found, vec![r], "{tz}");
    }
    assert_eq!(
        Repeat::of(zone("Europe/Paris"), dt("2026-10-25 03:00:00")),
        None
    );
    assert!(Repeat::between(
        zone("Europe/Paris"),
        dt("2026-03-01 00:00:00"),
        dt("2026-10-01 00:00:00")
    )
    .is_empty());
}

#[test]
fn beirut_a_break_and_a_login_at_the_same_wall_start_are_two_sessions() {
    // Case 1 of issue 12: 23:00-24:00 on 2026-10-24 happens twice (UTC+3, then UTC+2).
    let rows = [
        rh("2026-10-24 23:20:00", None, Some("READY")),
        rh(
            "2026-10-24 23:20:00",
            Some("2026-10-24 23:30:00"),
            Some("BREAK"),
        ),
    ];
    let got = read("Asia/Beirut", &rows);
    assert_eq!(
        got[1],
        (dt("2026-10-24 20:20:00"), Some(dt("2026-10-24 20:30:00")))
    );
    assert_eq!(got[0], (dt("2026-10-24 21:20:00"), None));
}

#[test]
fn paris_the_only_reading_without_overlap_is_taken() {
    // Case 2 of issue 12.
    let rows = [
        rh(
            "2026-10-25 02:45:00",
            Some("2026-10-25 03:20:00"),
            Some("CALL"),
        ),
        rh(
            "2026-10-25 02:45:00",
            Some("2026-10-25 02:15:00"),
            Some("PAUSE"),
        ),
    ];
    let got = read("Europe/Paris", &rows);
    assert_eq!(
        got[1],
        (dt("2026-10-25 00:45:00"), Some(dt("2026-10-25 01:15:00")))
    );
    assert_eq!(
        got[0],
        (dt("2026-10-25 01:45:00"), Some(dt("2026-10-25 02:20:00")))
    );
}

#[test]
fn a_login_after_a_logout_in_the_first_pass_is_read_in_the_second() {
    // Case 3 of issue 12 (docs/time.md): logout at 02:50 summer time, login again at 02:20 winter time.
    let rows = [
        rh("2026-10-25 02:20:00", None, None),
        rh("2026-10-25 01:30:00", Some("2026-10-25 02:50:00"), None),
    ];
    let got = read("Europe/Paris", &rows);
    assert_eq!(
        got[1],
        (dt("2026-10-24 23:30:00"), Some(dt("2026-10-25 00:50:00")))
    );
    assert_eq!(got[0], (dt("2026-10-25 01:20:00"), None));
}

#[test]
fn states_that_follow_each_other_across_the_change_are_read_in_sequence() {
    let rows = [
        rh("2026-10-25 02:10:00", Some("2026-10-25 03:00:00"), None),
        rh("2026-10-25 01:30:00", Some("2026-10-25 02:40:00"), None),
        rh(
            "2026-10-25 02:40:00",
            Some("2026-10-25 02:10:00"),
            Some("LUNCH"),
        ),
    ];
    assert_eq!(
        read("Europe/Paris", &rows),
        [
            (dt("2026-10-25 01:10:00"), Some(dt("2026-10-25 02:00:00"))),
            (dt("2026-10-24 23:30:00"), Some(dt("2026-10-25 00:40:00"))),
            (dt("2026-10-25 00:40:00"), Some(dt("2026-10-25 01:10:00"))),
        ]
    );
}

#[test]
fn other_agents_do_not_count_and_rows_with_no_reading_keep_the_simple_one() {
    let mut other = rh("2026-10-25 02:20:00", None, None);
    other.agent_id = "b".into();
    let rows = [
        rh("2026-10-25 02:00:00", Some("2026-10-25 02:50:00"), None),
        other,
        // Unambiguous start after an end that happens twice: both readings end before it starts.
        rh("2026-10-25 03:30:00", Some("2026-10-25 02:10:00"), None),
    ];
    let got = read("Europe/Paris", &rows);
    assert_eq!(
        got[1],
        (dt("2026-10-25 00:20:00"), None),
        "agent b is alone"
    );
    assert_eq!(
        got[2],
        (dt("2026-10-25 02:30:00"), Some(dt("2026-10-25 01:10:00")))
    );
}

#[test]
fn with_no_reading_free_of_overlap_the_fewest_overlaps_are_taken() {
    // Three rows at one wall start: two can be told apart, the third cannot.
    let rows = [
        rh(
            "2026-10-25 02:10:00",
            Some("2026-10-25 02:20:00"),
            Some("A"),
        ),
        rh(
            "2026-10-25 02:10:00",
            Some("2026-10-25 02:20:00"),
            Some("B"),
        ),
        rh(
            "2026-10-25 02:10:00",
            Some("2026-10-25 02:20:00"),
            Some("C"),
        ),
    ];
    let got = read("Europe/Paris", &rows);
    assert_eq!(
        got[0],
        (dt("2026-10-25 00:10:00"), Some(dt("2026-10-25 00:20:00")))
    );
    assert_eq!(
        got[1],
        (dt("2026-10-25 01:10:00"), Some(dt("2026-10-25 01:20:00")))
    );
    assert_eq!(
        got[2].0, got[0].0,
        "the third clashes; the merge rejects it as a duplicate"
    );
}

#[test]
fn a_session_far_older_than_max_session_hours_is_read_alone() {
    let rows = [
        rh("2026-10-23 01:00:00", Some("2026-10-25 02:30:00"), None),
        rh("2026-10-25 02:10:00", None, None),
    ];
    let got = read("Europe/Paris", &rows);
    assert_eq!(
        got[0].1,
        Some(dt("2026-10-25 00:30:00")),
        "first occurrence, alone"
    );
    assert_eq!(
        got[1],
        (dt("2026-10-25 00:10:00"), None),
        "not pushed by the old one"
    );
}

/// An agent's chain: the agent, its first start in minutes from the change, each state's minutes and
/// whether a gap of 7 minutes follows it.
type Chain = (u8, i64, Vec<(i64, bool)>);

/// Random chains of states of a few agents around a change, built from real instants and written as
/// wall time, as `(agent, truth start, truth end, wall start, wall end)`.
fn chains(tz: Tz, change: NaiveDateTime, spec: &[Chain]) -> Vec<(RepeatedHourSession, Reading)> {
    let wall = |u: NaiveDateTime| SourceTime::Local(tz.from_utc_datetime(&u).naive_local());
    let mut out = Vec::new();
    for (agent, from, states) in spec {
        let mut t = change + Duration::minutes(*from);
        for (k, (minutes, gap_after)) in states.iter().enumerate() {
            let open = k + 1 == states.len() && *minutes > 100;
            let end = t + Duration::minutes(*minutes);
            out.push((
                RepeatedHourSession {
                    agent_id: format!("{agent}"),
                    activity_code: Some(format!("C{}", minutes % 3)),
                    start: wall(t),
                    end: (!open).then(|| wall(end)),
                },
                (t, (!open).then_some(end)),
            ));
            t = end + Duration::minutes(if *gap_after { 7 } else { 0 });
        }
    }
    out
}

/// Zones whose clocks go back at 01:00 UTC, at 02:00 local, at midnight, and by 30 minutes.
const ZONES: [&str; 7] = [
    "Europe/Paris",
    "America/New_York",
    "Atlantic/Azores",
    "America/Havana",
    "Asia/Beirut",
    "Australia/Lord_Howe",
    "America/Santiago",
];

proptest! {
    /// Agents' states around the autumn change, in any order: the same readings whatever the order, no
    /// two of an agent overlapping, and every time that happens once read back to its real instant.
    #[test]
    fn readings_depend_on_the_rows_not_their_order(
        zone_no in 0usize..ZONES.len(),
        spec in proptest::collection::vec(
            (0u8..3, -150i64..30, proptest::collection::vec((1i64..130, proptest::bool::ANY), 1..9)),
            1..4,
        ),
        seed in 0u64..1000,
    ) {
        let tz = zone(ZONES[zone_no]);
        let year = Repeat::between(tz, dt("2026-01-01 00:00:00"), dt("2027-01-01 00:00:00"));
        prop_assert_eq!(year.len(), 1);
        let change = year[0].change;
        // One chain per agent.
        let mut seen = std::collections::HashSet::new();
        let spec: Vec<_> = spec.into_iter().filter(|(a, _, _)| seen.insert(*a)).collect();
        let rows = chains(tz, change, &spec);
        let given: Vec<RepeatedHourSession> = rows.iter().map(|(r, _)| r.clone()).collect();
        let got = resolve_repeated_hour(tz, 24, &given);
        let mut shuffled: Vec<usize> = (0..given.len()).collect();
        let mut x = seed;
        for i in (1..shuffled.len()).rev() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (x >> 33) as usize % (i + 1));
        }
        let again = resolve_repeated_hour(tz, 24, &shuffled.iter().map(|&i| given[i].clone()).collect::<Vec<_>>());
        for (k, &i) in shuffled.iter().enumerate() {
            prop_assert_eq!(again[k], got[i], "row {} read differently in another order", i);
        }
        for i in 0..rows.len() {
            for j in 0..i {
                if given[i].agent_id == given[j].agent_id {
                    prop_assert!(!clash(&got[i], &got[j]), "rows {} and {} overlap: {:?} {:?}", j, i, got[j], got[i]);
                }
            }
            let (r, truth) = &rows[i];
            let once = |t: &SourceTime| matches!(t, SourceTime::Local(l) if time::both_readings(tz, *l).is_none());
            if once(&r.start) {
                prop_assert_eq!(got[i].0, truth.0, "start of row {}", i);
            }
            if r.end.as_ref().is_some_and(once) {
                prop_assert_eq!(got[i].1, truth.1, "end of row {}", i);
            }
        }
    }
}
