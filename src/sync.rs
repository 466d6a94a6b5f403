//! One sync of one external system and window, inside one `import_runs` row: the only place where the
//! source, the rules and the store meet.
//!
//! A full sync streams two sorted sequences side by side: the source's rows in start order (fetched in a
//! thread of their own) and the stored sessions of the window in (start, agent) order (read page by page on
//! a second connection, in another thread). Each source row is compared with the stored session of the
//! same agent and start; what differs is written in batches: new sessions, changed ones, and stored ones no
//! row matched. Memory holds a batch of rows, a page of stored sessions, the system's agent IDs and codes,
//! and (one day a year) the rows of the hour the clocks go back: never the day. Everything is written in one
//! transaction with the run's counts; a re-run with nothing changed writes no session.
//!
//! An incremental run (`Mode::Changes`) reads only the rows changed since the system's watermark, merges
//! them by key (inserts and updates; deletions wait for the next full sync) and moves the watermark in the
//! same transaction.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Context;
use chrono::{Duration, NaiveDate, NaiveDateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use diesel::Connection;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::config::{ExternalSystemConfig, WatermarkKind};
use crate::error::Failure;
use crate::secrets::redact;
use crate::sessions::{self, Field, Fold, LocalZone, RawRow, Rejection, SourceSession, SourceTime};
use crate::source::query::{LocalBounds, Watermark};
use crate::source::{self, Batch};
use crate::store::models::*;
use crate::store::ops::{StoredWindow, WfmOps, PRESENT_ACTIVITY_ID};
use crate::store::{Store, Wfm, WindowPages, WindowReader};

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

/// How a run read the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The window query: the window's sessions are made equal to the source (inserts, updates, deletes).
    Full,
    /// Incremental: the changes query, rows changed since the watermark (inserts and updates only).
    Changes,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Changes => "changes",
        }
    }
}

/// What to sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A full sync of these local days.
    Days(Days),
    /// Today: incremental (the changes since the watermark, whatever day they belong to) when the system is
    /// configured for it, has a watermark and had a successful full sync within `full_sync_every`;
    /// otherwise a full sync of today.
    Today,
}

/// The outcome of a sync of one system, for the summary.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub run_id: i64,
    pub system: String,
    pub days: Days,
    pub mode: Mode,
    /// The system's watermark after the run (incremental mode).
    pub watermark: Option<String>,
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

/// A full sync of one system for `days`. The run lock must be held. The `import_runs` row is written
/// whatever happens; on error nothing else is kept and the error (passwords removed) is in that row.
pub fn sync_system(
    store: &mut Store,
    system: &ExternalSystemConfig,
    days: Days,
) -> anyhow::Result<RunReport> {
    sync(store, system, Target::Days(days))
}

/// Syncs one system (see `Target`). The run lock must be held.
pub fn sync(
    store: &mut Store,
    system: &ExternalSystemConfig,
    target: Target,
) -> anyhow::Result<RunReport> {
    let days = match target {
        Target::Days(d) => d,
        Target::Today => Days::today(system.time_zone),
    };
    let window = Window::new(system.time_zone, days, system.max_session_hours);
    let started_at = now();
    let host = hostname();
    let tz_name = system.time_zone.name();
    let store_name = store.name().to_owned();
    let reader = store.window_reader();
    macro_rules! run_on {
        ($store:expr, $c:expr, $transaction:ident) => {{
            let c = $c;
            let (system_id, run_id, mode, watermark) = (|| -> diesel::QueryResult<_> {
                let system_id = c.register_system(&system.name, tz_name)?;
                let abandoned = c.abandon_running(system_id, started_at)?;
                if abandoned > 0 {
                    tracing::warn!(system = %system.name, abandoned, "marked runs left running by a stopped process as abandoned");
                }
                let watermark = match &system.incremental {
                    Some(inc) => c.load_watermark(system_id)?.filter(|(kind, _)| kind == inc.watermark.name()).map(|(_, v)| v),
                    None => None,
                };
                let mode = match (target, &system.incremental, &watermark) {
                    (Target::Today, Some(inc), Some(_)) => {
                        let last = c.last_full_sync(system_id)?;
                        let every = chrono::Duration::from_std(inc.full_sync_every).unwrap_or(chrono::Duration::MAX);
                        if last.is_some_and(|t| started_at - t < every) { Mode::Changes } else { Mode::Full }
                    }
                    _ => Mode::Full,
                };
                let run_id = c.start_run(&NewImportRun {
                    external_system_id: system_id,
                    first_day: days.first,
                    last_day: days.last,
                    window_start: window.start,
                    window_end: window.end,
                    started_at,
                    status: "running",
                    host: host.clone(),
                    pid: i64::from(std::process::id()),
                    mode: mode.name(),
                })?;
                Ok((system_id, run_id, mode, watermark))
            })()
            .with_context(|| format!("system {:?}: recording the run in {store_name}", system.name))?;
            // A stored watermark that cannot be read fails the run, recorded like any other failure.
            let watermark = match (&system.incremental, watermark) {
                (Some(inc), Some(text)) => parse_watermark(inc.watermark, &text).map(Some).map_err(anyhow::Error::msg).with_context(|| {
                    format!("system {:?}: the watermark {text:?} stored in external_systems.watermark (set it to NULL to start again with a full sync)", system.name)
                }),
                _ => Ok(None),
            };
            let result = watermark.and_then(|watermark| {
                let plan = Plan { system, system_id, run_id, window: &window, mode, watermark };
                c.$transaction(|c| merge(c, $store, &plan))
            });
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
        Wfm::Postgres(c) => run_on!(&reader, c, transaction),
        Wfm::Sqlite(c) => run_on!(&reader, c, immediate_transaction),
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
#[derive(Clone, Copy)]
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
            change_key: None,
        }
    }
}

/// A name not registered yet, and a row without a code, in a row's looked-up indices.
const UNKNOWN: u32 = u32::MAX;
const NO_CODE_INDEX: u32 = u32::MAX - 1;

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

    /// The index of `name`, or `UNKNOWN`.
    fn index_of(&self, name: &str) -> u32 {
        self.index.get(name).map_or(UNKNOWN, |i| *i as u32)
    }

    /// `index_of` for an optional code: `NO_CODE_INDEX` when there is none.
    fn index_of_code(&self, code: Option<&str>) -> u32 {
        code.map_or(NO_CODE_INDEX, |c| self.index_of(c))
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

/// Updates, deletes and rejected rows are sent in statements of this many rows at most.
const WRITE_BATCH: usize = 10_000;
/// New sessions are sent in statements of up to this many (56 bytes each: 5.6 MB): fewer, larger COPY
/// statements, because each runs the set-based reference check once (PostgreSQL).
const INSERT_BATCH: usize = 100_000;

/// One run, decided: which system, which run row, which window, which query.
struct Plan<'a> {
    system: &'a ExternalSystemConfig,
    system_id: i64,
    run_id: i64,
    window: &'a Window,
    mode: Mode,
    /// The stored watermark, if the system is incremental and has one.
    watermark: Option<Watermark>,
}

fn parse_watermark(kind: WatermarkKind, text: &str) -> Result<Watermark, String> {
    let t = text.trim();
    match kind {
        WatermarkKind::Integer => t
            .parse::<i64>()
            .map(Watermark::Integer)
            .map_err(|_| format!("change_key {t:?} is not an integer (watermark = \"integer\")")),
        WatermarkKind::Timestamp => match sessions::parse_source_time(t) {
            Ok(SourceTime::Local(n)) => Ok(Watermark::Timestamp(n, false)),
            Ok(SourceTime::Utc(n)) => Ok(Watermark::Timestamp(n, true)),
            Err(e) => Err(format!("change_key: {e} (watermark = \"timestamp\")")),
        },
    }
}

/// The stored side of a full sync: the window's sessions, read in key order (start, agent) on another
/// connection, held from the current source start to one page ahead.
struct StoredStream {
    pages: WindowPages,
    done: bool,
    /// Start of the last stored session read, and its key (start, agent).
    read_up_to: Option<i64>,
    last_key: Option<(i64, i64)>,
    /// Read and not settled yet, in key order (start, agent): matched by binary search, no hashing.
    /// `Slot::seen` marks those a source row has taken.
    pending: VecDeque<Pending>,
    /// Time spent waiting for the reader (debug log).
    waited: std::time::Duration,
}

struct Pending {
    start: i64,
    agent: i64,
    slot: Slot,
}

/// What the stored stream holds for a key.
enum Stored {
    /// A stored session, now taken by this row.
    Taken(Slot),
    /// A stored session an earlier row of this result took: this row is a duplicate.
    AlreadyTaken,
    Absent,
}

impl StoredStream {
    /// Takes the stored session of (agent, start) read and not taken yet.
    fn take(&mut self, agent: i64, start: i64) -> Stored {
        match self
            .pending
            .binary_search_by(|p| (p.start, p.agent).cmp(&(start, agent)))
        {
            Err(_) => Stored::Absent,
            Ok(i) if self.pending[i].slot.seen => Stored::AlreadyTaken,
            Ok(i) => {
                let slot = &mut self.pending[i].slot;
                slot.seen = true;
                Stored::Taken(*slot)
            }
        }
    }
}

struct Merge<'p> {
    plan: &'p Plan<'p>,
    zone: LocalZone,
    agents: Names,
    codes: Names,
    /// UTC spans (microseconds) in which local times repeat (clocks going back): stored sessions starting
    /// there, and source rows of those hours, are merged by key at the end, not in the stream.
    held: Vec<(i64, i64)>,
    stream: Option<StoredStream>,
    /// The source start being merged (full mode: rows come in start order), and the agents seen at it
    /// whose rows have no stored session (to tell duplicates among new rows).
    current_start: Option<i64>,
    agents_at_start: FxHashSet<i64>,
    /// Keyed merge: stored sessions loaded by key (held spans, sessions before the window, changes).
    stored: FxHashMap<(i64, i64), Slot>,
    inserted: FxHashSet<(i64, i64)>,
    repeated_hour: Vec<RepeatedHourRow>,
    /// Rows that start before the window with no stored session in it: looked up by key, batch by batch.
    before_window: Vec<NewSession>,
    inserts: Vec<NewSession>,
    updates: Vec<SessionChange>,
    deletes: Vec<i64>,
    rejected: Vec<NewRejectedRow>,
    rejected_sample: Vec<RejectedSample>,
    stale_open: usize,
    stale_open_first: Option<i64>,
    /// Largest change key read (incremental systems).
    max_change_key: Option<Watermark>,
    counts: Counts,
}

/// The WFM connection during a merge, driven by a thread of its own: writes are queued (at most two
/// waiting) and run while the merge goes on with the next batch, so the database's work (PostgreSQL's
/// COPY and index updates, SQLite's B-tree) overlaps the fetch and the compare on the other core. Lookups
/// wait for their answer. Everything runs in order on the one connection, inside the run's transaction.
/// After a failed write the thread runs nothing more and the merge's next call fails with its error.
struct Db<'s, C> {
    jobs: crossbeam_channel::Sender<Job<'s, C>>,
    /// Jobs that run before the queued writes (`call_ahead`).
    urgent: crossbeam_channel::Sender<Job<'s, C>>,
    written: &'s Written,
}

type Job<'s, C> = Box<dyn FnOnce(&mut C, &Written) -> anyhow::Result<()> + Send + 's>;

/// Sessions the writer thread has written.
#[derive(Default)]
struct Written {
    inserted: AtomicU64,
    updated: AtomicU64,
    deleted: AtomicU64,
    failed: AtomicBool,
}

impl<'s, C: WfmOps + Send + 's> Db<'s, C> {
    /// Queues a write.
    fn write(
        &self,
        job: impl FnOnce(&mut C, &Written) -> anyhow::Result<()> + Send + 's,
    ) -> anyhow::Result<()> {
        if self.written.failed.load(Ordering::Acquire) || self.jobs.send(Box::new(job)).is_err() {
            anyhow::bail!("an earlier write to the WFM database failed");
        }
        Ok(())
    }

    /// Runs `f` before the writes still queued (after the one running), and returns its answer. Only for
    /// work those writes cannot change: registering names (the queued rows name only registered ones), and
    /// lookups of sessions no queued write touches. It keeps the database busy: `call` would let the queue
    /// run dry while the merge waits.
    fn call_ahead<R: Send + 's>(
        &self,
        f: impl FnOnce(&mut C) -> anyhow::Result<R> + Send + 's,
    ) -> anyhow::Result<R> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let job: Job<'s, C> = Box::new(move |c, _| {
            let _ = tx.send(f(c));
            Ok(())
        });
        if self.written.failed.load(Ordering::Acquire) || self.urgent.send(job).is_err() {
            anyhow::bail!("an earlier write to the WFM database failed");
        }
        rx.recv()
            .map_err(|_| anyhow::anyhow!("an earlier write to the WFM database failed"))?
    }

    /// Runs `f` after the writes queued before it, and returns its answer.
    fn call<R: Send + 's>(
        &self,
        f: impl FnOnce(&mut C) -> anyhow::Result<R> + Send + 's,
    ) -> anyhow::Result<R> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.write(move |c, _| {
            let _ = tx.send(f(c));
            Ok(())
        })?;
        rx.recv()
            .map_err(|_| anyhow::anyhow!("an earlier write to the WFM database failed"))?
    }
}

/// Runs queued jobs on `c`, urgent ones first, until both queues close; returns the first failure (and runs
/// nothing after it).
fn run_jobs<'s, C>(
    c: &mut C,
    jobs: crossbeam_channel::Receiver<Job<'s, C>>,
    urgent: crossbeam_channel::Receiver<Job<'s, C>>,
    written: &Written,
) -> anyhow::Result<()> {
    let mut failure = None;
    loop {
        let job = match urgent.try_recv() {
            Ok(job) => job,
            Err(_) => crossbeam_channel::select_biased! {
                recv(urgent) -> job => match job {
                    Ok(job) => job,
                    // Closed together with `jobs`: run what is left there.
                    Err(_) => match jobs.recv() {
                        Ok(job) => job,
                        Err(_) => break,
                    },
                },
                recv(jobs) -> job => match job {
                    Ok(job) => job,
                    Err(_) => match urgent.recv() {
                        Ok(job) => job,
                        Err(_) => break,
                    },
                },
            },
        };
        if failure.is_none() {
            let started = std::time::Instant::now();
            let result = job(c, written);
            let took = started.elapsed();
            if took > std::time::Duration::from_millis(200) {
                tracing::debug!(seconds = took.as_secs_f64(), "slow write job");
            }
            if let Err(e) = result {
                written.failed.store(true, Ordering::Release);
                failure = Some(e);
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

fn merge<C: WfmOps + Send>(
    c: &mut C,
    reader: &WindowReader,
    plan: &Plan<'_>,
) -> anyhow::Result<RunReport> {
    let system = plan.system;
    let window = plan.window;
    // A full sync meets most of the system's agent IDs: load them all at once. An incremental run loads
    // only those its rows name (`register_new_names`), so that it costs what changed, not the system's size.
    let (agents, codes) = if plan.mode == Mode::Full {
        (
            c.load_agents(plan.system_id).context("loading agent IDs")?,
            c.load_codes(plan.system_id)
                .context("loading activity codes")?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let stream = (plan.mode == Mode::Full).then(|| StoredStream {
        pages: reader.read(
            StoredWindow {
                external_system_id: plan.system_id,
                lookback_start: window.lookback_start,
                window_start: window.start,
                window_end: window.end,
            },
            system.batch_rows,
        ),
        done: false,
        read_up_to: None,
        last_key: None,
        pending: VecDeque::new(),
        waited: std::time::Duration::ZERO,
    });
    let mut m = Merge {
        plan,
        zone: LocalZone::new(system.time_zone),
        agents: Names::new(agents.into_iter()),
        codes: Names::new(codes.into_iter()),
        held: repeated_spans(system.time_zone, &window.local),
        stream,
        current_start: None,
        agents_at_start: FxHashSet::default(),
        stored: FxHashMap::default(),
        inserted: FxHashSet::default(),
        repeated_hour: Vec::new(),
        before_window: Vec::new(),
        inserts: Vec::with_capacity(WRITE_BATCH),
        updates: Vec::new(),
        deletes: Vec::new(),
        rejected: Vec::new(),
        rejected_sample: Vec::new(),
        stale_open: 0,
        stale_open_first: None,
        max_change_key: None,
        counts: Counts::default(),
    };

    let what = match (plan.mode, &system.incremental, plan.watermark) {
        (Mode::Changes, Some(inc), Some(watermark)) => source::Read::Changes {
            query: &inc.query,
            watermark,
            bounds: &window.local,
        },
        _ => source::Read::Window(&window.local),
    };
    let written = Written::default();
    let (jobs, queue) = crossbeam_channel::bounded::<Job<'_, C>>(2);
    let (urgent, urgent_queue) = crossbeam_channel::unbounded::<Job<'_, C>>();
    let conn: &mut C = &mut *c;
    let (merged, wrote) = std::thread::scope(|scope| {
        let writer = std::thread::Builder::new()
            .name("acdsync-writer".into())
            .spawn_scoped(scope, || run_jobs(conn, queue, urgent_queue, &written))
            .expect("spawning a thread");
        let db = Db {
            jobs,
            urgent,
            written: &written,
        };
        let merged = (|| -> anyhow::Result<()> {
            m.counts.read = source::read(system, what, |batch| m.batch(&db, batch))?;
            if plan.mode == Mode::Full {
                m.finish_stream(&db)?;
                let waited = m.stream.as_ref().map_or(0.0, |s| s.waited.as_secs_f64());
                tracing::debug!(system = %system.name, waiting_for_store_s = waited, "stored window read to its end");
            }
            m.finish_repeated_hour(&db)?;
            if plan.mode == Mode::Full {
                // Stored sessions of the held spans that no source row matched.
                let window_start = micros(window.start);
                let gone: Vec<(i64, Slot)> = m
                    .stored
                    .iter()
                    .filter(|(_, slot)| !slot.seen)
                    .map(|((_, start), slot)| (*start, *slot))
                    .collect();
                for (start, slot) in gone {
                    m.unmatched(start, slot, window_start);
                }
            }
            m.flush(&db, true)
        })();
        drop(db);
        let wrote = writer.join().expect("the writer thread does not panic");
        (merged, wrote)
    });
    // The writer's failure is the cause of the merge's ("an earlier write failed"): report it first.
    wrote?;
    merged?;
    m.counts.inserted = written.inserted.load(Ordering::Acquire);
    m.counts.updated = written.updated.load(Ordering::Acquire);
    m.counts.deleted = written.deleted.load(Ordering::Acquire);

    let stale_open_since = m
        .stale_open_first
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map(|t| t.with_timezone(&system.time_zone).date_naive());
    if let Some(day) = stale_open_since {
        tracing::warn!(
            system = %system.name,
            sessions = m.stale_open,
            since = %day,
            "sessions stored open before the window are no longer returned by the source; sync {day} to close them"
        );
    }
    c.update_agents_seen(&m.agents.seen_changes())
        .context("updating first/last-seen times of agent IDs")?;
    c.update_codes_seen(&m.codes.seen_changes())
        .context("updating first/last-seen times of activity codes")?;

    // The watermark moves in this transaction: forward after changes, and set by the first full sync.
    let watermark = match (&system.incremental, plan.watermark, m.max_change_key) {
        (Some(inc), old, new) => {
            let next = match (plan.mode, old, new) {
                (Mode::Changes, Some(o), Some(n)) => Some(o.max(n)),
                (Mode::Changes, o, None) => o,
                (Mode::Full, None, n) => n,
                (Mode::Full, Some(o), _) => Some(o),
                (Mode::Changes, None, n) => n,
            };
            if let Some(w) = next.filter(|w| Some(*w) != old) {
                c.save_watermark(plan.system_id, inc.watermark.name(), &w.to_string(), now())
                    .context("moving the watermark")?;
            }
            next.map(|w| w.to_string())
        }
        (None, _, _) => None,
    };

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
        watermark: watermark.clone(),
    };
    c.finish_run(plan.run_id, &outcome)
        .context("recording the run's counts")?;
    let unmapped = c
        .count_unmapped(plan.system_id)
        .context("counting unmapped agent IDs")?;
    Ok(RunReport {
        run_id: plan.run_id,
        system: system.name.clone(),
        days: window.days,
        mode: plan.mode,
        watermark,
        counts,
        new_activity_codes: m.codes.new_names(),
        new_agent_ids: m.agents.new_names(),
        unmapped_agent_ids: unmapped,
        stale_open: m.stale_open,
        stale_open_since,
        rejected: m.rejected_sample,
    })
}

/// The UTC spans of `bounds` (with its lookback) in which local times happen twice, in order.
fn repeated_spans(tz: Tz, bounds: &LocalBounds) -> Vec<(i64, i64)> {
    let step = Duration::minutes(15);
    let mut spans: Vec<(i64, i64)> = Vec::new();
    let mut t = bounds.lookback_start - Duration::hours(3);
    while t < bounds.window_end + Duration::hours(3) {
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

impl Merge<'_> {
    fn in_held(&self, t: i64) -> bool {
        self.held.iter().any(|(a, b)| *a <= t && t < *b)
    }

    fn reject(&mut self, row_no: u64, raw: &RawRow<'_>, why: Rejection) {
        self.counts.rejected += 1;
        if self.rejected_sample.len() < REPORT_SAMPLE {
            self.rejected_sample.push(RejectedSample {
                source_row: row_no,
                field: why.field.name(),
                reason: why.reason.clone(),
            });
        }
        self.rejected.push(NewRejectedRow {
            import_run_id: self.plan.run_id,
            source_row: row_no as i64,
            field: why.field.name(),
            reason: why.reason,
            agent_id: raw.text(Field::AgentId),
            activity_code: raw.text(Field::ActivityCode),
            started_at: raw.text(Field::StartedAt),
            ended_at: raw.text(Field::EndedAt),
        });
    }

    /// The change key of a row (incremental systems), kept for the watermark.
    fn change_key(&mut self, raw: &RawRow<'_>) -> Result<(), Rejection> {
        let Some(inc) = &self.plan.system.incremental else {
            return Ok(());
        };
        let text = match raw.change_key.map(std::str::from_utf8) {
            None => return Err(Rejection::new(Field::ChangeKey, "no change key (NULL)")),
            Some(Err(e)) => {
                return Err(Rejection::new(
                    Field::ChangeKey,
                    format!("change_key is not valid UTF-8 ({e})"),
                ))
            }
            Some(Ok(t)) => t,
        };
        let key = parse_watermark(inc.watermark, text)
            .map_err(|e| Rejection::new(Field::ChangeKey, e))?;
        self.max_change_key = Some(self.max_change_key.map_or(key, |m| m.max(key)));
        Ok(())
    }

    fn batch<'s, C: WfmOps + Send + 's>(
        &mut self,
        c: &Db<'s, C>,
        batch: &Batch<'_>,
    ) -> anyhow::Result<()> {
        let full = self.plan.mode == Mode::Full;
        // Pass 1: rules; each row's agent ID and code looked up once (UNKNOWN: new in this batch).
        let mut valid: Vec<(u64, RawRow<'_>, SourceSession<'_>)> = Vec::with_capacity(batch.len());
        let mut names: Vec<(u32, u32)> = Vec::with_capacity(batch.len());
        for i in 0..batch.len() {
            let row_no = batch.first_row + i as u64;
            let raw = batch.row(i);
            let checked = self
                .change_key(&raw)
                .and_then(|()| sessions::validate_in(&raw, &mut self.zone));
            match checked {
                // Rows whose start is a time of the hour the clocks go back wait for the agent's other rows
                // of that hour.
                Ok(s) if s.start_repeats || self.in_held(micros(s.started_at)) => self
                    .repeated_hour
                    .push(RepeatedHourRow::new(row_no, &raw, &s)),
                Ok(s) if !full => valid.push((row_no, raw, s)),
                Ok(s) => match self.plan.window.outside(&s) {
                    None => {
                        names.push((
                            self.agents.index_of(s.agent_id),
                            self.codes.index_of_code(s.activity_code),
                        ));
                        valid.push((row_no, raw, s));
                    }
                    Some(why) => self.reject(row_no, &raw, why),
                },
                Err(why) => self.reject(row_no, &raw, why),
            }
        }
        if full {
            let new: Vec<(u64, RawRow<'_>, SourceSession<'_>)> = valid
                .iter()
                .zip(&names)
                .filter(|(_, (a, c))| *a == UNKNOWN || *c == UNKNOWN)
                .map(|(v, _)| *v)
                .collect();
            if !new.is_empty() {
                self.register_new_names(c, &new)?;
                for ((_, _, s), (a, code)) in valid.iter().zip(names.iter_mut()) {
                    if *a == UNKNOWN {
                        *a = self.agents.index_of(s.agent_id);
                    }
                    if *code == UNKNOWN {
                        *code = self.codes.index_of_code(s.activity_code);
                    }
                }
            }
            for ((row_no, raw, s), (agent, code)) in valid.into_iter().zip(names) {
                self.stream_row(c, row_no, &raw, &s, agent as usize, code)?;
            }
            self.merge_before_window(c)?;
        } else {
            // Changes come in any order: merged by key, nothing held between batches. The batch's writes are
            // queued now, so that a later batch naming the same session finds it (lookups run after them).
            self.merge_valid(c, valid)?;
            self.stored.clear();
            self.inserted.clear();
            return self.flush(c, true);
        }
        self.flush(c, false)
    }

    /// Merges one source row of a full sync with the stored stream. Rows come in start order.
    fn stream_row<'s, C: WfmOps + Send + 's>(
        &mut self,
        c: &Db<'s, C>,
        row_no: u64,
        raw: &RawRow<'_>,
        s: &SourceSession<'_>,
        agent: usize,
        code: u32,
    ) -> anyhow::Result<()> {
        let start = micros(s.started_at);
        match self.current_start {
            Some(cur) if start < cur => {
                let sql_file = self.plan.system.query.path().display().to_string();
                return Err(Failure::Config(format!(
                    "system {:?}: row {row_no} of {sql_file}: started_at {} comes after a row starting at {} UTC: the query must return rows in start order (end it with ORDER BY the start column; see sql/sources/README.md)",
                    self.plan.system.name,
                    raw.text(Field::StartedAt).unwrap_or_default(),
                    chrono::DateTime::from_timestamp_micros(cur).map(|t| t.naive_utc().to_string()).unwrap_or_default(),
                ))
                .into());
            }
            Some(cur) if start == cur => {}
            _ => self.advance_to(c, start)?,
        }
        let agent_id = self.agents.entries[agent].id;
        let stream = self.stream.as_mut().expect("a full sync streams");
        let found = match stream.take(agent_id, start) {
            // A second row for an (agent, start) already read in this result.
            Stored::AlreadyTaken => None,
            // Rows with no stored session: duplicates are told apart by the agents seen at this start.
            Stored::Absent if !self.agents_at_start.insert(agent_id) => None,
            found => Some(found),
        };
        let Some(found) = found else {
            self.reject(row_no, raw, duplicate(s));
            return Ok(());
        };
        if s.in_repeated_hour {
            // Its end is a repeated time: merged with the agent's rows of that hour, at the end.
            if let Stored::Taken(slot) = found {
                // Matched again there, by key.
                self.stored.insert(
                    (agent_id, start),
                    Slot {
                        seen: false,
                        ..slot
                    },
                );
            }
            self.repeated_hour
                .push(RepeatedHourRow::new(row_no, raw, s));
            return Ok(());
        }
        let session = self.session_of(agent, code, s);
        match found {
            Stored::Taken(slot) => self.compare(slot, &session),
            _ if s.started_at < self.plan.window.start => self.before_window.push(session),
            _ => self.inserts.push(session),
        }
        Ok(())
    }

    /// The session a valid row becomes; notes when its agent and code were seen.
    fn session(&mut self, agent: usize, s: &SourceSession<'_>) -> NewSession {
        let code = self.codes.index_of_code(s.activity_code);
        self.session_of(agent, code, s)
    }

    /// `session`, with the code's index already looked up (`NO_CODE_INDEX` for none).
    fn session_of(&mut self, agent: usize, code: u32, s: &SourceSession<'_>) -> NewSession {
        let external_agent_id = self.agents.touch(agent, s.started_at);
        let external_activity_code_id = (code != NO_CODE_INDEX).then(|| {
            debug_assert!(code != UNKNOWN, "registered above");
            self.codes.touch(code as usize, s.started_at)
        });
        NewSession {
            external_system_id: self.plan.system_id,
            external_agent_id,
            external_activity_code_id,
            started_at: s.started_at,
            ended_at: s.ended_at,
        }
    }

    fn compare(&mut self, slot: Slot, s: &NewSession) {
        let end = s.ended_at.map_or(OPEN, micros);
        if slot.code == s.external_activity_code_id.unwrap_or(NO_CODE) && slot.end == end {
            self.counts.unchanged += 1;
        } else {
            self.updates.push(SessionChange {
                id: slot.id,
                external_activity_code_id: s.external_activity_code_id,
                ended_at: s.ended_at,
            });
        }
    }

    /// A stored session no source row matched: gone from the source if it starts in the window; if it
    /// began before the window and is stored open, only a sync of its own day can close it.
    fn unmatched(&mut self, start: i64, slot: Slot, window_start: i64) {
        if start >= window_start {
            self.deletes.push(slot.id);
        } else if slot.end == OPEN {
            self.stale_open += 1;
            self.stale_open_first = Some(self.stale_open_first.map_or(start, |f| f.min(start)));
        }
    }

    /// Moves the merge to source start `start`: stored sessions starting before it that no row matched
    /// are settled, and the stored stream is read past it.
    fn advance_to<'s, C: WfmOps + Send + 's>(
        &mut self,
        c: &Db<'s, C>,
        start: i64,
    ) -> anyhow::Result<()> {
        self.settle_before(start);
        self.current_start = Some(start);
        self.agents_at_start.clear();
        while !self.stream.as_ref().expect("streams").done
            && self
                .stream
                .as_ref()
                .expect("streams")
                .read_up_to
                .is_none_or(|u| u <= start)
        {
            self.read_stored_page()?;
            self.settle_before(start);
        }
        if self.deletes.len() >= WRITE_BATCH {
            self.flush(c, false)?;
        }
        Ok(())
    }

    /// Settles the stored sessions read that start before `start` and that no source row matched.
    fn settle_before(&mut self, start: i64) {
        let window_start = micros(self.plan.window.start);
        let mut gone = Vec::new();
        {
            let stream = self.stream.as_mut().expect("a full sync streams");
            while stream.pending.front().is_some_and(|p| p.start < start) {
                let p = stream.pending.pop_front().expect("checked above");
                if !p.slot.seen {
                    gone.push((p.start, p.slot));
                }
            }
        }
        for (t, slot) in gone {
            self.unmatched(t, slot, window_start);
        }
    }

    fn read_stored_page(&mut self) -> anyhow::Result<()> {
        let stream = self.stream.as_mut().expect("a full sync streams");
        let wait_started = std::time::Instant::now();
        let page = stream.pages.next_page()?;
        stream.waited += wait_started.elapsed();
        match page {
            None => stream.done = true,
            Some(page) => {
                for s in page {
                    let t = micros(s.started_at);
                    let key = (t, s.external_agent_id);
                    // The merge relies on this order (binary search, settling what lies behind).
                    if stream.last_key.is_some_and(|last| key <= last) {
                        anyhow::bail!(
                            "the stored sessions of the window came out of key order at session id {} (a bug: please report it)",
                            s.id
                        );
                    }
                    stream.last_key = Some(key);
                    stream.read_up_to = Some(t);
                    if self.held.iter().any(|(a, b)| *a <= t && t < *b) {
                        self.stored.insert((s.external_agent_id, t), slot(&s));
                    } else {
                        stream.pending.push_back(Pending {
                            start: t,
                            agent: s.external_agent_id,
                            slot: slot(&s),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// After the last source row: every stored session not matched yet is settled, page by page.
    fn finish_stream<'s, C: WfmOps + Send + 's>(&mut self, c: &Db<'s, C>) -> anyhow::Result<()> {
        loop {
            self.settle_before(i64::MAX);
            self.flush(c, false)?;
            if self.stream.as_ref().expect("a full sync streams").done {
                return Ok(());
            }
            self.read_stored_page()?;
        }
    }

    /// Rows starting before the window that the stored window did not hold: a session stored ending
    /// before the window that the source now says overlaps it (a corrected end) is updated, not inserted
    /// twice.
    fn merge_before_window<'s, C: WfmOps + Send + 's>(
        &mut self,
        c: &Db<'s, C>,
    ) -> anyhow::Result<()> {
        if self.before_window.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.before_window);
        let keys: Vec<(i64, NaiveDateTime)> = rows
            .iter()
            .map(|r| (r.external_agent_id, r.started_at))
            .collect();
        let system_id = self.plan.system_id;
        // No queued write touches these keys: they are neither in the stored window nor written yet.
        let found: FxHashMap<(i64, i64), Slot> = c
            .call_ahead(move |c| {
                c.load_sessions_at(system_id, &keys)
                    .context("loading sessions that began before the window")
            })?
            .iter()
            .map(|s| ((s.external_agent_id, micros(s.started_at)), slot(s)))
            .collect();
        for r in rows {
            match found.get(&(r.external_agent_id, micros(r.started_at))) {
                Some(slot) => self.compare(*slot, &r),
                None => self.inserts.push(r),
            }
        }
        Ok(())
    }

    /// The rows of the repeated hour, read again together (`sessions::resolve_repeated_hour`) and merged.
    fn finish_repeated_hour<'s, C: WfmOps + Send + 's>(
        &mut self,
        c: &Db<'s, C>,
    ) -> anyhow::Result<()> {
        let rows = std::mem::take(&mut self.repeated_hour);
        if rows.is_empty() {
            return Ok(());
        }
        let tz = self.zone.tz();
        let items: Vec<sessions::RepeatedHourSession> = rows
            .iter()
            .map(|r| sessions::RepeatedHourSession {
                agent_id: r.agent_id.clone(),
                start: r.start,
                end: r.end,
            })
            .collect();
        // Which reading of an ambiguous start is already stored: fetch both candidates that are not loaded
        // yet (a full sync has those of the window), so every window reads a row the same way.
        let everything = self.plan.mode == Mode::Changes;
        if everything {
            // An incremental run has loaded only the agent IDs of rows merged so far.
            let names: Vec<String> = rows
                .iter()
                .filter(|r| self.agents.get(&r.agent_id).is_none())
                .map(|r| r.agent_id.clone())
                .collect();
            self.load_agents_named(c, names)?;
        }
        let mut probe: Vec<(i64, NaiveDateTime)> = Vec::new();
        for r in &rows {
            let (SourceTime::Local(local), Some(agent)) = (r.start, self.agents.get(&r.agent_id))
            else {
                continue;
            };
            let Some((first, second)) = sessions::time::both_readings(tz, local) else {
                continue;
            };
            let id = self.agents.entries[agent].id;
            for t in [first, second] {
                if (everything || t < self.plan.window.start)
                    && !self.stored.contains_key(&(id, micros(t)))
                {
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
        let times = sessions::resolve_repeated_hour(tz, &items, &stored_reading);
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
                match self.plan.mode {
                    Mode::Full => self.plan.window.outside(&s).map_or(Ok(s), Err),
                    Mode::Changes => Ok(s),
                }
            });
            match checked {
                Ok(s) => valid.push((r.row_no, raw, s)),
                Err(why) => self.reject(r.row_no, &raw, why),
            }
        }
        self.merge_valid(c, valid)?;
        self.flush(c, true)
    }

    /// Merges rows by key: with the sessions already loaded in `stored`, and those looked up now
    /// (changes, and rows starting before the window); queues the writes.
    fn merge_valid<'s, C: WfmOps + Send + 's>(
        &mut self,
        c: &Db<'s, C>,
        valid: Vec<(u64, RawRow<'_>, SourceSession<'_>)>,
    ) -> anyhow::Result<()> {
        self.register_new_names(c, &valid)?;
        self.load_missing(c, &valid)?;
        for (row_no, raw, s) in valid {
            let agent = self.agents.get(s.agent_id).expect("registered above");
            let key = (self.agents.entries[agent].id, micros(s.started_at));
            let fresh = match self.stored.get(&key) {
                Some(slot) => !slot.seen,
                None => !self.inserted.contains(&key),
            };
            if !fresh {
                self.reject(row_no, &raw, duplicate(&s));
                continue;
            }
            let session = self.session(agent, &s);
            match self.stored.get_mut(&key) {
                Some(slot) => {
                    slot.seen = true;
                    let slot = *slot;
                    self.compare(slot, &session);
                }
                None => {
                    self.inserted.insert(key);
                    self.inserts.push(session);
                }
            }
        }
        Ok(())
    }

    /// Adds the stored sessions with these (agent, start) keys to `stored`.
    fn load_into_stored<'s, C: WfmOps + Send + 's>(
        &mut self,
        c: &Db<'s, C>,
        keys: &[(i64, NaiveDateTime)],
        what: &'static str,
    ) -> anyhow::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let system_id = self.plan.system_id;
        let keys = keys.to_vec();
        for s in c.call(move |c| c.load_sessions_at(system_id, &keys).context(what))? {
            self.stored
                .insert((s.external_agent_id, micros(s.started_at)), slot(&s));
        }
        Ok(())
    }

    /// Looks up the stored sessions of rows not loaded yet: all of them for changes; for a full sync,
    /// those that began before the window (stored ending before it, they are not in the stored window).
    fn load_missing<'s, C: WfmOps + Send + 's>(
        &mut self,
        c: &Db<'s, C>,
        valid: &[(u64, RawRow<'_>, SourceSession<'_>)],
    ) -> anyhow::Result<()> {
        let everything = self.plan.mode == Mode::Changes;
        let keys: Vec<(i64, NaiveDateTime)> = valid
            .iter()
            .filter(|(_, _, s)| everything || s.started_at < self.plan.window.start)
            .filter_map(|(_, _, s)| {
                let agent = self.agents.entries[self.agents.get(s.agent_id)?].id;
                let key = (agent, micros(s.started_at));
                (!self.stored.contains_key(&key) && !self.inserted.contains(&key))
                    .then_some((agent, s.started_at))
            })
            .collect();
        self.load_into_stored(c, &keys, "loading the stored sessions of the rows read")
    }

    /// Loads the stored agent IDs among `names` that are not loaded yet (incremental runs).
    fn load_agents_named<'s, C: WfmOps + Send + 's>(
        &mut self,
        c: &Db<'s, C>,
        mut names: Vec<String>,
    ) -> anyhow::Result<()> {
        names.retain(|n| self.agents.get(n).is_none());
        names.sort_unstable();
        names.dedup();
        if names.is_empty() {
            return Ok(());
        }
        let system_id = self.plan.system_id;
        let found = c.call(move |c| {
            c.load_agents_named(system_id, &names)
                .context("loading agent IDs")
        })?;
        for (id, name, first, last) in found {
            self.agents.add(id, name, first, last, false);
        }
        Ok(())
    }

    /// Loads the stored agent IDs and codes these rows name that are not loaded yet (incremental runs).
    fn load_named<'s, C: WfmOps + Send + 's>(
        &mut self,
        c: &Db<'s, C>,
        valid: &[(u64, RawRow<'_>, SourceSession<'_>)],
    ) -> anyhow::Result<()> {
        let system_id = self.plan.system_id;
        let agents: Vec<String> = valid
            .iter()
            .map(|(_, _, s)| s.agent_id)
            .filter(|a| self.agents.get(a).is_none())
            .map(str::to_owned)
            .collect();
        self.load_agents_named(c, agents)?;
        let mut codes: Vec<String> = valid
            .iter()
            .filter_map(|(_, _, s)| s.activity_code)
            .filter(|code| self.codes.get(code).is_none())
            .map(str::to_owned)
            .collect();
        codes.sort_unstable();
        codes.dedup();
        if !codes.is_empty() {
            let found = c.call(move |c| {
                c.load_codes_named(system_id, &codes)
                    .context("loading activity codes")
            })?;
            for (id, code, first, last) in found {
                self.codes.add(id, code, first, last, false);
            }
        }
        Ok(())
    }

    fn register_new_names<'s, C: WfmOps + Send + 's>(
        &mut self,
        c: &Db<'s, C>,
        valid: &[(u64, RawRow<'_>, SourceSession<'_>)],
    ) -> anyhow::Result<()> {
        let system_id = self.plan.system_id;
        if self.plan.mode == Mode::Changes {
            self.load_named(c, valid)?;
        }
        let mut new_agents: Vec<NewAgentId<'_>> = Vec::new();
        let mut new_codes: Vec<NewActivityCode<'_>> = Vec::new();
        let mut seen_agents: FxHashSet<&str> = FxHashSet::default();
        let mut seen_codes: FxHashSet<&str> = FxHashSet::default();
        for (_, _, s) in valid {
            if self.agents.get(s.agent_id).is_none() && seen_agents.insert(s.agent_id) {
                new_agents.push(NewAgentId {
                    external_system_id: system_id,
                    external_id: s.agent_id,
                    first_seen_at: Some(s.started_at),
                    last_seen_at: Some(s.started_at),
                });
            }
            if let Some(code) = s.activity_code {
                if self.codes.get(code).is_none() && seen_codes.insert(code) {
                    new_codes.push(NewActivityCode {
                        external_system_id: system_id,
                        code,
                        activity_id: PRESENT_ACTIVITY_ID,
                        first_seen_at: Some(s.started_at),
                        last_seen_at: Some(s.started_at),
                    });
                }
            }
        }
        if !new_agents.is_empty() || !new_codes.is_empty() {
            tracing::debug!(
                agent_ids = new_agents.len(),
                codes = new_codes.len(),
                "registering new names"
            );
        }
        if !new_agents.is_empty() {
            let first_seen: FxHashMap<&str, Option<NaiveDateTime>> = new_agents
                .iter()
                .map(|a| (a.external_id, a.first_seen_at))
                .collect();
            // The writer thread needs owned values.
            let owned: Vec<(String, Option<NaiveDateTime>)> = new_agents
                .iter()
                .map(|a| (a.external_id.to_owned(), a.first_seen_at))
                .collect();
            let inserted = c.call_ahead(move |c| {
                let rows: Vec<NewAgentId<'_>> = owned
                    .iter()
                    .map(|(name, t)| NewAgentId {
                        external_system_id: system_id,
                        external_id: name,
                        first_seen_at: *t,
                        last_seen_at: *t,
                    })
                    .collect();
                c.insert_agents(system_id, &rows)
                    .context("registering new agent IDs")
            })?;
            for (id, name) in inserted {
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
            let owned: Vec<(String, Option<NaiveDateTime>)> = new_codes
                .iter()
                .map(|a| (a.code.to_owned(), a.first_seen_at))
                .collect();
            let inserted = c.call_ahead(move |c| {
                let rows: Vec<NewActivityCode<'_>> = owned
                    .iter()
                    .map(|(code, t)| NewActivityCode {
                        external_system_id: system_id,
                        code,
                        activity_id: PRESENT_ACTIVITY_ID,
                        first_seen_at: *t,
                        last_seen_at: *t,
                    })
                    .collect();
                c.insert_codes(system_id, &rows)
                    .context("registering new activity codes")
            })?;
            for (id, code) in inserted {
                let t = first_seen.get(code.as_str()).copied().flatten();
                self.counts.new_activity_codes += 1;
                self.codes.add(id, code, t, t, true);
            }
        }
        Ok(())
    }

    fn flush<'s, C: WfmOps + Send + 's>(&mut self, c: &Db<'s, C>, all: bool) -> anyhow::Result<()> {
        if !self.inserts.is_empty() && (all || self.inserts.len() >= INSERT_BATCH) {
            let rows = std::mem::replace(&mut self.inserts, Vec::with_capacity(INSERT_BATCH));
            c.write(move |c, w| {
                let n = c.insert_sessions(&rows).context("inserting new sessions")?;
                w.inserted.fetch_add(n as u64, Ordering::AcqRel);
                Ok(())
            })?;
        }
        if !self.updates.is_empty() && (all || self.updates.len() >= WRITE_BATCH) {
            let rows = std::mem::take(&mut self.updates);
            c.write(move |c, w| {
                let n = c
                    .update_sessions(&rows)
                    .context("updating changed sessions")?;
                w.updated.fetch_add(n as u64, Ordering::AcqRel);
                Ok(())
            })?;
        }
        if !self.deletes.is_empty() && (all || self.deletes.len() >= WRITE_BATCH) {
            let ids = std::mem::take(&mut self.deletes);
            c.write(move |c, w| {
                let n = c
                    .delete_sessions(&ids)
                    .context("deleting sessions the source no longer returns")?;
                w.deleted.fetch_add(n as u64, Ordering::AcqRel);
                Ok(())
            })?;
        }
        if !self.rejected.is_empty() && (all || self.rejected.len() >= WRITE_BATCH) {
            let rows = std::mem::take(&mut self.rejected);
            c.write(move |c, _| {
                c.insert_rejected(&rows)
                    .context("keeping the rejected rows")?;
                Ok(())
            })?;
        }
        Ok(())
    }
}

fn duplicate(s: &SourceSession<'_>) -> Rejection {
    Rejection::new(
        Field::StartedAt,
        format!(
            "duplicate: agent {} already has a session starting at {} UTC in this result",
            s.agent_id, s.started_at
        ),
    )
}
