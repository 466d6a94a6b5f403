//! One sync of one external system and window, inside one `import_runs` row: the only place where the
//! source, the rules and the store meet.
//!
//! The merge keeps the stored sessions of the window in memory (16 + 32 bytes each), streams the source in
//! batches, and writes only the difference: new sessions, changed ones, and those the source no longer
//! returns, all in one transaction with the run's counts. A re-run with nothing changed writes no session.

use std::collections::hash_map::Entry;

use anyhow::Context;
use chrono::{Duration, NaiveDate, NaiveDateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use diesel::Connection;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::config::ExternalSystemConfig;
use crate::secrets::redact;
use crate::sessions::{self, Field, Fold, RawRow, Rejection, SourceSession, SourceTime};
use crate::source::{self, query::LocalBounds, Batch};
use crate::store::models::*;
use crate::store::ops::{StoredWindow, WfmOps, PRESENT_ACTIVITY_ID};
use crate::store::{Store, Wfm};

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

    /// Today in the zone `tz`.
    pub fn today(tz: Tz) -> Days {
        Days::one(Utc::now().with_timezone(&tz).date_naive())
    }
}

/// A sync window: local bounds for the source query, UTC bounds for the store.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub days: Days,
    pub local: LocalBounds,
    pub lookback_start: NaiveDateTime,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

impl Window {
    /// From local midnight of `days.first` to local midnight after `days.last`; sessions may start up to
    /// `max_session_hours` before the window and still overlap it.
    pub fn new(tz: Tz, days: Days, max_session_hours: u32) -> Window {
        let window_start = days.first.and_time(chrono::NaiveTime::MIN);
        let window_end = (days.last + Duration::days(1)).and_time(chrono::NaiveTime::MIN);
        let lookback_start = window_start - Duration::hours(i64::from(max_session_hours));
        let utc = |t| sessions::local_to_utc(tz, t, Fold::First);
        Window {
            days,
            local: LocalBounds {
                lookback_start,
                window_start,
                window_end,
            },
            lookback_start: utc(lookback_start),
            start: utc(window_start),
            end: utc(window_end),
        }
    }

    /// Why a session is not one the window's query should have returned, if it is not.
    fn outside(&self, s: &SourceSession<'_>) -> Option<Rejection> {
        let reason = if s.started_at >= self.end {
            "starts after the window (the SQL file's WHERE clause should exclude it)"
        } else if s.started_at < self.lookback_start {
            "starts more than max_session_hours before the window (raise max_session_hours, or fix the SQL file's WHERE clause)"
        } else if s.started_at < self.start && s.ended_at.is_some_and(|e| e < self.start) {
            "ends before the window starts (the SQL file's WHERE clause should exclude it)"
        } else {
            return None;
        };
        Some(Rejection::new(Field::StartedAt, reason))
    }
}

/// What a run did, as stored in `import_runs`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub read: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
    pub rejected: u64,
    pub new_agent_ids: u64,
    pub new_activity_codes: u64,
}

/// A rejected row, for the summary (all of them are in `rejected_rows`).
#[derive(Clone, Debug)]
pub struct RejectedSample {
    pub source_row: u64,
    pub field: &'static str,
    pub reason: String,
}

/// The outcome of a sync of one system, for the summary.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub run_id: i64,
    pub system: String,
    pub days: Days,
    pub counts: Counts,
    pub new_activity_codes: Vec<String>,
    pub new_agent_ids: Vec<String>,
    pub unmapped_agent_ids: i64,
    pub rejected: Vec<RejectedSample>,
    /// Sessions of an earlier day stored open that the source no longer returns for this window, and the
    /// earliest local day they began: a sync of that day closes them.
    pub stale_open: usize,
    pub stale_open_since: Option<NaiveDate>,
}

/// How many rejected rows and new names a report keeps for display.
const REPORT_SAMPLE: usize = 10;

/// Syncs one system for `days`. The run lock must be held. The `import_runs` row is written whatever
/// happens; on error nothing else is kept and the error (passwords removed) is in that row.
pub fn sync_system(
    store: &mut Store,
    system: &ExternalSystemConfig,
    days: Days,
) -> anyhow::Result<RunReport> {
    let window = Window::new(system.time_zone, days, system.max_session_hours);
    let started_at = now();
    let host = hostname();
    let run = |system_id| NewImportRun {
        external_system_id: system_id,
        first_day: days.first,
        last_day: days.last,
        window_start: window.start,
        window_end: window.end,
        started_at,
        status: "running",
        host: host.clone(),
        pid: i64::from(std::process::id()),
    };
    let tz_name = system.time_zone.name();
    let store_name = store.name().to_owned();
    macro_rules! run_on {
        ($c:expr, $transaction:ident) => {{
            let c = $c;
            let (system_id, run_id) = (|| -> diesel::QueryResult<(i64, i64)> {
                let system_id = c.register_system(&system.name, tz_name)?;
                let abandoned = c.abandon_running(system_id, started_at)?;
                if abandoned > 0 {
                    tracing::warn!(system = %system.name, abandoned, "marked runs left running by a stopped process as abandoned");
                }
                Ok((system_id, c.start_run(&run(system_id))?))
            })()
            .with_context(|| format!("system {:?}: recording the run in {store_name}", system.name))?;
            let result = c.$transaction(|c| merge(c, system, system_id, run_id, &window));
            match result {
                Ok(report) => Ok(report),
                Err(e) => {
                    let text = redact(&format!("{e:#}"));
                    let outcome = RunOutcome {
                        finished_at: Some(now()),
                        status: "failed".into(),
                        error: Some(text),
                        ..Default::default()
                    };
                    if let Err(e2) = c.finish_run(run_id, &outcome) {
                        tracing::error!(system = %system.name, run_id, error = %redact(&e2.to_string()), "could not record the failure in import_runs");
                    }
                    Err(e)
                }
            }
        }};
    }
    match &mut store.conn {
        Wfm::Postgres(c) => run_on!(c, transaction),
        Wfm::Sqlite(c) => run_on!(c, immediate_transaction),
    }
}

/// Now, UTC, to the microsecond (what PostgreSQL keeps).
fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// UTC microseconds since the epoch: the compact form the merge keys on.
fn micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

/// No end / no code in the compact stored form.
const OPEN: i64 = i64::MIN;
const NO_CODE: i64 = 0;

/// A stored session in the window, compactly: 32 bytes.
struct Slot {
    id: i64,
    code: i64,
    end: i64,
    seen: bool,
}

fn slot(s: &StoredSession) -> Slot {
    Slot {
        id: s.id,
        code: s.external_activity_code_id.unwrap_or(NO_CODE),
        end: s.ended_at.map_or(OPEN, micros),
        seen: false,
    }
}

/// A row held back until the end of the result because a local time of it happens twice.
struct RepeatedHourRow {
    row_no: u64,
    agent_id: String,
    activity_code: Option<String>,
    start: SourceTime,
    end: Option<SourceTime>,
    /// The four values as read, for `rejected_rows`.
    raw: [Option<String>; 4],
}

impl RepeatedHourRow {
    fn new(row_no: u64, raw: &RawRow<'_>, s: &SourceSession<'_>) -> Self {
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
        }
    }
}

/// Agent IDs or codes of a system, by their text, with the times this run saw them.
struct Names {
    index: FxHashMap<String, usize>,
    entries: Vec<NameEntry>,
}

struct NameEntry {
    id: i64,
    stored_first: Option<NaiveDateTime>,
    stored_last: Option<NaiveDateTime>,
    run_first: Option<NaiveDateTime>,
    run_last: Option<NaiveDateTime>,
    new: bool,
}

impl Names {
    fn new(
        rows: impl Iterator<Item = (i64, String, Option<NaiveDateTime>, Option<NaiveDateTime>)>,
    ) -> Names {
        let mut n = Names {
            index: FxHashMap::default(),
            entries: Vec::new(),
        };
        for (id, name, first, last) in rows {
            n.add(id, name, first, last, false);
        }
        n
    }

    fn add(
        &mut self,
        id: i64,
        name: String,
        first: Option<NaiveDateTime>,
        last: Option<NaiveDateTime>,
        new: bool,
    ) {
        self.index.insert(name, self.entries.len());
        self.entries.push(NameEntry {
            id,
            stored_first: first,
            stored_last: last,
            run_first: None,
            run_last: None,
            new,
        });
    }

    fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    fn touch(&mut self, i: usize, t: NaiveDateTime) -> i64 {
        let e = &mut self.entries[i];
        e.run_first = Some(e.run_first.map_or(t, |f| f.min(t)));
        e.run_last = Some(e.run_last.map_or(t, |l| l.max(t)));
        e.id
    }

    /// First/last-seen times this run widened.
    fn seen_changes(&self) -> Vec<SeenChange> {
        self.entries
            .iter()
            .filter_map(|e| {
                let (rf, rl) = (e.run_first?, e.run_last?);
                let first = e.stored_first.map_or(rf, |f| f.min(rf));
                let last = e.stored_last.map_or(rl, |l| l.max(rl));
                (Some(first) != e.stored_first || Some(last) != e.stored_last).then_some(
                    SeenChange {
                        id: e.id,
                        first_seen_at: first,
                        last_seen_at: last,
                    },
                )
            })
            .collect()
    }

    fn new_names(&self) -> Vec<String> {
        let mut by_id: Vec<(&String, usize)> = self
            .index
            .iter()
            .map(|(k, v)| (k, *v))
            .filter(|(_, i)| self.entries[*i].new)
            .collect();
        by_id.sort_by_key(|(_, i)| *i);
        by_id.into_iter().map(|(k, _)| k.clone()).collect()
    }
}

/// Writes are sent in statements of this many rows at most, so memory stays bounded by the batch.
const WRITE_BATCH: usize = 10_000;

struct Merge<'w> {
    system_id: i64,
    run_id: i64,
    window: &'w Window,
    tz: Tz,
    agents: Names,
    codes: Names,
    stored: FxHashMap<(i64, i64), Slot>,
    inserted: FxHashSet<(i64, i64)>,
    repeated_hour: Vec<RepeatedHourRow>,
    inserts: Vec<NewSession>,
    updates: Vec<SessionChange>,
    rejected: Vec<NewRejectedRow>,
    counts: Counts,
}

fn merge<C: WfmOps>(
    c: &mut C,
    system: &ExternalSystemConfig,
    system_id: i64,
    run_id: i64,
    window: &Window,
) -> anyhow::Result<RunReport> {
    let agents = c.load_agents(system_id).context("loading agent IDs")?;
    let codes = c.load_codes(system_id).context("loading activity codes")?;
    let mut m = Merge {
        system_id,
        run_id,
        window,
        tz: system.time_zone,
        agents: Names::new(agents.into_iter()),
        codes: Names::new(codes.into_iter()),
        stored: FxHashMap::default(),
        inserted: FxHashSet::default(),
        repeated_hour: Vec::new(),
        inserts: Vec::with_capacity(WRITE_BATCH),
        updates: Vec::new(),
        rejected: Vec::new(),
        counts: Counts::default(),
    };
    let stored_window = StoredWindow {
        external_system_id: system_id,
        lookback_start: window.lookback_start,
        window_start: window.start,
        window_end: window.end,
    };
    c.load_window(&stored_window, &mut |s| {
        m.stored
            .insert((s.external_agent_id, micros(s.started_at)), slot(&s));
    })
    .context("loading the stored sessions of the window")?;
    tracing::debug!(system = %system.name, stored = m.stored.len(), "stored sessions in the window");

    m.counts.read = source::read_sessions(system, &window.local, |batch| m.batch(c, batch))?;
    m.finish_repeated_hour(c)?;
    m.flush(c, true)?;

    let window_start = micros(window.start);
    let gone: Vec<i64> = m
        .stored
        .iter()
        .filter(|((_, start), slot)| !slot.seen && *start >= window_start)
        .map(|(_, slot)| slot.id)
        .collect();
    m.counts.deleted = c
        .delete_sessions(&gone)
        .context("deleting sessions the source no longer returns")? as u64;
    // Sessions of an earlier day stored open that the source no longer says overlap this window: they
    // ended before it (or were removed). Only a sync of their own day can say how; tell the operator.
    let stale_open: Vec<i64> = m
        .stored
        .iter()
        .filter(|((_, start), slot)| !slot.seen && *start < window_start && slot.end == OPEN)
        .map(|((_, start), _)| *start)
        .collect();
    let stale_open_since = stale_open
        .iter()
        .min()
        .and_then(|t| chrono::DateTime::from_timestamp_micros(*t))
        .map(|t| t.with_timezone(&system.time_zone).date_naive());
    if let Some(day) = stale_open_since {
        tracing::warn!(
            system = %system.name,
            sessions = stale_open.len(),
            since = %day,
            "sessions stored open before the window are no longer returned by the source; sync {day} to close them"
        );
    }
    c.update_agents_seen(&m.agents.seen_changes())
        .context("updating first/last-seen times of agent IDs")?;
    c.update_codes_seen(&m.codes.seen_changes())
        .context("updating first/last-seen times of activity codes")?;
    c.insert_rejected(&m.rejected)
        .context("keeping the rejected rows")?;

    let counts = m.counts.clone();
    let outcome = RunOutcome {
        finished_at: Some(now()),
        status: "succeeded".into(),
        rows_read: counts.read as i64,
        sessions_inserted: counts.inserted as i64,
        sessions_updated: counts.updated as i64,
        sessions_deleted: counts.deleted as i64,
        sessions_unchanged: counts.unchanged as i64,
        rows_rejected: counts.rejected as i64,
        new_agent_ids: counts.new_agent_ids as i64,
        new_activity_codes: counts.new_activity_codes as i64,
        error: None,
    };
    c.finish_run(run_id, &outcome)
        .context("recording the run's counts")?;
    let unmapped = c
        .count_unmapped(system_id)
        .context("counting unmapped agent IDs")?;
    let report = RunReport {
        run_id,
        system: system.name.clone(),
        days: window.days,
        counts,
        new_activity_codes: m.codes.new_names(),
        new_agent_ids: m.agents.new_names(),
        unmapped_agent_ids: unmapped,
        stale_open: stale_open.len(),
        stale_open_since,
        rejected: m
            .rejected
            .iter()
            .take(REPORT_SAMPLE)
            .map(|r| RejectedSample {
                source_row: r.source_row as u64,
                field: r.field,
                reason: r.reason.clone(),
            })
            .collect(),
    };
    Ok(report)
}

impl Merge<'_> {
    fn reject(&mut self, row_no: u64, raw: &RawRow<'_>, why: Rejection) {
        self.counts.rejected += 1;
        self.rejected.push(NewRejectedRow {
            import_run_id: self.run_id,
            source_row: row_no as i64,
            field: why.field.name(),
            reason: why.reason,
            agent_id: raw.text(Field::AgentId),
            activity_code: raw.text(Field::ActivityCode),
            started_at: raw.text(Field::StartedAt),
            ended_at: raw.text(Field::EndedAt),
        });
    }

    fn batch<C: WfmOps>(&mut self, c: &mut C, batch: &Batch<'_>) -> anyhow::Result<()> {
        // Pass 1: rules, and the agent IDs and codes this batch brings for the first time.
        let mut valid: Vec<(u64, RawRow<'_>, SourceSession<'_>)> = Vec::with_capacity(batch.len());
        for i in 0..batch.len() {
            let row_no = batch.first_row + i as u64;
            let raw = batch.row(i);
            match sessions::validate(&raw, self.tz) {
                // Rows of the hour the clocks go back wait for the agent's other rows of that hour.
                Ok(s) if s.in_repeated_hour => self
                    .repeated_hour
                    .push(RepeatedHourRow::new(row_no, &raw, &s)),
                Ok(s) => match self.window.outside(&s) {
                    None => valid.push((row_no, raw, s)),
                    Some(why) => self.reject(row_no, &raw, why),
                },
                Err(why) => self.reject(row_no, &raw, why),
            }
        }
        self.merge_valid(c, valid)
    }

    /// The rows of the repeated hour, read again together (`sessions::resolve_repeated_hour`) and merged.
    fn finish_repeated_hour<C: WfmOps>(&mut self, c: &mut C) -> anyhow::Result<()> {
        let rows = std::mem::take(&mut self.repeated_hour);
        if rows.is_empty() {
            return Ok(());
        }
        let items: Vec<sessions::RepeatedHourSession> = rows
            .iter()
            .map(|r| sessions::RepeatedHourSession {
                agent_id: r.agent_id.clone(),
                start: r.start,
                end: r.end,
            })
            .collect();
        // Which reading of an ambiguous start is already stored: fetch both candidates of starts that lie
        // before the window (those in it are loaded already), so every window reads a row the same way.
        let mut probe: Vec<(i64, NaiveDateTime)> = Vec::new();
        for r in &rows {
            let (SourceTime::Local(local), Some(agent)) = (r.start, self.agents.get(&r.agent_id))
            else {
                continue;
            };
            let Some((first, second)) = sessions::time::both_readings(self.tz, local) else {
                continue;
            };
            let id = self.agents.entries[agent].id;
            for t in [first, second] {
                if t < self.window.start && !self.stored.contains_key(&(id, micros(t))) {
                    probe.push((id, t));
                }
            }
        }
        self.load_into_stored(c, &probe, "loading sessions of the repeated hour")?;
        let stored_reading = |agent: &str, first: NaiveDateTime, second: NaiveDateTime| {
            let id = self.agents.entries[self.agents.get(agent)?].id;
            let has = |t: NaiveDateTime| {
                let key = (id, micros(t));
                self.stored.contains_key(&key) || self.inserted.contains(&key)
            };
            match (has(first), has(second)) {
                (true, false) => Some(first),
                (false, true) => Some(second),
                _ => None,
            }
        };
        let times = sessions::resolve_repeated_hour(self.tz, &items, &stored_reading);
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
                };
                self.window.outside(&s).map_or(Ok(s), Err)
            });
            match checked {
                Ok(s) => valid.push((r.row_no, raw, s)),
                Err(why) => self.reject(r.row_no, &raw, why),
            }
        }
        self.merge_valid(c, valid)?;
        self.flush(c, true)
    }

    /// Registers new names, then compares valid rows with the stored window and queues the writes.
    fn merge_valid<C: WfmOps>(
        &mut self,
        c: &mut C,
        valid: Vec<(u64, RawRow<'_>, SourceSession<'_>)>,
    ) -> anyhow::Result<()> {
        self.register_new_names(c, &valid)?;
        self.load_missing_before_window(c, &valid)?;

        // Pass 2: compare with the stored window.
        for (row_no, raw, s) in valid {
            let agent = self.agents.get(s.agent_id).expect("registered above");
            let key = (self.agents.entries[agent].id, micros(s.started_at));
            let fresh = match self.stored.get(&key) {
                Some(slot) => !slot.seen,
                None => !self.inserted.contains(&key),
            };
            if !fresh {
                self.reject(
                    row_no,
                    &raw,
                    Rejection::new(
                        Field::StartedAt,
                        format!("duplicate: agent {} already has a session starting at {} UTC in this result", s.agent_id, s.started_at),
                    ),
                );
                continue;
            }
            let agent_id = self.agents.touch(agent, s.started_at);
            let code_id = s.activity_code.map(|code| {
                let i = self.codes.get(code).expect("registered above");
                self.codes.touch(i, s.started_at)
            });
            let end = s.ended_at.map_or(OPEN, micros);
            match self.stored.entry(key) {
                Entry::Occupied(mut o) => {
                    let slot = o.get_mut();
                    slot.seen = true;
                    if slot.code == code_id.unwrap_or(NO_CODE) && slot.end == end {
                        self.counts.unchanged += 1;
                    } else {
                        self.updates.push(SessionChange {
                            id: slot.id,
                            external_activity_code_id: code_id,
                            ended_at: s.ended_at,
                        });
                    }
                }
                Entry::Vacant(_) => {
                    self.inserted.insert(key);
                    self.inserts.push(NewSession {
                        external_system_id: self.system_id,
                        external_agent_id: agent_id,
                        external_activity_code_id: code_id,
                        started_at: s.started_at,
                        ended_at: s.ended_at,
                    });
                }
            }
        }
        self.flush(c, false)
    }

    /// Adds the stored sessions with these (agent, start) keys to the stored window.
    fn load_into_stored<C: WfmOps>(
        &mut self,
        c: &mut C,
        keys: &[(i64, NaiveDateTime)],
        what: &'static str,
    ) -> anyhow::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        for s in c.load_sessions_at(self.system_id, keys).context(what)? {
            self.stored
                .insert((s.external_agent_id, micros(s.started_at)), slot(&s));
        }
        Ok(())
    }

    /// A session that began before the window and was stored ending before it is not in the stored window;
    /// if the source now says it overlaps the window (a corrected end), fetch it so it is updated, not
    /// inserted twice.
    fn load_missing_before_window<C: WfmOps>(
        &mut self,
        c: &mut C,
        valid: &[(u64, RawRow<'_>, SourceSession<'_>)],
    ) -> anyhow::Result<()> {
        let keys: Vec<(i64, NaiveDateTime)> = valid
            .iter()
            .filter(|(_, _, s)| s.started_at < self.window.start)
            .filter_map(|(_, _, s)| {
                let agent = self.agents.entries[self.agents.get(s.agent_id)?].id;
                let key = (agent, micros(s.started_at));
                (!self.stored.contains_key(&key) && !self.inserted.contains(&key))
                    .then_some((agent, s.started_at))
            })
            .collect();
        self.load_into_stored(c, &keys, "loading sessions that began before the window")
    }

    fn register_new_names<C: WfmOps>(
        &mut self,
        c: &mut C,
        valid: &[(u64, RawRow<'_>, SourceSession<'_>)],
    ) -> anyhow::Result<()> {
        let mut new_agents: Vec<NewAgentId<'_>> = Vec::new();
        let mut new_codes: Vec<NewActivityCode<'_>> = Vec::new();
        let mut seen_agents: FxHashSet<&str> = FxHashSet::default();
        let mut seen_codes: FxHashSet<&str> = FxHashSet::default();
        for (_, _, s) in valid {
            if self.agents.get(s.agent_id).is_none() && seen_agents.insert(s.agent_id) {
                new_agents.push(NewAgentId {
                    external_system_id: self.system_id,
                    external_id: s.agent_id,
                    first_seen_at: Some(s.started_at),
                    last_seen_at: Some(s.started_at),
                });
            }
            if let Some(code) = s.activity_code {
                if self.codes.get(code).is_none() && seen_codes.insert(code) {
                    new_codes.push(NewActivityCode {
                        external_system_id: self.system_id,
                        code,
                        activity_id: PRESENT_ACTIVITY_ID,
                        first_seen_at: Some(s.started_at),
                        last_seen_at: Some(s.started_at),
                    });
                }
            }
        }
        if !new_agents.is_empty() {
            let first_seen: FxHashMap<&str, Option<NaiveDateTime>> = new_agents
                .iter()
                .map(|a| (a.external_id, a.first_seen_at))
                .collect();
            for (id, name) in c
                .insert_agents(self.system_id, &new_agents)
                .context("registering new agent IDs")?
            {
                let t = first_seen.get(name.as_str()).copied().flatten();
                self.counts.new_agent_ids += 1;
                self.agents.add(id, name, t, t, true);
            }
        }
        if !new_codes.is_empty() {
            let first_seen: FxHashMap<&str, Option<NaiveDateTime>> = new_codes
                .iter()
                .map(|a| (a.code, a.first_seen_at))
                .collect();
            for (id, code) in c
                .insert_codes(self.system_id, &new_codes)
                .context("registering new activity codes")?
            {
                let t = first_seen.get(code.as_str()).copied().flatten();
                self.counts.new_activity_codes += 1;
                self.codes.add(id, code, t, t, true);
            }
        }
        Ok(())
    }

    fn flush<C: WfmOps>(&mut self, c: &mut C, all: bool) -> anyhow::Result<()> {
        if !self.inserts.is_empty() && (all || self.inserts.len() >= WRITE_BATCH) {
            self.counts.inserted += c
                .insert_sessions(&self.inserts)
                .context("inserting new sessions")? as u64;
            self.inserts.clear();
        }
        if !self.updates.is_empty() && (all || self.updates.len() >= WRITE_BATCH) {
            self.counts.updated += c
                .update_sessions(&self.updates)
                .context("updating changed sessions")? as u64;
            self.updates.clear();
        }
        Ok(())
    }
}
