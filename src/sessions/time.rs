//! Source timestamps: reading the text a driver returns, and turning a site's local wall time into UTC.
//!
//! Rules (documented for users in docs/time.md):
//! - `YYYY-MM-DD HH:MM[:SS[.fraction]]` (space or `T`) is local wall time of the system's zone;
//! - the same followed by `Z`, `+HH`, `+HHMM` or `+HH:MM` is an instant: its offset is used, the zone is not;
//! - a bare number (`1774746000` or `1774746000.250`) is Unix epoch seconds, an instant;
//! - a local time that occurs twice (clocks go back) is read as its first occurrence, except that the end of
//!   a session which would then fall before its start is read as the second occurrence;
//! - a local time that never occurs (clocks go forward) is read with the offset in force before the change
//!   (RFC 5545 §3.3.5, as PostgreSQL and Python's zoneinfo do): 02:10 on 2026-03-29 in Europe/Paris is
//!   01:10 UTC; except that the start of a session whose end would then fall before it is read as the
//!   instant the clocks changed (`02:30` → `03:10` is 01:00 → 01:10 UTC), so that no row is rejected for it
//!   and the session stays in the day it was written in.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use chrono_tz::Tz;

/// A timestamp as the source wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceTime {
    /// Wall-clock time of the system's zone.
    Local(NaiveDateTime),
    /// An instant (it carried an offset, or was epoch seconds), as naive UTC.
    Utc(NaiveDateTime),
}

/// Reads one timestamp as text. The error says what was expected; the caller names the row and column.
pub fn parse_source_time(text: &str) -> Result<SourceTime, String> {
    parse_source_bytes(text.as_bytes())
}

/// `parse_source_time` on the bytes a driver returned (no UTF-8 check on the hot path: a time is ASCII,
/// and anything else fails here with the value in the message).
pub fn parse_source_bytes(text: &[u8]) -> Result<SourceTime, String> {
    let b = text.trim_ascii();
    let shown = || String::from_utf8_lossy(text).into_owned();
    if !b.is_empty() && b.iter().all(|c| c.is_ascii_digit() || *c == b'.') && b[0] != b'.' {
        // Digits and dots only: ASCII, so valid UTF-8.
        let s = std::str::from_utf8(b).map_err(|e| e.to_string())?;
        return parse_epoch(s).map(SourceTime::Utc);
    }
    let bad = || {
        format!("cannot read {:?} as a time: expected YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM] or epoch seconds", shown())
    };
    if b.len() < 16
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
    {
        return Err(bad());
    }
    let year = digits(&b[0..4]).ok_or_else(bad)? as i32;
    let month = digits(&b[5..7]).ok_or_else(bad)?;
    let day = digits(&b[8..10]).ok_or_else(bad)?;
    let hour = digits(&b[11..13]).ok_or_else(bad)?;
    let minute = digits(&b[14..16]).ok_or_else(bad)?;
    let mut pos = 16;
    let mut second = 0;
    let mut nanos = 0u32;
    if b.len() >= pos + 3 && b[pos] == b':' {
        second = digits(&b[pos + 1..pos + 3]).ok_or_else(bad)?;
        pos += 3;
        if b.len() > pos && b[pos] == b'.' {
            pos += 1;
            let start = pos;
            while pos < b.len() && b[pos].is_ascii_digit() {
                pos += 1;
            }
            let frac = &b[start..pos];
            if frac.is_empty() {
                return Err(bad());
            }
            // Keep nanosecond precision at most; further digits are dropped, not rounded.
            let mut n = 0u32;
            for i in 0..9 {
                n = n * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
            }
            nanos = n;
        }
    }
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| {
        format!(
            "cannot read {:?} as a time: {year:04}-{month:02}-{day:02} is not a date",
            shown()
        )
    })?;
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos).ok_or_else(|| {
        format!(
            "cannot read {:?} as a time: {hour:02}:{minute:02}:{second:02} is not a time of day",
            shown()
        )
    })?;
    let naive = date.and_time(time);
    let rest = b[pos..].trim_ascii_start();
    if rest.is_empty() {
        return Ok(SourceTime::Local(naive));
    }
    let offset_seconds = parse_offset(rest).ok_or_else(bad)?;
    Ok(SourceTime::Utc(
        naive - Duration::seconds(i64::from(offset_seconds)),
    ))
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// `Z`, `+HH`, `+HHMM`, `+HH:MM` (and `-`), as seconds east of UTC.
fn parse_offset(b: &[u8]) -> Option<i32> {
    if b == b"Z" || b == b"z" {
        return Some(0);
    }
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = match b.len() {
        3 => (digits(&b[1..3])?, 0),
        5 => (digits(&b[1..3])?, digits(&b[3..5])?),
        6 if b[3] == b':' => (digits(&b[1..3])?, digits(&b[4..6])?),
        _ => return None,
    };
    if h > 15 || m > 59 {
        return None;
    }
    Some(sign * (h as i32 * 3600 + m as i32 * 60))
}

fn parse_epoch(s: &str) -> Result<NaiveDateTime, String> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let bad = || format!("cannot read {s:?} as epoch seconds");
    if whole.is_empty() || whole.len() > 12 || frac.contains('.') {
        return Err(bad());
    }
    let secs: i64 = whole.parse().map_err(|_| bad())?;
    let mut nanos = 0u32;
    for i in 0..9 {
        nanos = nanos * 10 + frac.as_bytes().get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    DateTime::from_timestamp(secs, nanos)
        .map(|t| t.naive_utc())
        .ok_or_else(bad)
}

/// Which occurrence to take when a local time occurs twice.
#[derive(Clone, Copy, Debug)]
pub enum Fold {
    First,
    /// The first occurrence unless it is before this instant (UTC); then the second.
    NotBefore(NaiveDateTime),
}

/// Local wall time of `tz` to UTC, by the rules at the top of this file.
pub fn local_to_utc(tz: Tz, local: NaiveDateTime, fold: Fold) -> NaiveDateTime {
    local_to_utc_noting_repeats(tz, local, fold).0
}

/// As `local_to_utc`, and whether `local` is in a repeated hour (it happens twice).
pub fn local_to_utc_noting_repeats(
    tz: Tz,
    local: NaiveDateTime,
    fold: Fold,
) -> (NaiveDateTime, bool) {
    use chrono::LocalResult;
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => (t.naive_utc(), false),
        LocalResult::Ambiguous(first, second) => match fold {
            Fold::NotBefore(start) if first.naive_utc() < start => (second.naive_utc(), true),
            _ => (first.naive_utc(), true),
        },
        LocalResult::None => (gap_reading(tz, local, Side::Before), false),
    }
}

/// How a local time that never happens is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// With the offset in force before the clocks went forward (the rule).
    Before,
    /// As the instant the clocks changed (for a start whose end would fall before its reading): within the
    /// day of the change, never before its first instant.
    Change,
}

/// `local`, a time the clocks jumped over, read as `side` says.
pub fn gap_reading(tz: Tz, local: NaiveDateTime, side: Side) -> NaiveDateTime {
    match side {
        // Zones do not change twice within a day: a day before is before the change.
        Side::Before => {
            let before = tz.offset_from_utc_datetime(&(local - Duration::days(1)));
            local - Duration::seconds(i64::from(before.fix().local_minus_utc()))
        }
        Side::Change => gap_transition(tz, local),
    }
}

/// The instant the clocks jumped over `local`: the first whole second whose wall time is not before it.
fn gap_transition(tz: Tz, local: NaiveDateTime) -> NaiveDateTime {
    let at = |secs: i64| {
        DateTime::from_timestamp(secs, 0)
            .expect("in range")
            .naive_utc()
    };
    let wall = |secs: i64| {
        at(secs)
            + Duration::seconds(i64::from(
                tz.offset_from_utc_datetime(&at(secs))
                    .fix()
                    .local_minus_utc(),
            ))
    };
    // Offsets a day after and before (zones do not change twice in a day) bound the jump.
    let offset_near = |days: i64| {
        let probe = local + Duration::days(days);
        i64::from(tz.offset_from_utc_datetime(&probe).fix().local_minus_utc())
    };
    let local_secs = local.and_utc().timestamp();
    let mut lo = local_secs - offset_near(1) - 1;
    let mut hi = local_secs - offset_near(-1) + 1;
    // Invariant: wall time at lo is before `local`, at hi it is not.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if wall(mid) < local {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    at(hi)
}

/// Whether the clocks of `tz` change (DST) within a year of `around`.
pub fn changes_clocks(tz: Tz, around: NaiveDateTime) -> bool {
    let offset = |t: NaiveDateTime| tz.offset_from_utc_datetime(&t).fix().local_minus_utc();
    let first = offset(around);
    (1..=12).any(|month| offset(around + Duration::days(31 * month)) != first)
}

/// Whether `local` is a time the clocks jumped over in `tz`.
pub fn in_gap(tz: Tz, local: NaiveDateTime) -> bool {
    matches!(tz.from_local_datetime(&local), chrono::LocalResult::None)
}

/// The two readings of a local time in a repeated hour, or `None` if it happens once.
pub fn both_readings(tz: Tz, local: NaiveDateTime) -> Option<(NaiveDateTime, NaiveDateTime)> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Ambiguous(first, second) => {
            Some((first.naive_utc(), second.naive_utc()))
        }
        _ => None,
    }
}

/// A source time to UTC, and whether it was a local time in a repeated hour.
pub fn to_utc(tz: Tz, t: SourceTime, fold: Fold) -> (NaiveDateTime, bool) {
    match t {
        SourceTime::Utc(u) => (u, false),
        SourceTime::Local(l) => local_to_utc_noting_repeats(tz, l, fold),
    }
}

/// A time zone with a memo of recent local quarter-hours whose offset is fixed, so that converting a day
/// of rows (sorted by time, so neighbours share their quarter-hour) costs a table lookup, not a search
/// of the zone's transitions. Quarter-hours containing or touching a change of offset take the exact path.
pub struct LocalZone {
    tz: Tz,
    /// (quarter-hour since the epoch in local wall time, offset seconds east of UTC), direct-mapped.
    memo: [(i64, i32); 64],
}

/// Seconds in the memo's unit: every offset change in the tz database falls on a quarter-hour.
const QUARTER: i64 = 900;

impl LocalZone {
    pub fn new(tz: Tz) -> LocalZone {
        LocalZone {
            tz,
            memo: [(i64::MIN, 0); 64],
        }
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// `local_to_utc_noting_repeats`, with the memo.
    pub fn local_to_utc(&mut self, local: NaiveDateTime, fold: Fold) -> (NaiveDateTime, bool) {
        let secs = local.and_utc().timestamp();
        let quarter = secs.div_euclid(QUARTER);
        let slot = &mut self.memo[(quarter & 63) as usize];
        if slot.0 == quarter {
            return (local - Duration::seconds(i64::from(slot.1)), false);
        }
        if let Some(offset) = fixed_offset_of_quarter(self.tz, local, secs - quarter * QUARTER) {
            *slot = (quarter, offset);
            return (local - Duration::seconds(i64::from(offset)), false);
        }
        local_to_utc_noting_repeats(self.tz, local, fold)
    }

    pub fn to_utc(&mut self, t: SourceTime, fold: Fold) -> (NaiveDateTime, bool) {
        match t {
            SourceTime::Utc(u) => (u, false),
            SourceTime::Local(l) => self.local_to_utc(l, fold),
        }
    }
}

/// The offset of the quarter-hour holding `local` if every local time in it (and at both of its ends)
/// occurs exactly once with that offset.
fn fixed_offset_of_quarter(tz: Tz, local: NaiveDateTime, into_quarter: i64) -> Option<i32> {
    use chrono::LocalResult;
    let start = local - Duration::seconds(into_quarter);
    let single = |t: NaiveDateTime| match tz.from_local_datetime(&t) {
        LocalResult::Single(d) => Some(d.offset().fix().local_minus_utc()),
        _ => None,
    };
    let a = single(start)?;
    let b = single(start + Duration::seconds(QUARTER))?;
    (a == b).then_some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    #[test]
    fn reads_the_formats_drivers_return() {
        assert_eq!(
            parse_source_time("2026-03-29 01:30:00"),
            Ok(SourceTime::Local(dt("2026-03-29 01:30:00")))
        );
        assert_eq!(
            parse_source_time("2026-03-29T01:30"),
            Ok(SourceTime::Local(dt("2026-03-29 01:30:00")))
        );
        assert_eq!(
            parse_source_time("2026-03-29 01:30:00.123456"),
            Ok(SourceTime::Local(dt("2026-03-29 01:30:00.123456")))
        );
        assert_eq!(
            parse_source_time("2026-03-29 01:30:00+02"),
            Ok(SourceTime::Utc(dt("2026-03-28 23:30:00")))
        );
        assert_eq!(
            parse_source_time("2026-03-29 01:30:00-05:30"),
            Ok(SourceTime::Utc(dt("2026-03-29 07:00:00")))
        );
        assert_eq!(
            parse_source_time("2026-03-29 01:30:00Z"),
            Ok(SourceTime::Utc(dt("2026-03-29 01:30:00")))
        );
        assert_eq!(
            parse_source_time("1774746000"),
            Ok(SourceTime::Utc(dt("2026-03-29 01:00:00")))
        );
        assert_eq!(
            parse_source_time("1774746000.5"),
            Ok(SourceTime::Utc(dt("2026-03-29 01:00:00.5")))
        );
    }

    #[test]
    fn the_memo_converts_like_the_exact_rule_around_both_changes() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        let mut zone = LocalZone::new(tz);
        let mut t = dt("2026-03-28 22:00:00");
        while t < dt("2026-10-26 04:00:00") {
            for fold in [Fold::First, Fold::NotBefore(t - Duration::hours(1))] {
                assert_eq!(
                    zone.local_to_utc(t, fold),
                    local_to_utc_noting_repeats(tz, t, fold),
                    "{t}"
                );
            }
            // Past the spring change, jump to the autumn one.
            t = if t == dt("2026-03-29 05:00:00") {
                dt("2026-10-24 22:00:00")
            } else {
                t + Duration::seconds(420)
            };
        }
    }

    #[test]
    fn refuses_garbage_with_the_value_in_the_message() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01 10:00:00",
            "2026-02-30 10:00:00",
            "2026-01-01 25:00:00",
            "2026-01-01",
            "2026-01-01 10:00:00 CET",
            "1.2.3",
        ] {
            let err = parse_source_time(bad).unwrap_err();
            assert!(
                err.contains(&format!("{bad:?}")) || bad.is_empty(),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn zones_with_and_without_clock_changes() {
        let at = dt("2026-06-01 00:00:00");
        assert!(changes_clocks("Europe/Paris".parse().unwrap(), at));
        assert!(changes_clocks("America/Santiago".parse().unwrap(), at));
        assert!(!changes_clocks("UTC".parse().unwrap(), at));
        assert!(!changes_clocks("Asia/Tokyo".parse().unwrap(), at));
    }

    #[test]
    fn paris_spring_gap_reads_with_the_offset_before_the_change() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        assert_eq!(
            local_to_utc(tz, dt("2026-03-29 01:59:59"), Fold::First),
            dt("2026-03-29 00:59:59")
        );
        assert_eq!(
            local_to_utc(tz, dt("2026-03-29 02:00:00"), Fold::First),
            dt("2026-03-29 01:00:00")
        );
        assert_eq!(
            local_to_utc(tz, dt("2026-03-29 02:10:00"), Fold::First),
            dt("2026-03-29 01:10:00")
        );
        assert_eq!(
            local_to_utc(tz, dt("2026-03-29 02:30:00"), Fold::First),
            dt("2026-03-29 01:30:00")
        );
        assert!(in_gap(tz, dt("2026-03-29 02:30:00")));
        assert_eq!(
            gap_reading(tz, dt("2026-03-29 02:30:00"), Side::Change),
            dt("2026-03-29 01:00:00")
        );
        // Lord Howe moves by 30 minutes, Havana at midnight.
        let lord_howe: Tz = "Australia/Lord_Howe".parse().unwrap();
        assert_eq!(
            local_to_utc(lord_howe, dt("2026-10-04 02:10:00"), Fold::First),
            dt("2026-10-03 15:40:00")
        );
        let havana: Tz = "America/Havana".parse().unwrap();
        assert_eq!(
            local_to_utc(havana, dt("2026-03-08 00:00:00"), Fold::First),
            dt("2026-03-08 05:00:00")
        );
        assert_eq!(
            local_to_utc(tz, dt("2026-03-29 03:00:00"), Fold::First),
            dt("2026-03-29 01:00:00")
        );
    }

    #[test]
    fn paris_autumn_overlap_takes_the_first_occurrence_unless_an_end_would_precede_its_start() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        // 02:40 happens at 00:40 UTC (summer time) and again at 01:40 UTC.
        assert_eq!(
            local_to_utc(tz, dt("2026-10-25 02:40:00"), Fold::First),
            dt("2026-10-25 00:40:00")
        );
        // A pause from 02:40 (first pass) to 02:10 (second pass) ends at 01:10 UTC.
        let start = dt("2026-10-25 00:40:00");
        assert_eq!(
            local_to_utc(tz, dt("2026-10-25 02:10:00"), Fold::NotBefore(start)),
            dt("2026-10-25 01:10:00")
        );
        // An end after its start in the first pass stays in the first pass.
        assert_eq!(
            local_to_utc(tz, dt("2026-10-25 02:50:00"), Fold::NotBefore(start)),
            dt("2026-10-25 00:50:00")
        );
        assert_eq!(
            local_to_utc(tz, dt("2026-10-25 03:00:00"), Fold::First),
            dt("2026-10-25 02:00:00")
        );
    }
}
