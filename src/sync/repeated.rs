//! The hour the clocks go back: the spans of a window where local times happen twice, and the rows held
//! until the end of the result because a local time of theirs does (`Core::finish_repeated_hour` reads
//! them again together with `sessions::resolve_repeated_hour` and merges them by key).

use chrono::Duration;
use chrono_tz::Tz;

use crate::sessions::{self, Field, RawRow, SourceSession, SourceTime};
use crate::store::models::micros;
use crate::window::Bounds;

/// A row held back until the end of the result because a local time of it happens twice.
pub(super) struct RepeatedHourRow {
    pub row_no: u64,
    pub agent_id: String,
    pub activity_code: Option<String>,
    pub start: SourceTime,
    pub end: Option<SourceTime>,
    /// The four values as read, for `rejected_rows`.
    raw: [Option<String>; 4],
}

impl RepeatedHourRow {
    pub fn new(row_no: u64, raw: &RawRow<'_>, s: &SourceSession<'_>) -> Self {
        RepeatedHourRow {
            row_no,
            agent_id: s.agent_id.to_owned(),
            activity_code: s.activity_code.map(str::to_owned),
            start: s.start,
            end: s.end,
            raw: Field::ALL.map(|f| raw.text(f)),
        }
    }

    pub fn raw(&self) -> RawRow<'_> {
        let b = |i: usize| self.raw[i].as_deref().map(str::as_bytes);
        RawRow {
            agent_id: b(0),
            activity_code: b(1),
            started_at: b(2),
            ended_at: b(3),
            change_key: None,
        }
    }
}

/// The UTC spans of `bounds` (with its lookback) around a change of offset, in order: where local times
/// happen twice (clocks going back), and where the times the clocks jumped over are read (with the offset
/// before the change, from the instant of the change), over which the UTC order of wall times is not the
/// wall order. Rows and stored sessions that start there are merged by key at the
/// end of the result, not in the stream.
pub(super) fn repeated_spans(tz: Tz, bounds: &Bounds) -> Vec<(i64, i64)> {
    use sessions::time::{both_readings, gap_reading, in_gap, Side};
    let step = Duration::minutes(15);
    let mut spans: Vec<(i64, i64)> = Vec::new();
    // From a quarter-hour (every change of offset falls on one), whatever second the lookback is.
    let from = bounds.lookback_start - Duration::hours(3);
    let mut t = from
        - Duration::seconds(from.and_utc().timestamp().rem_euclid(900))
        - Duration::nanoseconds(i64::from(from.and_utc().timestamp_subsec_nanos()));
    while t < bounds.end + Duration::hours(3) {
        let readings = match both_readings(tz, t) {
            Some(both) => Some(both),
            None if in_gap(tz, t) => Some((
                gap_reading(tz, t, Side::Change),
                gap_reading(tz, t, Side::Before),
            )),
            None => None,
        };
        if let Some((first, second)) = readings {
            let (a, b) = (micros(first), micros(second + step));
            match spans.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => spans.push((a, b)),
            }
        }
        t += step;
    }
    spans
}
