//! One sync of one external system and window, inside one `import_runs` row: the only place where the
//! source, the rules and the store meet. Read in this order:
//!
//! - `schedule.rs`: what to sync (a `Target`: days, or today) and the rounds of `sync --watch`;
//! - `run.rs`: the run's plan (full or changes, the watermark) and its record (counts, next watermark);
//! - `sync` below: plan, open the source, then merge and record in one WFM transaction; a failure leaves
//!   only the run's row, with its error;
//! - `full.rs`: the full merge, the source's rows in start order beside the stored window read in key
//!   order (`stream.rs`): inserts, updates and deletes, memory bounded by a batch;
//! - `changes.rs`: the changes merge (incremental mode), rows merged by key, batch by batch;
//! - `merge.rs`: what both merges share (rules, comparison, batched writes, rejected rows, keyed merge);
//!   `names.rs`: agent IDs and codes, registered when new; `repeated.rs`: the hour the clocks go back;
//! - `queue.rs`: the writer thread and its typed queue (what may jump ahead of queued writes is a type).

mod changes;
pub mod dry_ops;
pub mod dry_run;
mod events;
mod events_changes;
mod full;
pub mod guard;
mod merge;
mod names;
mod queue;
mod repeated;
pub mod run;
pub mod schedule;
mod stream;
mod ties;

use anyhow::Context;
use chrono::{NaiveDateTime, SubsecRound, Utc};

use crate::config::ExternalSystemConfig;
use crate::source;
use crate::store::models::{NameKind, NewImportRun, RunStatus};
use crate::store::reader::WindowReader;
use crate::store::{Store, WfmOps};
use names::NameBook;
use run::Plan;

pub use crate::window::{Days, Window};
pub use run::{Counts, Mode, RejectedSample, RunReport};
pub use schedule::Target;

/// Syncs one system (see `Target`). The run lock must be held. The `import_runs` row is written whatever
/// happens; on error nothing else is kept and the error (passwords removed) is in that row.
pub fn sync(
    store: &mut Store,
    system: &ExternalSystemConfig,
    target: Target,
) -> anyhow::Result<RunReport> {
    let url = store.url().clone();
    let report = recorded_sync(store, system, target)
        .map_err(|e| crate::error::explain_store_error(e, &url))?;
    // (Past the run's record: a failure here leaves the run `succeeded`, as it is.)
    crate::failpoint::hit("after_commit").map_err(|e| e.context(crate::error::AfterCommit))?;
    Ok(report)
}

/// `sync`: the run, and its row.
fn recorded_sync(
    store: &mut Store,
    system: &ExternalSystemConfig,
    target: Target,
) -> anyhow::Result<RunReport> {
    let started_at = now();
    let window = Window::new(
        system.time_zone,
        target.days(system.time_zone, Utc::now()),
        system.max_session_hours,
    );
    let store_name = store.name().to_owned();
    let recording = || {
        format!(
            "system {:?}: recording the run in {store_name}",
            system.name
        )
    };
    let facts = store
        .prepare_run(&system.name, system.time_zone.name(), started_at)
        .with_context(recording)?;
    let stored_watermark = run::stored_watermark(system, facts.watermark);
    let mode = run::choose_mode(
        target,
        system.incremental.as_ref(),
        !matches!(stored_watermark, Ok(None)),
        facts.last_full_sync,
        started_at,
    );
    let start_run = |store: &mut Store, window: &Window| {
        store
            .start_run(&NewImportRun {
                external_system_id: facts.system_id,
                first_day: window.days.first,
                last_day: window.days.last,
                window_start: window.utc.start,
                window_end: window.utc.end,
                started_at,
                status: RunStatus::Running,
                host: hostname(),
                pid: i64::from(std::process::id()),
                mode,
            })
            .with_context(recording)
    };
    // A full sync reaches back to the oldest session stored open before its lookback, so that the first
    // sync whose window holds its end closes it. (Its first read of agent_sessions: one that fails, a lock
    // wait that runs out, is recorded as a failed run of the plain window.)
    let url = store.url().clone();
    let reach_back = match mode {
        Mode::Full => store.oldest_open_before(facts.system_id, window.utc.lookback_start),
        Mode::Changes => Ok(None),
    };
    let window = match reach_back {
        Ok(Some(t)) => {
            window.reaching_back_to(system.time_zone, t.max(window.utc.start - REACH_BACK))
        }
        Ok(None) => window,
        Err(e) => {
            let e = crate::error::explain_store_error(e.context(recording()), &url);
            if let Ok(run_id) = start_run(store, &window) {
                store.record_failure(run_id, now(), &e);
            }
            return Err(e);
        }
    };
    // An events query reads ahead too, so that a session open at the window's end gets the end it has.
    let window = match system.shape {
        source::Shape::Events => window.reading_ahead(system.time_zone),
        source::Shape::Sessions => window,
    };
    let run_id = start_run(store, &window)?;
    let result = stored_watermark.and_then(|watermark| {
        let plan = Plan {
            system,
            system_id: facts.system_id,
            run_id,
            window,
            mode,
            watermark,
        };
        run_plan(store, &plan)
    });
    result
        .map_err(|e| crate::error::explain_store_error(e, &url))
        .inspect_err(|e| store.record_failure(run_id, now(), e))
}

/// `sync`, and after a full sync of today on an incremental system, a full sync of every earlier day a
/// changes run wrote to since that day's last full sync (table `changed_days`), each a run of its own: a
/// changes run cannot delete, so a start corrected in the source leaves the old session until its day is
/// read in full. The outcome of each run, the requested one first.
pub fn sync_and_reconcile(
    store: &mut Store,
    system: &ExternalSystemConfig,
    target: Target,
) -> Vec<anyhow::Result<RunReport>> {
    let first = sync(store, system, target);
    let today = Days::today(system.time_zone).first;
    let reconcile = system.incremental.is_some()
        && matches!(&first, Ok(r) if r.mode == Mode::Full && r.days.first <= today && today <= r.days.last);
    // Rows of the hour the clocks go back that a changes run met: their day, read in full now.
    let reread = match &first {
        Ok(r) => r.reread_days.clone(),
        Err(_) => Vec::new(),
    };
    let mut outcomes = vec![first];
    // (After SIGTERM or SIGINT no further run starts.)
    let stopped = || crate::stop::requested().is_some();
    for day in reread.into_iter().take_while(|_| !stopped()) {
        tracing::info!(system = %system.name, %day, "a changes run met rows of the hour the clocks go back: reading their day in full");
        outcomes.push(sync(store, system, Target::Days(Days::one(day))));
    }
    if reconcile {
        match store.changed_days(&system.name) {
            Ok(days) => {
                for day in days.into_iter().take_while(|_| !stopped()) {
                    tracing::info!(system = %system.name, %day, "a changes run wrote to this day: reading it in full");
                    outcomes.push(sync(store, system, Target::Days(Days::one(day))));
                }
            }
            // (After the first run committed: what failed is the reading of the days to read again.)
            Err(e) => outcomes.push(Err(e.context(crate::error::AfterCommit))),
        }
    }
    outcomes
}

/// Opens the source (outside the WFM transaction: a source that fails writes nothing), then merges and
/// records the run in one transaction.
fn run_plan(store: &mut Store, plan: &Plan<'_>) -> anyhow::Result<RunReport> {
    let system = plan.system;
    let what = match (plan.mode, &system.incremental, plan.watermark) {
        (Mode::Changes, Some(inc), Some(watermark)) => source::Read::Changes {
            query: &inc.query,
            window: &plan.window,
            watermark: run::watermark_to_send(watermark, system.time_zone),
        },
        _ => source::Read::Window {
            query: &system.query,
            window: &plan.window,
        },
    };
    let mut rows = source::open(system.source_spec()?, what)?;
    let reader = store.window_reader();
    store.transaction(|ops| {
        let (mut merged, written) = merge(ops, &reader, plan, &mut rows)?;
        if let Some(e) = run::every_row_rejected(plan, &merged) {
            return Err(e);
        }
        merged.counts.inserted = written.inserted;
        merged.counts.updated = written.updated;
        merged.counts.deleted = written.deleted;
        // Before anything commits: a full sync that would delete most of its window is refused.
        let overridden = match plan.mode {
            Mode::Changes => None,
            Mode::Full => {
                let c = &merged.counts;
                let stored = c.unchanged + c.updated + c.deleted;
                match guard::judge(system, plan.window.days, c.read, stored, c.deleted) {
                    guard::Verdict::Pass => None,
                    guard::Verdict::Overridden(what) => {
                        tracing::warn!(system = %system.name, "mass-delete guard overridden: {what}");
                        Some(what)
                    }
                    guard::Verdict::Refused(failure) => return Err(failure.into()),
                }
            }
        };
        crate::failpoint::hit("before_run_record")?;
        let report = run::record(ops, plan, merged, now(), overridden)?;
        crate::failpoint::hit("before_commit")?;
        Ok(report)
    })
}

/// The merge of the plan's mode, with its writer thread on `ops`.
fn merge(
    ops: &mut (dyn WfmOps + Send),
    reader: &WindowReader,
    plan: &Plan<'_>,
    rows: &mut source::Rows,
) -> anyhow::Result<(run::Merged, queue::Written)> {
    match plan.mode {
        Mode::Full => {
            // A full sync meets most of the system's agent IDs: load them all at once.
            let agents = ops
                .load_names(NameKind::AgentId, plan.system_id)
                .context("loading agent IDs")?;
            let codes = ops
                .load_names(NameKind::ActivityCode, plan.system_id)
                .context("loading activity codes")?;
            let mut core = merge::Core::new(plan, NameBook::loaded(agents, codes));
            let pages = reader.read(plan.system_id, plan.window.utc, plan.system.batch_rows);
            match plan.system.shape {
                source::Shape::Sessions => {
                    let full = full::FullMerge::new(core, stream::StoredStream::new(pages));
                    queue::with_queue(ops, plan.system_id, |q| full.run(q, rows))
                }
                // Sessions paired from events have UTC times: none is held for a repeated hour.
                source::Shape::Events => {
                    core.held.clear();
                    let full = full::FullMerge::new(core, stream::StoredStream::new(pages));
                    let events = events::EventsMerge::new(full, plan.system.time_zone);
                    queue::with_queue(ops, plan.system_id, |q| events.run(q, rows))
                }
            }
        }
        // An incremental run loads only the names its rows name.
        Mode::Changes => {
            let core = merge::Core::new(plan, NameBook::default());
            match plan.system.shape {
                source::Shape::Sessions => {
                    let changes = changes::ChangesMerge::new(core);
                    queue::with_queue(ops, plan.system_id, |q| changes.run(q, rows))
                }
                // Events go on from where the agents stood at the watermark.
                source::Shape::Events => {
                    let states = ops
                        .load_event_states(plan.system_id)
                        .context("loading the agents' states (event_agent_states)")?
                        .into_iter()
                        .map(crate::events::AgentState::from_row)
                        .collect::<Result<Vec<_>, String>>()
                        .map_err(anyhow::Error::msg)?;
                    let changes = events_changes::EventsChanges::new(core, states);
                    queue::with_queue(ops, plan.system_id, |q| changes.run(q, rows))
                }
            }
        }
    }
}

/// How far back a full sync reaches for a session stored open: sessions open longer than this are left to
/// the report of stale open sessions (`RunReport::stale_open`).
const REACH_BACK: chrono::Duration = chrono::Duration::days(31);

/// Now, UTC, to the microsecond (what PostgreSQL keeps).
pub fn now() -> NaiveDateTime {
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
