//! The hour the clocks go back: the spans of a window where local times happen twice, and the rows held
//! until the end of the result because a local time of theirs does (`Core::finish_repeated_hour` reads
//! them again together with `sessions::resolve_repeated_hour` and merges them by key).

use chrono::{Duration, NaiveDateTime};
use chrono_tz::Tz;

use super::merge::{Core, ValidRow};
use super::queue::Queue;
use super::ties;
use crate::sessions::{self, Field, RawRow, SourceSession, SourceTime};
use crate::store::models::{micros, SessionKey};
use crate::window::{Bounds, Place};

impl Core<'_> {
    /// The rows held for the end of a full sync's result (the repeated hour, the spring gap), read
    /// together (`sessions::resolve_repeated_hour`), placed, their ties settled over every row read
    /// (context rows too, so that every window keeps the same one), and merged by key with the stored
    /// sessions of those hours, loaded with the stored window.
    pub fn finish_repeated_hour(&mut self, queue: &Queue) -> anyhow::Result<()> {
        let rows = std::mem::take(&mut self.repeated);
        if rows.is_empty() {
            return Ok(());
        }
        let (tz, hours) = (self.zone.tz(), self.plan.system.max_session_hours);
        let items: Vec<sessions::RepeatedHourSession> = rows
            .iter()
            .map(|r| sessions::RepeatedHourSession {
                agent_id: r.agent_id.clone(),
                activity_code: r.activity_code.clone(),
                start: r.start,
                end: r.end,
            })
            .collect();
        let times = sessions::resolve_repeated_hour(tz, hours, &items);
        // Every row read, and whether it is the window's own (or context).
        let mut read: Vec<(ValidRow<'_>, bool)> = Vec::with_capacity(rows.len());
        for (r, (start, end)) in rows.iter().zip(times) {
            let raw = r.raw();
            let (started_at, ended_at) = match sessions::checked_times(start, end) {
                Ok(times) => times,
                Err(why) => {
                    // Its times have two readings: keep every stored session of the agent.
                    self.protect(Some(&r.agent_id), None);
                    self.reject(r.row_no, &raw, why);
                    continue;
                }
            };
            let s = SourceSession {
                agent_id: &r.agent_id,
                activity_code: r.activity_code.as_deref(),
                started_at,
                ended_at,
                start: r.start,
                end: r.end,
                in_repeated_hour: true,
                start_repeats: true,
            };
            let own = match self.read_around(r, started_at) {
                // A row of a repeated hour this window did not read all around (a window reaching back
                // to an old open session): its own day's sync reads it.
                false => false,
                true => match self.plan.window.place(&s) {
                    Place::Own => true,
                    Place::Context => false,
                    Place::Outside(why) => {
                        self.protect(Some(&r.agent_id), None);
                        self.reject(r.row_no, &raw, why);
                        continue;
                    }
                },
            };
            let no = r.row_no;
            read.push((ValidRow { no, raw, s }, own));
        }
        read.sort_by(|(a, _), (b, _)| {
            (a.s.agent_id, a.s.started_at)
                .cmp(&(b.s.agent_id, b.s.started_at))
                .then_with(|| ties::kept_first(a, b))
        });
        let mut valid = Vec::with_capacity(read.len());
        let same = |a: &ValidRow<'_>, b: &ValidRow<'_>| {
            (a.s.agent_id, a.s.started_at) == (b.s.agent_id, b.s.started_at)
        };
        let mut i = 0;
        while i < read.len() {
            let (kept, own) = read[i];
            let n = read[i..].iter().take_while(|(v, _)| same(v, &kept)).count();
            for (other, other_own) in &read[i + 1..i + n] {
                if *other_own {
                    self.reject(other.no, &other.raw, ties::tie(&kept, other));
                }
            }
            match own {
                true => valid.push(kept),
                false => self.context_seen(&kept),
            }
            i += n;
        }
        self.merge_keyed(queue, valid)?;
        self.flush(queue, true)
    }

    /// Whether the window read every row of the agent around the repeated hours of `r` that it is read
    /// with (rows read alone need nothing around them).
    fn read_around(&self, r: &RepeatedHourRow, start: NaiveDateTime) -> bool {
        let (tz, hours) = (self.zone.tz(), self.plan.system.max_session_hours);
        [Some(r.start), r.end].iter().flatten().all(|t| match t {
            SourceTime::Local(l) => sessions::Repeat::of(tz, *l).is_none_or(|rep| {
                !rep.clusters(start, hours) || self.plan.window.reads_around(&rep)
            }),
            SourceTime::Utc(_) => true,
        })
    }

    /// A context row whose stored session this window holds (taken from the stored stream): it is not
    /// this window's to delete.
    fn context_seen(&mut self, v: &ValidRow<'_>) {
        if let Some(agent) = self.names.agents.get(v.s.agent_id) {
            let key = SessionKey::new(v.s.started_at, self.names.agents.id(agent));
            if let Some(slot) = self.stored.get_mut(&key) {
                slot.seen = true;
            }
        }
    }
}

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
            too_long: None,
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
