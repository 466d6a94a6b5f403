//! The hour the clocks go back: the rows of an agent that touch it, read together so that each gets one
//! reading (rules at `resolve_repeated_hour`). Pure, no I/O.

use chrono::NaiveDateTime;
use chrono_tz::Tz;

use super::time::{self, Fold, SourceTime};

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn paris() -> Tz {
        "Europe/Paris".parse().unwrap()
    }

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
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
