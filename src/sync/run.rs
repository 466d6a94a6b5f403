//! The run: what it decided before reading (`Plan`: mode, watermark), and what it records when the merge
//! is done (counts, first/last-seen times, the next watermark, the `import_runs` row) in the merge's
//! transaction. The choice of mode and the next watermark are pure functions.

use anyhow::Context;
use chrono::{Duration, NaiveDate, NaiveDateTime};

use super::names::NameBook;
use super::schedule::Target;
use crate::config::{ExternalSystemConfig, IncrementalConfig};
use crate::source::query::Watermark;
use crate::store::models::{NameKind, RunOutcome, RunStatus};
use crate::store::WfmOps;
use crate::window::{Days, Window};

pub use crate::store::RunMode as Mode;

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
    /// Days a changes run met rows of the hour the clocks go back in: read in full next
    /// (`sync::sync_and_reconcile`), since those rows are read with the agent's other rows of that hour.
    pub reread_days: Vec<NaiveDate>,
}

/// What a merge hands to the run record.
pub(super) struct Merged {
    pub counts: Counts,
    pub names: NameBook,
    pub rejected_sample: Vec<RejectedSample>,
    pub stale_open: usize,
    pub stale_open_first: Option<NaiveDateTime>,
    pub max_change_key: Option<Watermark>,
    /// Local days a changes run wrote sessions in, in order.
    pub changed_days: Vec<NaiveDate>,
    /// Local days of repeated hours whose rows a changes run left to a full read of the day.
    pub reread_days: Vec<NaiveDate>,
    /// An incremental events system: the agents' states after the events read (`EventStates`).
    pub event_states: Option<EventStates>,
    /// Rows rejected though read: events that could not be paired.
    pub unpaired: u64,
}

/// The agents' states an events merge leaves: all of them (a full sync), or those a changes run changed.
pub(super) struct EventStates {
    pub states: Vec<crate::events::AgentState>,
    pub all: bool,
}

/// Whether a run's agents' states are stored, with the largest sequence read as the watermark: always
/// after a changes run; after a full sync when it read at least up to the stored watermark (a full sync of
/// an earlier day holds an older state than the stored one).
pub fn saves_event_states(mode: Mode, stored: Option<Watermark>, read: Option<Watermark>) -> bool {
    match (mode, stored, read) {
        (Mode::Changes, _, _) => true,
        (Mode::Full, _, None) => false,
        (Mode::Full, None, Some(_)) => true,
        (Mode::Full, Some(w), Some(n)) => n >= w,
    }
}

/// One run, decided: which system, which run row, which window, which query.
pub(super) struct Plan<'a> {
    pub system: &'a ExternalSystemConfig,
    pub system_id: i64,
    pub run_id: i64,
    pub window: Window,
    pub mode: Mode,
    /// The stored watermark, if the system is incremental and has one.
    pub watermark: Option<Watermark>,
}

/// How a run reads the source: by changes only for a sync of today, on a system in incremental mode that
/// has a watermark and had a successful full sync less than `full_sync_every` ago; otherwise in full.
pub fn choose_mode(
    target: Target,
    incremental: Option<&IncrementalConfig>,
    has_watermark: bool,
    last_full_sync: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Mode {
    match (target, incremental) {
        (Target::Today, Some(inc)) if has_watermark => {
            let every = Duration::from_std(inc.full_sync_every).unwrap_or(Duration::MAX);
            if last_full_sync.is_some_and(|t| now - t < every) {
                Mode::Changes
            } else {
                Mode::Full
            }
        }
        _ => Mode::Full,
    }
}

/// The watermark after a run that read change keys up to `read`: forward after changes, and set by the
/// first full sync; a later full sync keeps it (its rows may be older than changes already read).
pub fn next_watermark(
    mode: Mode,
    stored: Option<Watermark>,
    read: Option<Watermark>,
) -> Option<Watermark> {
    match (mode, stored, read) {
        (Mode::Changes, Some(o), Some(n)) => Some(o.max(n)),
        (Mode::Changes, o, None) => o,
        (Mode::Changes, None, n) => n,
        (Mode::Full, None, n) => n,
        (Mode::Full, Some(o), _) => Some(o),
    }
}

/// The stored watermark of an incremental system, if it has one of its kind. One that cannot be read
/// fails the run.
pub fn stored_watermark(
    system: &ExternalSystemConfig,
    stored: Option<(String, String)>,
) -> anyhow::Result<Option<Watermark>> {
    let (Some(inc), Some((kind, text))) = (&system.incremental, stored) else {
        return Ok(None);
    };
    if kind != inc.watermark.name() {
        return Ok(None);
    }
    Watermark::parse(inc.watermark, &text)
        .map(Some)
        .map_err(anyhow::Error::msg)
        .with_context(|| {
            format!(
                "system {:?}: the watermark {text:?} stored in external_systems.watermark (set it to NULL to start again with a full sync)",
                system.name
            )
        })
}

/// A run in which every row was rejected as unreadable fails (nothing it did is kept but its run row): the result is
/// not what the SQL file is meant to return (columns in another order, a change key not filled in yet, a
/// WHERE clause that no longer fits), and its rows must not stand for the source.
pub(super) fn every_row_rejected(plan: &Plan<'_>, m: &Merged) -> Option<anyhow::Error> {
    let c = &m.counts;
    // (Events read but not paired are the source's, not the query's: a run of one such event stands.)
    if c.read == 0 || c.rejected - m.unpaired.min(c.rejected) < c.read {
        return None;
    }
    let reasons: Vec<String> = m
        .rejected_sample
        .iter()
        .take(3)
        .map(|r| format!("row {} {}: {}", r.source_row, r.field, r.reason))
        .collect();
    let sql_file = match (plan.mode, &plan.system.incremental) {
        (Mode::Changes, Some(inc)) => inc.query.path(),
        _ => plan.system.query.path(),
    };
    Some(anyhow::anyhow!(
        "system {:?}: every row of {} was rejected ({} of {}), so nothing was written: check what the query returns (sql/sources/README.md). First reasons: {}",
        plan.system.name,
        sql_file.display(),
        c.rejected,
        c.read,
        reasons.join("; ")
    ))
}

/// A timestamp change key written as wall time may go back an hour when the clocks go back, and changes
/// written then would be read only by the next full sync. acdsync cannot tell which zone the source
/// server's clock is in (a UTC wall time is safe), so it warns, once per run, naming the key.
/// The watermark a changes query is given. A timestamp change key written as wall time (no offset) is read
/// in the system's zone, and goes back in the hour the clocks go back: while the watermark is a time of
/// that hour, the query is given a second before the hour, so that the changes written in its second pass
/// (keys below the watermark) are read too. Some rows are read twice, which writes nothing.
pub fn watermark_to_send(stored: Watermark, tz: chrono_tz::Tz) -> Watermark {
    match stored {
        Watermark::Timestamp(t, false) => match crate::sessions::Repeat::of(tz, t) {
            Some(r) => Watermark::Timestamp(r.wall_start - Duration::seconds(1), false),
            None => stored,
        },
        other => other,
    }
}

/// Records what the merge did, in its transaction: first/last-seen times, the watermark, the run's row.
pub(super) fn record(
    ops: &mut (dyn WfmOps + Send),
    plan: &Plan<'_>,
    m: Merged,
    finished_at: NaiveDateTime,
    mass_delete_override: Option<String>,
) -> anyhow::Result<RunReport> {
    let system = plan.system;
    let stale_open_since = m
        .stale_open_first
        .map(|t| t.and_utc().with_timezone(&system.time_zone).date_naive());
    if let Some(day) = stale_open_since {
        tracing::warn!(
            system = %system.name,
            sessions = m.stale_open,
            since = %day,
            "sessions stored open before the window are no longer returned by the source; sync {day} to close them"
        );
    }
    for (kind, names) in [
        (NameKind::AgentId, &m.names.agents),
        (NameKind::ActivityCode, &m.names.codes),
    ] {
        ops.update_seen(kind, &names.seen_changes())
            .with_context(|| format!("updating first/last-seen times of {}", kind.what()))?;
    }
    // Days a changes run wrote to wait for the next full sync of today; a full sync reads its days anew.
    match plan.mode {
        Mode::Changes => {
            let mut days = m.changed_days.clone();
            days.extend(&m.reread_days);
            ops.mark_changed_days(plan.system_id, &days).map(drop)
        }
        Mode::Full => ops
            .clear_changed_days(
                plan.system_id,
                plan.window.days.first,
                plan.window.days.last,
            )
            .map(drop),
    }
    .context("recording the days changes runs wrote to")?;
    let watermark = match &system.incremental {
        None => None,
        Some(inc) => {
            let mut next = next_watermark(plan.mode, plan.watermark, m.max_change_key);
            let states = m.event_states.as_ref();
            if let Some(s) =
                states.filter(|_| saves_event_states(plan.mode, plan.watermark, m.max_change_key))
            {
                let rows: Vec<_> = s.states.iter().map(|a| a.to_row(plan.system_id)).collect();
                ops.save_event_states(plan.system_id, &rows, s.all)
                    .context("storing the agents' states (event_agent_states)")?;
                // The watermark is where the stored states stand.
                next = m.max_change_key.or(plan.watermark);
            }
            if let Some(w) = next.filter(|w| Some(*w) != plan.watermark) {
                ops.save_watermark(
                    plan.system_id,
                    inc.watermark.name(),
                    &w.to_string(),
                    finished_at,
                )
                .context("moving the watermark")?;
            }
            next.map(|w| w.to_string())
        }
    };
    let c = &m.counts;
    let outcome = RunOutcome {
        finished_at: Some(finished_at),
        status: RunStatus::Succeeded,
        rows_read: c.read as i64,
        sessions_inserted: c.inserted as i64,
        sessions_updated: c.updated as i64,
        sessions_deleted: c.deleted as i64,
        sessions_unchanged: c.unchanged as i64,
        rows_rejected: c.rejected as i64,
        new_agent_ids: c.new_agent_ids as i64,
        new_activity_codes: c.new_activity_codes as i64,
        error: None,
        watermark: watermark.clone(),
        mass_delete_override,
    };
    ops.finish_run(plan.run_id, &outcome)
        .context("recording the run's counts")?;
    let unmapped = ops
        .count_unmapped(plan.system_id)
        .context("counting unmapped agent IDs")?;
    Ok(RunReport {
        run_id: plan.run_id,
        system: system.name.clone(),
        days: plan.window.days,
        mode: plan.mode,
        watermark,
        counts: m.counts,
        new_activity_codes: m.names.codes.new_names(),
        new_agent_ids: m.names.agents.new_names(),
        unmapped_agent_ids: unmapped,
        stale_open: m.stale_open,
        stale_open_since,
        rejected: m.rejected_sample,
        reread_days: m.reread_days,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::query::WatermarkKind;

    #[test]
    fn a_wall_clock_watermark_in_the_repeated_hour_reads_from_before_that_hour() {
        let paris = chrono_tz::Europe::Paris;
        let at = |s: &str| Watermark::parse(WatermarkKind::Timestamp, s).unwrap();
        // 02:00-03:00 happens twice on 2026-10-25: a key of its second pass may be below the watermark.
        assert_eq!(
            watermark_to_send(at("2026-10-25 02:50:00"), paris),
            at("2026-10-25 01:59:59")
        );
        for unchanged in [
            "2026-10-25 01:59:00",
            "2026-10-25 03:00:00",
            "2026-10-25 02:50:00+02:00",
            "2026-03-29 02:30:00",
        ] {
            assert_eq!(
                watermark_to_send(at(unchanged), paris),
                at(unchanged),
                "{unchanged}"
            );
        }
        assert_eq!(
            watermark_to_send(Watermark::Integer(7), paris),
            Watermark::Integer(7)
        );
    }

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    fn incremental(every_minutes: u64) -> IncrementalConfig {
        let sql = "SELECT a, b, c, d, k FROM t WHERE k > {watermark}";
        IncrementalConfig {
            query: crate::source::query::SourceQuery::parse(
                std::path::Path::new("changes.sql"),
                sql,
                crate::source::query::QueryKind::Changes,
            )
            .unwrap(),
            watermark: WatermarkKind::Integer,
            full_sync_every: std::time::Duration::from_secs(every_minutes * 60),
        }
    }

    #[test]
    fn a_run_reads_changes_only_for_today_with_a_watermark_and_a_recent_full_sync() {
        let inc = incremental(60);
        let now = at("2026-01-15 12:00");
        let day = Target::Days(Days::one(now.date()));
        let cases = [
            // (target, incremental, watermark, last full sync, expected)
            (
                Target::Today,
                Some(&inc),
                true,
                Some(at("2026-01-15 11:30")),
                Mode::Changes,
            ),
            (
                Target::Today,
                Some(&inc),
                true,
                Some(at("2026-01-15 11:00")),
                Mode::Full,
            ),
            (Target::Today, Some(&inc), true, None, Mode::Full),
            (
                Target::Today,
                Some(&inc),
                false,
                Some(at("2026-01-15 11:30")),
                Mode::Full,
            ),
            (
                Target::Today,
                None,
                true,
                Some(at("2026-01-15 11:30")),
                Mode::Full,
            ),
            (
                day,
                Some(&inc),
                true,
                Some(at("2026-01-15 11:30")),
                Mode::Full,
            ),
        ];
        for (i, (target, inc, has, last, want)) in cases.into_iter().enumerate() {
            assert_eq!(choose_mode(target, inc, has, last, now), want, "case {i}");
        }
    }

    #[test]
    fn agents_states_are_stored_after_changes_and_after_a_full_sync_that_read_up_to_the_watermark()
    {
        use Watermark::Integer as I;
        let cases = [
            // (mode, stored watermark, largest sequence read, stored)
            (Mode::Changes, Some(I(10)), Some(I(15)), true),
            (Mode::Changes, Some(I(10)), None, true),
            (Mode::Full, None, Some(I(3)), true),
            (Mode::Full, Some(I(10)), Some(I(10)), true),
            (Mode::Full, Some(I(10)), Some(I(42)), true),
            // A full sync of an earlier day read older events: the stored states are newer.
            (Mode::Full, Some(I(10)), Some(I(7)), false),
            (Mode::Full, Some(I(10)), None, false),
            (Mode::Full, None, None, false),
        ];
        for (i, (mode, stored, read, saved)) in cases.into_iter().enumerate() {
            assert_eq!(saves_event_states(mode, stored, read), saved, "case {i}");
        }
    }

    #[test]
    fn the_watermark_moves_forward_after_changes_and_is_set_once_by_a_full_sync() {
        use Watermark::Integer as I;
        let cases = [
            // (mode, stored, read, next)
            (Mode::Changes, Some(I(10)), Some(I(15)), Some(I(15))),
            (Mode::Changes, Some(I(10)), Some(I(7)), Some(I(10))),
            (Mode::Changes, Some(I(10)), None, Some(I(10))),
            (Mode::Changes, None, Some(I(3)), Some(I(3))),
            (Mode::Full, None, Some(I(42)), Some(I(42))),
            (Mode::Full, None, None, None),
            (Mode::Full, Some(I(10)), Some(I(42)), Some(I(10))),
        ];
        for (i, (mode, stored, read, next)) in cases.into_iter().enumerate() {
            assert_eq!(next_watermark(mode, stored, read), next, "case {i}");
        }
    }
}
