//! The window a sync covers: local days of a system, and the same span as the source query sees it (local
//! wall time) and as the store keeps it (UTC). Pure: no I/O.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::sessions::{self, Field, Fold, Rejection, SourceSession};

/// The local days a sync covers, first and last included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Days {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl Days {
    pub fn one(day: NaiveDate) -> Days {
        Days {
            first: day,
            last: day,
        }
    }

    /// The local day of `now` in the zone `tz`.
    pub fn of(tz: Tz, now: DateTime<Utc>) -> Days {
        Days::one(now.with_timezone(&tz).date_naive())
    }

    /// Today in the zone `tz`.
    pub fn today(tz: Tz) -> Days {
        Days::of(tz, Utc::now())
    }
}

/// Three instants of a window on one clock: sessions may start from `lookback_start` (up to
/// `max_session_hours` before the window) and still overlap [`start`, `end`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub lookback_start: NaiveDateTime,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

/// A sync window: its days, in local wall time for the source query, in UTC for the store.
///
/// `local` and `utc` are what the sync owns: the stored sessions it compares, writes and deletes. `read`
/// and `read_utc` are what the query is given: the same, widened around an hour the clocks go back that
/// rows of the window may touch, so that every window reads all of an agent's rows of that hour and
/// reads them the same way (`sessions::resolve_repeated_hour`). Rows read only because of the widening
/// are context: they are synced by their own day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub days: Days,
    pub local: Bounds,
    pub utc: Bounds,
    pub read: Bounds,
    pub read_utc: Bounds,
    max_session_hours: u32,
}

/// Where a valid row falls for a window.
#[derive(Debug)]
pub enum Place {
    /// A session of the window.
    Own,
    /// Read for the rows around a repeated hour; not the window's to write.
    Context,
    /// Not a row the window's query should return.
    Outside(Rejection),
}

impl Window {
    /// From local midnight of `days.first` to local midnight after `days.last`.
    pub fn new(tz: Tz, days: Days, max_session_hours: u32) -> Window {
        let start = days.first.and_time(NaiveTime::MIN);
        let end = (days.last + Duration::days(1)).and_time(NaiveTime::MIN);
        let local = Bounds {
            lookback_start: start - Duration::hours(i64::from(max_session_hours)),
            start,
            end,
        };
        let utc_of = |b: Bounds| Bounds {
            lookback_start: sessions::local_to_utc(tz, b.lookback_start, Fold::First),
            start: sessions::local_to_utc(tz, b.start, Fold::First),
            end: sessions::local_to_utc(tz, b.end, Fold::First),
        };
        let read = around_repeats(tz, local, max_session_hours);
        Window {
            days,
            local,
            utc: utc_of(local),
            read,
            read_utc: utc_of(read),
            max_session_hours,
        }
    }

    /// The window reaching back to the instant `t` (an open session stored that long ago), if `t` is
    /// before its lookback: the query then returns that session's row, and a sync whose window holds its
    /// end closes it. The local lookback is an hour before `t`'s wall time; the UTC one is that wall
    /// time's first reading, so that every row the query returns is inside the window.
    pub fn reaching_back_to(self, tz: Tz, t: NaiveDateTime) -> Window {
        if t >= self.utc.lookback_start {
            return self;
        }
        let wall = t.and_utc().with_timezone(&tz).naive_local();
        // An hour earlier: a start the source wrote in a spring gap is stored an hour before its wall time.
        let wall = wall
            - Duration::hours(1)
            - Duration::nanoseconds(i64::from(wall.and_utc().timestamp_subsec_nanos()));
        let mut w = self;
        w.local.lookback_start = wall;
        w.utc.lookback_start = sessions::local_to_utc(tz, wall, Fold::First).min(t);
        w.read.lookback_start = w.read.lookback_start.min(wall);
        w.read_utc.lookback_start = w.read_utc.lookback_start.min(w.utc.lookback_start);
        w
    }

    /// The window with its read end `max_session_hours` later (events: the logout or state change that
    /// ends a session open at the window's end is read, so every window pairs it the same way).
    pub fn reading_ahead(self, tz: Tz) -> Window {
        let mut w = self;
        w.read.end += Duration::hours(i64::from(self.max_session_hours));
        w.read_utc.end = sessions::local_to_utc(tz, w.read.end, Fold::First);
        w
    }

    /// Whether the query reads every row that touches the repeated hour `r` (`around_repeats`), so that
    /// rows of it are read as every other window reads them.
    pub fn reads_around(&self, r: &sessions::Repeat) -> bool {
        let (start, end, lookback) = around(r, self.max_session_hours);
        self.read.start <= start && self.read.end >= end && self.read.lookback_start <= lookback
    }

    /// Whether a valid row is a session of the window, a row read around a repeated hour, or one the
    /// window's query should not have returned.
    pub fn place(&self, s: &SourceSession<'_>) -> Place {
        match (outside(&self.utc, s), outside(&self.read_utc, s)) {
            (None, _) => Place::Own,
            (Some(_), None) => Place::Context,
            (Some(why), Some(_)) => Place::Outside(why),
        }
    }
}

/// Why a session is not within `b`, if it is not.
fn outside(b: &Bounds, s: &SourceSession<'_>) -> Option<Rejection> {
    let reason = if s.started_at >= b.end {
        "starts after the window (the SQL file's WHERE clause should exclude it)"
    } else if s.started_at < b.lookback_start {
        "starts more than max_session_hours before the window (raise max_session_hours, or fix the SQL file's WHERE clause)"
    } else if s.started_at < b.start && s.ended_at.is_some_and(|e| e < b.start) {
        "ends before the window starts (the SQL file's WHERE clause should exclude it)"
    } else {
        return None;
    };
    Some(Rejection::new(Field::StartedAt, reason))
}

/// The bounds a window's query is given: `local`, widened to hold every row that touches an hour the
/// clocks go back, if a row of the window may touch it (its span ends after the lookback and starts
/// less than `max_session_hours` after the window's end). All of an agent's rows with a time in that
/// hour then come in the result: from a minute before the span to a minute after it, and starting up
/// to `max_session_hours` and two hours before it (the rows `resolve_repeated_hour` reads together).
fn around_repeats(tz: Tz, local: Bounds, max_session_hours: u32) -> Bounds {
    let hours = Duration::hours(i64::from(max_session_hours));
    let utc = |t| sessions::local_to_utc(tz, t, Fold::First);
    let from = utc(local.lookback_start) - Duration::days(1);
    let to = utc(local.end) + hours + Duration::days(1);
    let mut read = local;
    for r in sessions::Repeat::between(tz, from, to) {
        if r.wall_end > local.lookback_start && r.wall_start < local.end + hours {
            let (start, end, lookback) = around(&r, max_session_hours);
            read.start = read.start.min(start);
            read.end = read.end.max(end);
            read.lookback_start = read.lookback_start.min(lookback);
        }
    }
    read
}

/// The local start, end and lookback that read every row touching the repeated hour `r`.
fn around(
    r: &sessions::Repeat,
    max_session_hours: u32,
) -> (NaiveDateTime, NaiveDateTime, NaiveDateTime) {
    let minute = Duration::minutes(1);
    let hours = Duration::hours(i64::from(max_session_hours));
    (
        r.wall_start - minute,
        r.wall_end + minute,
        r.wall_start - hours - Duration::hours(2),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn a_dst_day_is_23_or_25_hours_in_utc() {
        let paris = chrono_tz::Europe::Paris;
        let spring = Window::new(paris, Days::one(at("2026-03-29 00:00").date()), 24);
        assert_eq!(spring.utc.start, at("2026-03-28 23:00"));
        assert_eq!(spring.utc.end, at("2026-03-29 22:00"));
        assert_eq!(spring.local.lookback_start, at("2026-03-28 00:00"));
        let autumn = Window::new(paris, Days::one(at("2026-10-25 00:00").date()), 24);
        assert_eq!(autumn.utc.end - autumn.utc.start, Duration::hours(25));
    }

    #[test]
    fn a_window_reaches_back_to_an_old_open_session_and_no_further() {
        let paris = chrono_tz::Europe::Paris;
        let w = Window::new(paris, Days::one(at("2026-01-16 00:00").date()), 24);
        let back = w.reaching_back_to(paris, at("2026-01-13 19:00"));
        assert_eq!(back.local.lookback_start, at("2026-01-13 19:00"));
        assert_eq!(back.utc.lookback_start, at("2026-01-13 18:00"));
        assert_eq!((back.utc.start, back.utc.end), (w.utc.start, w.utc.end));
        assert_eq!(w.reaching_back_to(paris, at("2026-01-15 12:00")), w);
    }

    #[test]
    fn the_day_of_an_instant_is_the_local_day() {
        let now = at("2026-01-14 23:30").and_utc();
        assert_eq!(
            Days::of(chrono_tz::UTC, now).first,
            at("2026-01-14 00:00").date()
        );
        assert_eq!(
            Days::of(chrono_tz::Europe::Paris, now).first,
            at("2026-01-15 00:00").date()
        );
    }
}
