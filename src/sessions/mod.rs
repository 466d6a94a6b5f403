//! Pure rules, no I/O: what a source row must hold to become a session, and its times in UTC.

pub mod time;

use chrono::{NaiveDateTime, SubsecRound};
use chrono_tz::Tz;

pub use time::{local_to_utc, parse_source_time, Fold, LocalZone, SourceTime};

/// The columns of the sessions query, in order (see sql/sources/README.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    AgentId,
    ActivityCode,
    StartedAt,
    EndedAt,
    /// The 5th column of an incremental system's queries.
    ChangeKey,
}

impl Field {
    pub const ALL: [Field; 4] = [
        Field::AgentId,
        Field::ActivityCode,
        Field::StartedAt,
        Field::EndedAt,
    ];

    /// The column name users see in the SQL contract and in `rejected_rows.field`.
    pub fn name(self) -> &'static str {
        match self {
            Field::AgentId => "agent_id",
            Field::ActivityCode => "activity_code",
            Field::StartedAt => "started_at",
            Field::EndedAt => "ended_at",
            Field::ChangeKey => "change_key",
        }
    }
}

/// One row as the driver returned it: raw bytes, `None` for SQL NULL.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawRow<'a> {
    pub agent_id: Option<&'a [u8]>,
    pub activity_code: Option<&'a [u8]>,
    pub started_at: Option<&'a [u8]>,
    pub ended_at: Option<&'a [u8]>,
    /// The 5th column of an incremental system's queries (its change key), when there is one.
    pub change_key: Option<&'a [u8]>,
}

impl RawRow<'_> {
    /// The value of a field as text, for `rejected_rows` (lossy for bytes that are not UTF-8).
    pub fn text(&self, field: Field) -> Option<String> {
        let v = match field {
            Field::AgentId => self.agent_id,
            Field::ActivityCode => self.activity_code,
            Field::StartedAt => self.started_at,
            Field::EndedAt => self.ended_at,
            Field::ChangeKey => self.change_key,
        };
        v.map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// A valid row: a session with UTC times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceSession<'a> {
    pub agent_id: &'a str,
    pub activity_code: Option<&'a str>,
    pub started_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
    /// The times as the source wrote them.
    pub start: SourceTime,
    pub end: Option<SourceTime>,
    /// A local time of this row happens twice (the hour the clocks go back).
    pub in_repeated_hour: bool,
    /// Its start is such a time (so the start itself is in question, not only the end).
    pub start_repeats: bool,
}

/// A session of the repeated hour, as the source wrote it, for `resolve_repeated_hour`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepeatedHourSession {
    pub agent_id: String,
    pub start: SourceTime,
    pub end: Option<SourceTime>,
}

/// Reads the sessions that touch a repeated hour using the agent's other sessions of that hour, in any
/// order of the source's rows:
/// - states that follow each other are chained: a start written the same as the end of another session of
///   the same agent is the same instant as that end;
/// - the first state of a chain starting in the repeated hour takes the reading `stored` names (the one a
///   previous sync stored, so that windows which see fewer rows read it the same way); otherwise the first
///   occurrence, unless that falls inside another session of the same agent, then the second;
/// - an end is read as the first occurrence unless that is before the session's start.
///
/// `stored(agent, first, second)` answers which of the two readings of a start is already stored, if one is.
/// Returns the UTC start and end of each session, in the order given.
pub fn resolve_repeated_hour(
    tz: Tz,
    sessions: &[RepeatedHourSession],
    stored: &dyn Fn(&str, NaiveDateTime, NaiveDateTime) -> Option<NaiveDateTime>,
) -> Vec<(NaiveDateTime, Option<NaiveDateTime>)> {
    use std::collections::HashMap;
    let n = sessions.len();
    let simple_start = |i: usize| time::to_utc(tz, sessions[i].start, Fold::First).0;
    let end_from = |i: usize, start: NaiveDateTime| {
        sessions[i]
            .end
            .map(|e| time::to_utc(tz, e, Fold::NotBefore(start)).0)
    };
    // Walks a chain from a start instant: each state starts where the one before it ended.
    let walk = |chain: &[usize],
                from: NaiveDateTime,
                out: &mut [(NaiveDateTime, Option<NaiveDateTime>)]| {
        let mut t = from;
        for &i in chain {
            let end = end_from(i, t);
            out[i] = (t, end);
            match end {
                Some(e) => t = e,
                None => t = simple_start(i),
            }
        }
    };
    let mut out: Vec<(NaiveDateTime, Option<NaiveDateTime>)> =
        (0..n).map(|i| (simple_start(i), None)).collect();

    let mut by_agent: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in sessions.iter().enumerate() {
        by_agent.entry(s.agent_id.as_str()).or_default().push(i);
    }
    let mut agents: Vec<(&str, Vec<usize>)> = by_agent.into_iter().collect();
    agents.sort_unstable();
    for (agent, group) in agents {
        let follows = |i: usize, j: usize| i != j && sessions[i].end == Some(sessions[j].start);
        // Heads: sessions no other session of the agent ends into, earliest first.
        let mut heads: Vec<usize> = group
            .iter()
            .copied()
            .filter(|&j| !group.iter().any(|&i| follows(i, j)))
            .collect();
        heads.sort_by_key(|&h| simple_start(h));
        let mut used = vec![false; n];
        let mut chains: Vec<Vec<usize>> = Vec::new();
        for head in heads {
            // The longest chain from this head: where two sessions start at the same wall time (once in each
            // pass), the right one is the one after which the chain goes on.
            let mut best: Vec<usize> = Vec::new();
            let mut path = vec![head];
            let mut budget = 10_000u32;
            longest_chain(&group, &follows, &used, &mut path, &mut best, &mut budget);
            for &i in &best {
                used[i] = true;
            }
            chains.push(best);
        }
        // Sessions in no chain (a cycle of equal times) stand alone.
        chains.extend(group.iter().filter(|&&i| !used[i]).map(|&i| vec![i]));

        // Each chain from its head's reading: what is stored, else the first occurrence for now.
        let mut open_question: Vec<(usize, NaiveDateTime)> = Vec::new();
        for (c, chain) in chains.iter().enumerate() {
            let head = chain[0];
            let mut from = simple_start(head);
            if let SourceTime::Local(local) = sessions[head].start {
                if let Some((first, second)) = time::both_readings(tz, local) {
                    match stored(agent, first, second) {
                        Some(t) => from = t,
                        None => open_question.push((c, second)),
                    }
                }
            }
            walk(chain, from, &mut out);
        }
        // A chain whose first reading starts inside another chain's session of the agent: the second pass.
        for (c, second) in open_question {
            let head_start = out[chains[c][0]].0;
            let inside_another = chains
                .iter()
                .enumerate()
                .filter(|(d, _)| *d != c)
                .flat_map(|(_, ch)| ch.iter())
                .any(|&j| {
                    let (s, e) = out[j];
                    s <= head_start && e.is_some_and(|e| head_start < e)
                });
            if inside_another {
                walk(&chains[c], second, &mut out);
            }
        }
    }
    out
}

/// Depth-first search for the longest chain of states extending `path`, within a step budget.
fn longest_chain(
    group: &[usize],
    follows: &dyn Fn(usize, usize) -> bool,
    used: &[bool],
    path: &mut Vec<usize>,
    best: &mut Vec<usize>,
    budget: &mut u32,
) {
    if path.len() > best.len() {
        best.clone_from(path);
    }
    if *budget == 0 || best.len() == group.len() {
        return;
    }
    *budget -= 1;
    let last = *path.last().expect("a path starts with its head");
    for &j in group {
        if !used[j] && !path.contains(&j) && follows(last, j) {
            path.push(j);
            longest_chain(group, follows, used, path, best, budget);
            path.pop();
        }
    }
}

/// Why a row cannot be imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub field: Field,
    pub reason: String,
}

impl Rejection {
    pub fn new(field: Field, reason: impl Into<String>) -> Self {
        Rejection {
            field,
            reason: reason.into(),
        }
    }
}

fn text(field: Field, bytes: &[u8]) -> Result<&str, Rejection> {
    std::str::from_utf8(bytes)
        .map(str::trim)
        .map_err(|e| Rejection::new(field, format!("{} is not valid UTF-8 ({e})", field.name())))
}

fn time(field: Field, bytes: &[u8]) -> Result<Option<SourceTime>, Rejection> {
    if !bytes.is_ascii() {
        // Not a time; say whether it is not even text.
        text(field, bytes)?;
    }
    if bytes.trim_ascii().is_empty() {
        return Ok(None);
    }
    time::parse_source_bytes(bytes)
        .map(Some)
        .map_err(|e| Rejection::new(field, e))
}

/// Times to the microsecond (what both stores keep, so that a re-run compares equal to what it stored),
/// and an end that is not before its start.
pub fn checked_times(
    started_at: NaiveDateTime,
    ended_at: Option<NaiveDateTime>,
) -> Result<(NaiveDateTime, Option<NaiveDateTime>), Rejection> {
    let started_at = started_at.trunc_subsecs(6);
    let ended_at = ended_at.map(|e| e.trunc_subsecs(6));
    match ended_at {
        Some(end) if end < started_at => Err(Rejection::new(
            Field::EndedAt,
            format!("ends before it starts ({end} UTC < {started_at} UTC)"),
        )),
        _ => Ok((started_at, ended_at)),
    }
}

/// Checks one row and converts its times to UTC with the system's zone.
///
/// A row with a local time in a repeated hour (clocks going back) comes back with `in_repeated_hour` set and
/// its times read by the simple rule; the caller may read them again with `resolve_repeated_hour`, which
/// looks at the agent's other sessions of that hour.
///
/// Text is trimmed (CHAR columns pad with blanks); an empty code or end is the same as NULL.
pub fn validate<'a>(row: &RawRow<'a>, tz: Tz) -> Result<SourceSession<'a>, Rejection> {
    validate_in(row, &mut LocalZone::new(tz))
}

/// `validate` with a zone that remembers the offsets of recent local times (for a batch of rows).
pub fn validate_in<'a>(
    row: &RawRow<'a>,
    zone: &mut LocalZone,
) -> Result<SourceSession<'a>, Rejection> {
    let agent_id = match row.agent_id {
        None => return Err(Rejection::new(Field::AgentId, "no agent id (NULL)")),
        Some(b) => text(Field::AgentId, b)?,
    };
    if agent_id.is_empty() {
        return Err(Rejection::new(Field::AgentId, "no agent id (empty)"));
    }
    let activity_code = match row.activity_code {
        None => None,
        Some(b) => Some(text(Field::ActivityCode, b)?).filter(|c| !c.is_empty()),
    };
    let started = match row.started_at {
        None => None,
        Some(b) => time(Field::StartedAt, b)?,
    }
    .ok_or_else(|| Rejection::new(Field::StartedAt, "no start time"))?;
    let ended = match row.ended_at {
        None => None,
        Some(b) => time(Field::EndedAt, b)?,
    };
    let (started_at, start_repeats) = zone.to_utc(started, Fold::First);
    let (ended_at, end_repeats) = match ended {
        None => (None, false),
        Some(e) => {
            let (t, r) = zone.to_utc(e, Fold::NotBefore(started_at));
            (Some(t), r)
        }
    };
    let (started_at, ended_at) = checked_times(started_at, ended_at)?;
    Ok(SourceSession {
        agent_id,
        activity_code,
        started_at,
        ended_at,
        start: started,
        end: ended,
        in_repeated_hour: start_repeats || end_repeats,
        start_repeats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn paris() -> Tz {
        "Europe/Paris".parse().unwrap()
    }

    fn row<'a>(
        a: Option<&'a str>,
        c: Option<&'a str>,
        s: Option<&'a str>,
        e: Option<&'a str>,
    ) -> RawRow<'a> {
        RawRow {
            agent_id: a.map(str::as_bytes),
            activity_code: c.map(str::as_bytes),
            started_at: s.map(str::as_bytes),
            ended_at: e.map(str::as_bytes),
            change_key: None,
        }
    }

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn a_good_row_becomes_a_utc_session_with_trimmed_text() {
        let r = row(
            Some(" 1001 "),
            Some("BREAK  "),
            Some("2026-07-01 10:00:00"),
            Some("2026-07-01 10:15:00"),
        );
        let s = validate(&r, paris()).unwrap();
        assert_eq!(s.agent_id, "1001");
        assert_eq!(s.activity_code, Some("BREAK"));
        assert_eq!(s.started_at, dt("2026-07-01 08:00:00"));
        assert_eq!(s.ended_at, Some(dt("2026-07-01 08:15:00")));
    }

    #[test]
    fn empty_code_and_empty_end_mean_none_and_open() {
        let s = validate(
            &row(Some("7"), Some(""), Some("2026-01-05 09:00:00"), Some("")),
            paris(),
        )
        .unwrap();
        assert_eq!(s.activity_code, None);
        assert_eq!(s.ended_at, None);
    }

    #[test]
    fn rejections_name_the_field_and_the_reason() {
        let cases = [
            (
                row(None, None, Some("2026-01-05 09:00:00"), None),
                Field::AgentId,
                "no agent id",
            ),
            (
                row(Some("  "), None, Some("2026-01-05 09:00:00"), None),
                Field::AgentId,
                "no agent id",
            ),
            (
                row(Some("7"), None, None, None),
                Field::StartedAt,
                "no start time",
            ),
            (
                row(Some("7"), None, Some("soon"), None),
                Field::StartedAt,
                "\"soon\"",
            ),
            (
                row(Some("7"), None, Some("2026-01-05 09:00:00"), Some("later")),
                Field::EndedAt,
                "\"later\"",
            ),
            (
                row(
                    Some("7"),
                    None,
                    Some("2026-01-05 09:00:00"),
                    Some("2026-01-05 08:59:59"),
                ),
                Field::EndedAt,
                "ends before it starts",
            ),
        ];
        for (r, field, needle) in cases {
            let rej = validate(&r, paris()).unwrap_err();
            assert_eq!(rej.field, field, "{rej:?}");
            assert!(rej.reason.contains(needle), "{rej:?} should say {needle}");
        }
        let bad_utf8 = RawRow {
            change_key: None,
            agent_id: Some(b"\xff\xfe"),
            started_at: Some(b"2026-01-05 09:00:00"),
            ..Default::default()
        };
        assert_eq!(
            validate(&bad_utf8, paris()).unwrap_err().field,
            Field::AgentId
        );
    }

    #[test]
    fn a_pause_across_the_autumn_change_ends_in_the_second_pass() {
        // PAUSE at 02:40 summer time, UNPAUSE at 02:10 winter time: 90 minutes later in real time.
        let s = validate(
            &row(
                Some("7"),
                Some("LUNCH"),
                Some("2026-10-25 02:40:00"),
                Some("2026-10-25 02:10:00"),
            ),
            paris(),
        )
        .unwrap();
        assert_eq!(s.started_at, dt("2026-10-25 00:40:00"));
        assert_eq!(s.ended_at, Some(dt("2026-10-25 01:10:00")));
    }

    #[test]
    fn times_keep_microseconds_as_the_stores_do() {
        let s = validate(
            &row(Some("7"), None, Some("2026-07-01 10:00:00.123456789"), None),
            paris(),
        )
        .unwrap();
        assert_eq!(
            s.started_at,
            NaiveDateTime::parse_from_str("2026-07-01 08:00:00.123456", "%Y-%m-%d %H:%M:%S%.f")
                .unwrap()
        );
    }

    #[test]
    fn times_with_an_offset_ignore_the_zone() {
        let s = validate(
            &row(Some("7"), None, Some("2026-07-01 10:00:00+00"), None),
            paris(),
        )
        .unwrap();
        assert_eq!(s.started_at, dt("2026-07-01 10:00:00"));
    }

    fn local(s: &str) -> SourceTime {
        SourceTime::Local(dt(s))
    }

    fn rh(agent: &str, start: &str, end: Option<&str>) -> RepeatedHourSession {
        RepeatedHourSession {
            agent_id: agent.into(),
            start: local(start),
            end: end.map(local),
        }
    }

    #[test]
    fn states_that_follow_each_other_through_the_repeated_hour_are_read_in_sequence_in_any_order() {
        let day = [
            rh("7", "2026-10-25 02:10:00", Some("2026-10-25 03:00:00")),
            rh("7", "2026-10-25 01:30:00", Some("2026-10-25 02:40:00")),
            rh("7", "2026-10-25 02:40:00", Some("2026-10-25 02:10:00")),
        ];
        let got = resolve_repeated_hour(paris(), &day, &|_, _, _| None);
        assert_eq!(
            got,
            [
                (dt("2026-10-25 01:10:00"), Some(dt("2026-10-25 02:00:00"))),
                (dt("2026-10-24 23:30:00"), Some(dt("2026-10-25 00:40:00"))),
                (dt("2026-10-25 00:40:00"), Some(dt("2026-10-25 01:10:00"))),
            ]
        );
    }

    #[test]
    fn a_login_in_the_second_pass_after_a_gap_is_not_laid_over_the_first_pass() {
        let day = [
            rh("7", "2026-10-25 02:00:00", Some("2026-10-25 02:50:00")),
            rh("7", "2026-10-25 02:20:00", Some("2026-10-25 02:45:00")),
            rh("8", "2026-10-25 02:20:00", None),
        ];
        let got = resolve_repeated_hour(paris(), &day, &|_, _, _| None);
        assert_eq!(
            got[0],
            (dt("2026-10-25 00:00:00"), Some(dt("2026-10-25 00:50:00")))
        );
        assert_eq!(
            got[1],
            (dt("2026-10-25 01:20:00"), Some(dt("2026-10-25 01:45:00")))
        );
        assert_eq!(
            got[2],
            (dt("2026-10-25 00:20:00"), None),
            "another agent's sessions do not count"
        );
    }

    #[test]
    fn a_chain_that_starts_in_the_second_pass_moves_whole() {
        let day = [
            rh("7", "2026-10-25 02:00:00", Some("2026-10-25 02:50:00")),
            rh("7", "2026-10-25 02:20:00", Some("2026-10-25 02:30:00")),
            rh("7", "2026-10-25 02:30:00", Some("2026-10-25 02:45:00")),
        ];
        let got = resolve_repeated_hour(paris(), &day, &|_, _, _| None);
        assert_eq!(
            got[1],
            (dt("2026-10-25 01:20:00"), Some(dt("2026-10-25 01:30:00")))
        );
        assert_eq!(
            got[2],
            (dt("2026-10-25 01:30:00"), Some(dt("2026-10-25 01:45:00")))
        );
    }

    #[test]
    fn a_start_takes_the_reading_already_stored() {
        // The next day's window sees only the open login: it keeps the reading the day's sync stored.
        let day = [rh("7", "2026-10-25 02:20:00", None)];
        let stored = |agent: &str, _first, second| (agent == "7").then_some(second);
        let got = resolve_repeated_hour(paris(), &day, &stored);
        assert_eq!(got[0], (dt("2026-10-25 01:20:00"), None));
    }

    proptest! {
        /// Local to UTC moves a time by the zone's offset (or less, inside the spring gap), and a session
        /// whose local end is not before its local start is never rejected for ending first, any day of the year.
        #[test]
        fn conversion_keeps_sessions_ordered(start_min in 0i64..(366 * 24 * 60), len_min in 0i64..(10 * 60)) {
            let tz = paris();
            let start = dt("2026-01-01 00:00:00") + chrono::Duration::minutes(start_min);
            let end = start + chrono::Duration::minutes(len_min);
            let s_txt = start.format("%Y-%m-%d %H:%M:%S").to_string();
            let e_txt = end.format("%Y-%m-%d %H:%M:%S").to_string();
            let r = row(Some("a"), None, Some(&s_txt), Some(&e_txt));
            let s = validate(&r, tz).unwrap();
            prop_assert!(s.ended_at.unwrap() >= s.started_at);
            let shift = (start - s.started_at).num_minutes();
            prop_assert!((60..=120).contains(&shift), "offset {shift} min");
        }

        /// States that follow each other across the autumn change, written as local wall time and given in
        /// any order, are read back to the instants they happened: no overlap, no gap.
        #[test]
        fn a_chain_of_states_across_the_autumn_change_is_read_back_exactly(
            lengths in proptest::collection::vec(5i64..50, 2..12),
            rotate in 0usize..12,
        ) {
            let tz = paris();
            let mut t = dt("2026-10-24 23:40:00");
            let mut truth = Vec::new();
            for m in &lengths {
                let end = t + chrono::Duration::minutes(*m);
                truth.push((t, end));
                t = end;
            }
            let wall = |u: NaiveDateTime| SourceTime::Local(chrono::TimeZone::from_utc_datetime(&tz, &u).naive_local());
            let mut items: Vec<(usize, RepeatedHourSession)> = truth
                .iter()
                .enumerate()
                .map(|(i, (s, e))| (i, RepeatedHourSession { agent_id: "a".into(), start: wall(*s), end: Some(wall(*e)) }))
                .collect();
            let k = rotate % items.len();
            items.rotate_left(k);
            let got = resolve_repeated_hour(tz, &items.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>(), &|_, _, _| None);
            // In any order: the states tile the time they covered, no overlap, no gap. (Wall times alone can
            // fit two tilings, e.g. 02:00-02:14 once and 02:00-02:05-02:14 in the other pass.)
            let mut got_sorted: Vec<_> = got.iter().map(|(s, e)| (*s, e.unwrap())).collect();
            got_sorted.sort();
            prop_assert_eq!(got_sorted[0].0, truth[0].0);
            prop_assert_eq!(got_sorted.last().unwrap().1, truth.last().unwrap().1);
            for w in got_sorted.windows(2) {
                prop_assert_eq!(w[0].1, w[1].0, "contiguous: {:?}", got_sorted);
            }
            // In source order (rows in the order they happened), each row is read back exactly.
            if k == 0 {
                for ((i, _), (s, e)) in items.iter().zip(got) {
                    prop_assert_eq!((s, e), (truth[*i].0, Some(truth[*i].1)), "state {}", i);
                }
            }
        }
    }
}
