//! The hour the clocks go back: rows with a local time that happens twice are held until the end of the
//! result, then read again together with the agent's other rows of that hour
//! (`sessions::resolve_repeated_hour`) and merged by key.

use chrono::{Duration, NaiveDateTime};
use chrono_tz::Tz;

use super::merge::{Core, Lookup, ValidRow};
use super::queue::Queue;
use crate::sessions::{self, Field, RawRow, SourceSession, SourceTime};
use crate::store::models::{micros, SessionKey};
use crate::window::Bounds;

/// A row held back until the end of the result because a local time of it happens twice.
pub(super) struct RepeatedHourRow {
    row_no: u64,
    agent_id: String,
    activity_code: Option<String>,
    start: SourceTime,
    end: Option<SourceTime>,
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

    fn raw(&self) -> RawRow<'_> {
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

/// The UTC spans of `bounds` (with its lookback) in which local times happen twice, in order.
pub(super) fn repeated_spans(tz: Tz, bounds: &Bounds) -> Vec<(i64, i64)> {
    let step = Duration::minutes(15);
    let mut spans: Vec<(i64, i64)> = Vec::new();
    let mut t = bounds.lookback_start - Duration::hours(3);
    while t < bounds.end + Duration::hours(3) {
        if let Some((first, second)) = sessions::time::both_readings(tz, t) {
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

impl Core<'_> {
    /// The rows of the repeated hour, read again together and merged. A full sync (`BeforeWindow`) has
    /// the stored sessions of the window already; an incremental run (`Everything`) looks them all up.
    pub fn finish_repeated_hour(&mut self, queue: &Queue, lookup: Lookup) -> anyhow::Result<()> {
        let rows = std::mem::take(&mut self.repeated);
        if rows.is_empty() {
            return Ok(());
        }
        if lookup == Lookup::Everything {
            // An incremental run has loaded only the agent IDs of rows merged so far.
            let names = rows.iter().map(|r| r.agent_id.clone());
            self.names
                .load_named(queue, crate::store::models::NameKind::AgentId, names)?;
        }
        self.load_both_readings(queue, &rows, lookup)?;
        let times = self.read_again(&rows);
        let mut valid = Vec::with_capacity(rows.len());
        for (r, (start, end)) in rows.iter().zip(times) {
            let raw = r.raw();
            let checked = sessions::checked_times(start, end).and_then(|(started_at, ended_at)| {
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
                match lookup {
                    Lookup::BeforeWindow => self.plan.window.outside(&s).map_or(Ok(s), Err),
                    Lookup::Everything => Ok(s),
                }
            });
            match checked {
                Ok(s) => valid.push(ValidRow {
                    no: r.row_no,
                    raw,
                    s,
                }),
                Err(why) => self.reject(r.row_no, &raw, why),
            }
        }
        self.merge_keyed(queue, valid, lookup)?;
        self.flush(queue, true)
    }

    /// Which reading of an ambiguous start is already stored: both candidates not loaded yet are looked
    /// up, so that every window reads a row the same way.
    fn load_both_readings(
        &mut self,
        queue: &Queue,
        rows: &[RepeatedHourRow],
        lookup: Lookup,
    ) -> anyhow::Result<()> {
        let tz = self.zone.tz();
        let window_start = self.plan.window.utc.start;
        let mut probe = Vec::new();
        for r in rows {
            let (SourceTime::Local(local), Some(agent)) =
                (r.start, self.names.agents.get(&r.agent_id))
            else {
                continue;
            };
            let Some((first, second)) = sessions::time::both_readings(tz, local) else {
                continue;
            };
            let id = self.names.agents.id(agent);
            for t in [first, second] {
                let key = SessionKey::new(t, id);
                if (lookup == Lookup::Everything || t < window_start)
                    && !self.stored.contains_key(&key)
                {
                    probe.push(key);
                }
            }
        }
        self.load_into_stored(queue, probe)
    }

    /// The UTC times of the held rows, read together.
    fn read_again(&self, rows: &[RepeatedHourRow]) -> Vec<(NaiveDateTime, Option<NaiveDateTime>)> {
        let items: Vec<sessions::RepeatedHourSession> = rows
            .iter()
            .map(|r| sessions::RepeatedHourSession {
                agent_id: r.agent_id.clone(),
                start: r.start,
                end: r.end,
            })
            .collect();
        let stored_reading = |agent: &str, first: NaiveDateTime, second: NaiveDateTime| {
            let id = self.names.agents.id(self.names.agents.get(agent)?);
            let has = |t: NaiveDateTime| {
                let key = SessionKey::new(t, id);
                self.stored.contains_key(&key) || self.inserted.contains(&key)
            };
            match (has(first), has(second)) {
                (true, false) => Some(first),
                (false, true) => Some(second),
                _ => None,
            }
        };
        sessions::resolve_repeated_hour(self.zone.tz(), &items, &stored_reading)
    }
}
