//! The hour the clocks go back: each row gets one reading, found from the agent's rows around that hour
//! alone (rules at `resolve_repeated_hour`, for users in docs/time.md). Pure, no I/O.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;

use super::time::{self, Fold, Side, SourceTime};

/// Local wall times that happen twice: from `wall_start` to `wall_end`, first before the instant `change`
/// (UTC), then again after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Repeat {
    pub change: NaiveDateTime,
    pub wall_start: NaiveDateTime,
    pub wall_end: NaiveDateTime,
}

impl Repeat {
    /// The repeat holding the wall time `local`, if `local` happens twice.
    pub fn of(tz: Tz, local: NaiveDateTime) -> Option<Repeat> {
        let (first, second) = time::both_readings(tz, local)?;
        let lo = first.and_utc().timestamp();
        let hi = second.and_utc().timestamp() + 1;
        Some(Repeat::at(tz, offset_drop(tz, lo, hi)))
    }

    /// The repeats whose change falls in [`from`, `to`) (UTC), in order.
    pub fn between(tz: Tz, from: NaiveDateTime, to: NaiveDateTime) -> Vec<Repeat> {
        const STEP: i64 = 900;
        let (mut t, end) = (from.and_utc().timestamp(), to.and_utc().timestamp());
        let mut out = Vec::new();
        while t < end {
            if offset(tz, t + STEP) < offset(tz, t) {
                let r = Repeat::at(tz, offset_drop(tz, t, t + STEP));
                if from <= r.change && r.change < to {
                    out.push(r);
                }
            }
            t += STEP;
        }
        out
    }

    /// How long the repeated span is (an hour, or 30 minutes on Lord Howe Island).
    pub fn length(&self) -> Duration {
        self.wall_end - self.wall_start
    }

    /// The earliest start (UTC) of a row read with the agent's other rows of this repeat: `max_session_hours`,
    /// the span and an hour before the change. Rows starting earlier are read alone (no window reads back
    /// further for this repeat).
    pub fn floor(&self, max_session_hours: u32) -> NaiveDateTime {
        self.change
            - self.length()
            - Duration::hours(i64::from(max_session_hours))
            - Duration::hours(1)
    }

    /// Whether a row starting at `start` (its first reading, UTC) is read with the agent's other rows of
    /// this repeat.
    pub fn clusters(&self, start: NaiveDateTime, max_session_hours: u32) -> bool {
        start >= self.floor(max_session_hours)
    }

    fn at(tz: Tz, change: i64) -> Repeat {
        let (before, after) = (offset(tz, change - 1), offset(tz, change));
        let change = utc(change);
        Repeat {
            change,
            wall_start: change + Duration::seconds(after),
            wall_end: change + Duration::seconds(before),
        }
    }
}

fn utc(secs: i64) -> NaiveDateTime {
    DateTime::from_timestamp(secs, 0)
        .expect("in range")
        .naive_utc()
}

/// Seconds east of UTC at the Unix second `secs`.
fn offset(tz: Tz, secs: i64) -> i64 {
    i64::from(
        tz.offset_from_utc_datetime(&utc(secs))
            .fix()
            .local_minus_utc(),
    )
}

/// The second in (`lo`, `hi`] at which the offset of `lo` ends.
fn offset_drop(tz: Tz, mut lo: i64, mut hi: i64) -> i64 {
    let before = offset(tz, lo);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset(tz, mid) == before {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// A row that touches a repeated hour, as the source wrote it, for `resolve_repeated_hour`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepeatedHourSession {
    pub agent_id: String,
    pub activity_code: Option<String>,
    pub start: SourceTime,
    pub end: Option<SourceTime>,
}

/// A reading of a row: its start and end in UTC.
pub type Reading = (NaiveDateTime, Option<NaiveDateTime>);

/// Steps of the search for a reading without overlap, per agent and repeated hour, before it settles for
/// the fewest overlaps found row by row (a few dozen rows of one agent in one hour need a few hundred).
const SEARCH_BUDGET: u32 = 200_000;

/// Reads the rows that touch a repeated hour, in any order of the source's rows; the reading of each
/// depends only on the rows of its agent that touch the same repeated hour (its "cluster"):
/// - a time that happens twice is read as its first occurrence or its second; of all the ways to read the
///   cluster, the one taken is the first, row by row in the order of their wall start (then wall end, an
///   open end last, then code), trying the first occurrence before the second, in which no two rows of
///   the agent overlap or start at the same instant and no row ends before it starts;
/// - if there is no such way, each row in that order takes the reading that overlaps the fewest rows read
///   before it (the merge then rejects a row starting at the same instant as another as a duplicate);
/// - a row that starts more than `max_session_hours` (and the repeated span, and an hour) before the
///   change is read alone (first occurrence, an end not before its start): windows read back that far.
///
/// Rows that touch no repeated hour are read as `validate` reads them. Returns the UTC start and end of
/// each row, in the order given.
pub fn resolve_repeated_hour(
    tz: Tz,
    max_session_hours: u32,
    sessions: &[RepeatedHourSession],
) -> Vec<Reading> {
    let mut out: Vec<Reading> = sessions.iter().map(|s| simple(tz, s)).collect();
    let mut repeats: BTreeMap<NaiveDateTime, Option<Repeat>> = BTreeMap::new();
    let mut clusters: BTreeMap<(&str, NaiveDateTime), Vec<usize>> = BTreeMap::new();
    for (i, s) in sessions.iter().enumerate() {
        let repeat = [Some(s.start), s.end].into_iter().flatten().find_map(|t| {
            let SourceTime::Local(l) = t else { return None };
            *repeats.entry(l).or_insert_with(|| Repeat::of(tz, l))
        });
        let Some(repeat) = repeat else { continue };
        if repeat.clusters(out[i].0, max_session_hours) {
            let key = (s.agent_id.as_str(), repeat.change);
            clusters.entry(key).or_default().push(i);
        }
    }
    for mut rows in clusters.into_values() {
        rows.sort_by(|&a, &b| order_key(&sessions[a]).cmp(&order_key(&sessions[b])));
        let options: Vec<Vec<Reading>> = rows.iter().map(|&i| readings(tz, &sessions[i])).collect();
        for (&i, pick) in rows.iter().zip(search(&options)) {
            if let Some(p) = pick {
                out[i] = p;
            }
        }
    }
    out
}

/// The order in which a cluster's rows are read: wall start, wall end (an open end last), code.
fn order_key(s: &RepeatedHourSession) -> (SourceTime, bool, Option<SourceTime>, Option<&str>) {
    (s.start, s.end.is_none(), s.end, s.activity_code.as_deref())
}

/// The reading of a row on its own: a start that happens twice as its first occurrence, an end as its
/// first unless that is before the start, a start the clocks jumped over as `validate` reads it.
fn simple(tz: Tz, s: &RepeatedHourSession) -> Reading {
    let start = time::to_utc(tz, s.start, Fold::First).0;
    let end = s.end.map(|e| time::to_utc(tz, e, Fold::NotBefore(start)).0);
    match (s.start, end) {
        (SourceTime::Local(l), Some(e)) if e < start && time::in_gap(tz, l) => {
            (time::gap_reading(tz, l, Side::Change), end)
        }
        _ => (start, end),
    }
}

/// Every reading of a row with no end before its start, in the order they are tried: the first
/// occurrence of its start before the second, then of its end.
fn readings(tz: Tz, s: &RepeatedHourSession) -> Vec<Reading> {
    let both = |t: SourceTime| match t {
        SourceTime::Local(l) => match time::both_readings(tz, l) {
            Some((a, b)) => vec![a, b],
            None => vec![time::to_utc(tz, t, Fold::First).0],
        },
        SourceTime::Utc(u) => vec![u],
    };
    let ends: Vec<Option<NaiveDateTime>> = match s.end {
        None => vec![None],
        Some(e) => both(e).into_iter().map(Some).collect(),
    };
    let gap = match s.start {
        SourceTime::Local(l) if time::in_gap(tz, l) => Some(l),
        _ => None,
    };
    let mut out = Vec::new();
    for start in both(s.start) {
        for &end in &ends {
            match (gap, end) {
                (_, Some(e)) if e >= start => out.push((start, end)),
                (_, None) => out.push((start, None)),
                // A start the clocks jumped over whose end precedes it: the instant of the change.
                (Some(l), Some(e)) => {
                    let change = time::gap_reading(tz, l, Side::Change);
                    if e >= change {
                        out.push((change, end));
                    }
                }
                (None, Some(_)) => {}
            }
        }
    }
    out
}

/// Two readings of rows of one agent that cannot both stand: the same start, or overlapping.
fn clash(a: &Reading, b: &Reading) -> bool {
    let ends_after = |r: &Reading, t: NaiveDateTime| r.1.is_none_or(|e| e > t);
    a.0 == b.0 || (ends_after(b, a.0) && ends_after(a, b.0))
}

/// For each row (its readings in `options`), the reading taken (see `resolve_repeated_hour`); `None` for
/// a row with no reading, which is left to the merge to reject.
fn search(options: &[Vec<Reading>]) -> Vec<Option<Reading>> {
    let mut pick: Vec<Option<Reading>> = vec![None; options.len()];
    let mut budget = SEARCH_BUDGET;
    if depth_first(options, 0, &mut pick, &mut budget) != Some(true) {
        // None without overlap (or not found in time): the fewest overlaps, row by row.
        for k in 0..options.len() {
            let clashes = |r: &Reading| pick[..k].iter().flatten().filter(|p| clash(p, r)).count();
            pick[k] = options[k].iter().min_by_key(|r| clashes(r)).copied();
        }
    }
    pick
}

/// Extends `pick[..k]` to a reading of every row without a clash, trying readings in order. `None`
/// when the budget ran out.
fn depth_first(
    options: &[Vec<Reading>],
    k: usize,
    pick: &mut [Option<Reading>],
    budget: &mut u32,
) -> Option<bool> {
    if k == options.len() {
        return Some(true);
    }
    if options[k].is_empty() {
        pick[k] = None;
        return depth_first(options, k + 1, pick, budget);
    }
    for r in &options[k] {
        *budget = budget.checked_sub(1)?;
        if pick[..k].iter().flatten().any(|p| clash(p, r)) {
            continue;
        }
        pick[k] = Some(*r);
        match depth_first(options, k + 1, pick, budget) {
            Some(false) => {}
            found_or_out => return found_or_out,
        }
    }
    pick[k] = None;
    Some(false)
}

#[cfg(test)]
mod tests;
