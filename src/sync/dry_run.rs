//! `acdsync sync --dry-run`: everything a sync does up to the write (connect, extract, pair, validate,
//! merge with the stored window, the mass-delete guard's verdict), in a read-only transaction that is rolled
//! back, with the store's writes only noted (`DryOps`). Nothing at all is written: no session, no agent ID
//! or code registered, no run row, no watermark, no run lock taken (SQLite: no write lock either). What it
//! would do is printed: the counts, and with `--format json|csv` every session it would insert, update
//! (before and after) and delete, and the agent IDs and codes it would register.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{NaiveDateTime, Utc};
use chrono_tz::Tz;

use super::dry_ops::DryOps;
use super::run::{self, Counts, Mode, Plan};
use super::{guard, merge, now, Target, REACH_BACK};
use crate::config::ExternalSystemConfig;
use crate::source;
use crate::store::models::{NameKind, StoredSession};
use crate::store::Store;
use crate::window::{Days, Window};

/// A session as a dry run shows it: names, and UTC instants.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionText {
    pub agent_id: String,
    pub activity_code: Option<String>,
    pub started_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
}

/// What a sync of one system would do.
#[derive(Debug)]
pub struct DryRunReport {
    pub system: String,
    pub time_zone: Tz,
    pub days: Days,
    pub mode: Mode,
    pub counts: Counts,
    /// The mass-delete guard's verdict, when it is not a plain pass: (refused, what).
    pub guard: Option<(bool, String)>,
    pub insert: Vec<SessionText>,
    pub update: Vec<(SessionText, SessionText)>,
    pub delete: Vec<SessionText>,
    pub new_agent_ids: Vec<String>,
    pub new_activity_codes: Vec<String>,
}

/// A dry run of one system's sync of `target`.
pub fn dry_run(
    store: &mut Store,
    system: &ExternalSystemConfig,
    target: Target,
) -> anyhow::Result<DryRunReport> {
    let tz = system.time_zone;
    let started_at = now();
    let window = Window::new(tz, target.days(tz, Utc::now()), system.max_session_hours);
    // A system the store has not seen: nothing stored, every name new (id -1 matches nothing).
    let facts = store.run_facts(&system.name, tz.name())?;
    let (system_id, watermark, last_full_sync) = match facts {
        Some(f) => (f.system_id, f.watermark, f.last_full_sync),
        None => (-1, None, None),
    };
    let watermark = run::stored_watermark(system, watermark)?;
    let mode = run::choose_mode(
        target,
        system.incremental.as_ref(),
        watermark.is_some(),
        last_full_sync,
        started_at,
    );
    let window = match mode {
        Mode::Full => match store.oldest_open_before(system_id, window.utc.lookback_start)? {
            Some(t) => window.reaching_back_to(tz, t.max(window.utc.start - REACH_BACK)),
            None => window,
        },
        Mode::Changes => window,
    };
    let window = match system.shape {
        source::Shape::Events => window.reading_ahead(tz),
        source::Shape::Sessions => window,
    };
    let plan = Plan {
        system,
        system_id,
        run_id: 0,
        window,
        mode,
        watermark,
    };
    let what = match (plan.mode, &system.incremental, plan.watermark) {
        (Mode::Changes, Some(inc), Some(watermark)) => source::Read::Changes {
            query: &inc.query,
            window: &plan.window,
            watermark: run::watermark_to_send(watermark, tz),
        },
        _ => source::Read::Window {
            query: &system.query,
            window: &plan.window,
        },
    };
    let mut rows = source::open(system.source_spec()?, what)?;
    let reader = store.window_reader();
    store.dry_transaction(|ops| {
        let mut dry = DryOps::new(ops);
        let (mut merged, written) = merge(&mut dry, &reader, &plan, &mut rows)?;
        if let Some(e) = run::every_row_rejected(&plan, &merged) {
            return Err(e);
        }
        merged.counts.inserted = written.inserted;
        merged.counts.updated = written.updated;
        merged.counts.deleted = written.deleted;
        let c = &merged.counts;
        let guard = match mode {
            Mode::Changes => None,
            Mode::Full => {
                let stored = c.unchanged + c.updated + c.deleted;
                match guard::judge(system, plan.window.days, c.read, stored, c.deleted) {
                    guard::Verdict::Pass => None,
                    guard::Verdict::Overridden(what) => Some((false, what)),
                    guard::Verdict::Refused(failure) => Some((true, failure.to_string())),
                }
            }
        };
        let diff = std::mem::take(&mut dry.diff);
        let ops = dry.inner;
        // Names of the ids the sessions name: the stored ones and those the run would register.
        let mut agents: HashMap<i64, String> = HashMap::new();
        let mut codes: HashMap<i64, String> = HashMap::new();
        for (kind, into) in [
            (NameKind::AgentId, &mut agents),
            (NameKind::ActivityCode, &mut codes),
        ] {
            for r in ops.load_names(kind, system_id).context("loading names")? {
                into.insert(r.id, r.name);
            }
        }
        agents.extend(diff.new_agent_ids.iter().cloned());
        codes.extend(diff.new_codes.iter().cloned());
        let text = |agent: i64, code: Option<i64>, start, end| SessionText {
            agent_id: agents
                .get(&agent)
                .cloned()
                .unwrap_or_else(|| agent.to_string()),
            activity_code: code.map(|c| codes.get(&c).cloned().unwrap_or_else(|| c.to_string())),
            started_at: start,
            ended_at: end,
        };
        let stored_text = |s: &StoredSession| {
            text(
                s.external_agent_id,
                s.external_activity_code_id,
                s.started_at,
                s.ended_at,
            )
        };
        let touched: Vec<i64> = diff
            .updated
            .iter()
            .map(|u| u.id)
            .chain(diff.deleted.iter().copied())
            .collect();
        let before: HashMap<i64, StoredSession> = ops
            .load_sessions_by_id(&touched)
            .context("loading the sessions it would change")?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let mut insert: Vec<_> = diff
            .inserted
            .iter()
            .map(|n| {
                text(
                    n.external_agent_id,
                    n.external_activity_code_id,
                    n.started_at,
                    n.ended_at,
                )
            })
            .collect();
        let mut update: Vec<_> = diff
            .updated
            .iter()
            .filter_map(|u| {
                let b = before.get(&u.id)?;
                let after = text(
                    b.external_agent_id,
                    u.external_activity_code_id,
                    b.started_at,
                    u.ended_at,
                );
                Some((stored_text(b), after))
            })
            .collect();
        let mut delete: Vec<_> = diff
            .deleted
            .iter()
            .filter_map(|id| before.get(id).map(stored_text))
            .collect();
        insert.sort();
        update.sort();
        delete.sort();
        let mut new_agent_ids: Vec<String> =
            diff.new_agent_ids.into_iter().map(|(_, n)| n).collect();
        let mut new_activity_codes: Vec<String> =
            diff.new_codes.into_iter().map(|(_, n)| n).collect();
        new_agent_ids.sort();
        new_activity_codes.sort();
        Ok(DryRunReport {
            system: system.name.clone(),
            time_zone: tz,
            days: plan.window.days,
            mode,
            counts: merged.counts.clone(),
            guard,
            insert,
            update,
            delete,
            new_agent_ids,
            new_activity_codes,
        })
    })
}

/// How a dry run is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DryFormat {
    /// The counts, for people.
    Text,
    /// The counts and every change, one JSON array of systems.
    Json,
    /// Every change, one line each.
    Csv,
}

fn local(tz: Tz, t: NaiveDateTime) -> String {
    crate::admin::local(tz, t)
}

fn session_json(tz: Tz, s: &SessionText) -> serde_json::Value {
    serde_json::json!({
        "agent_id": s.agent_id,
        "activity_code": s.activity_code,
        "started_at": local(tz, s.started_at),
        "ended_at": s.ended_at.map(|t| local(tz, t)),
    })
}

/// The reports in `format`.
pub fn render(reports: &[DryRunReport], format: DryFormat) -> anyhow::Result<String> {
    match format {
        DryFormat::Text => Ok(reports.iter().map(text).collect()),
        DryFormat::Json => {
            let all: Vec<serde_json::Value> = reports.iter().map(json).collect();
            Ok(serde_json::to_string_pretty(&all)? + "\n")
        }
        DryFormat::Csv => csv(reports),
    }
}

fn days_text(d: Days) -> String {
    if d.first == d.last {
        d.first.to_string()
    } else {
        format!("{} to {}", d.first, d.last)
    }
}

fn text(r: &DryRunReport) -> String {
    let c = &r.counts;
    let mut s = format!(
        "dry run, nothing written: system {:?}, {} ({})\n  rows read {}; sessions: would insert {}, update {}, delete {}; unchanged {}; rows rejected {}\n",
        r.system,
        days_text(r.days),
        r.mode.name(),
        c.read,
        c.inserted,
        c.updated,
        c.deleted,
        c.unchanged,
        c.rejected
    );
    for (what, names) in [
        ("agent IDs", &r.new_agent_ids),
        ("activity codes", &r.new_activity_codes),
    ] {
        if !names.is_empty() {
            let shown: Vec<&str> = names.iter().take(20).map(String::as_str).collect();
            let more = if names.len() > 20 { ", …" } else { "" };
            s += &format!(
                "  new {what} it would register ({}): {}{more}\n",
                names.len(),
                shown.join(", ")
            );
        }
    }
    match &r.guard {
        Some((true, why)) => {
            s += &format!("  the mass-delete guard would refuse this sync: {why}\n")
        }
        Some((false, what)) => s += &format!("  the mass-delete guard is overridden: {what}\n"),
        None => {}
    }
    s
}

fn json(r: &DryRunReport) -> serde_json::Value {
    let tz = r.time_zone;
    let c = &r.counts;
    serde_json::json!({
        "system": r.system,
        "time_zone": tz.name(),
        "first_day": r.days.first.to_string(),
        "last_day": r.days.last.to_string(),
        "mode": r.mode.name(),
        "counts": {
            "read": c.read, "insert": c.inserted, "update": c.updated, "delete": c.deleted,
            "unchanged": c.unchanged, "rejected": c.rejected,
            "new_agent_ids": r.new_agent_ids.len(), "new_activity_codes": r.new_activity_codes.len(),
        },
        "guard": r.guard.as_ref().map(|(refused, what)| serde_json::json!({
            "verdict": if *refused { "refuse" } else { "overridden" },
            "message": what,
        })),
        "insert": r.insert.iter().map(|s| session_json(tz, s)).collect::<Vec<_>>(),
        "update": r.update.iter().map(|(b, a)| serde_json::json!({
            "before": session_json(tz, b), "after": session_json(tz, a),
        })).collect::<Vec<_>>(),
        "delete": r.delete.iter().map(|s| session_json(tz, s)).collect::<Vec<_>>(),
        "new_agent_ids": r.new_agent_ids,
        "new_activity_codes": r.new_activity_codes,
    })
}

fn csv(reports: &[DryRunReport]) -> anyhow::Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record([
        "change",
        "system",
        "agent_id",
        "activity_code",
        "started_at",
        "ended_at",
    ])?;
    for r in reports {
        let tz = r.time_zone;
        let mut line = |change: &str, s: &SessionText| {
            w.write_record([
                change,
                &r.system,
                &s.agent_id,
                s.activity_code.as_deref().unwrap_or(""),
                &local(tz, s.started_at),
                &s.ended_at.map(|t| local(tz, t)).unwrap_or_default(),
            ])
        };
        for s in &r.insert {
            line("insert", s)?;
        }
        for (b, a) in &r.update {
            line("update_before", b)?;
            line("update_after", a)?;
        }
        for s in &r.delete {
            line("delete", s)?;
        }
        for a in &r.new_agent_ids {
            w.write_record(["new_agent_id", &r.system, a, "", "", ""])?;
        }
        for c in &r.new_activity_codes {
            w.write_record(["new_activity_code", &r.system, "", c, "", ""])?;
        }
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// `sync --dry-run`: what each sync would do, printed; nothing written, no lock taken. Exit 66 when the
/// mass-delete guard would refuse one.
pub fn command(
    reporter: crate::report::Reporter,
    config: &crate::config::Config,
    jobs: &[super::schedule::Job<'_>],
    format: DryFormat,
) -> anyhow::Result<u8> {
    let mut store = Store::open_for_sync(&config.database_url)?;
    let mut reports = Vec::new();
    // As a sync: a system that fails is reported, the others are still run; the first failure's code.
    let mut failure = None;
    for (system, target) in jobs {
        match dry_run(&mut store, system, *target) {
            Ok(report) => reports.push(report),
            Err(e) => {
                let e = crate::error::explain_store_error(e, &config.database_url);
                let what = format!("system {:?}: dry run failed", system.name);
                reporter.failure("dry run failed for this system", &what, &e);
                failure.get_or_insert(crate::error::exit_code(&e));
            }
        }
    }
    reporter.out(&render(&reports, format)?);
    let refused = reports.iter().any(|r| matches!(r.guard, Some((true, _))));
    Ok(match (failure, refused) {
        (Some(code), _) => code,
        (None, true) => crate::error::exit::MASS_DELETE,
        (None, false) => crate::error::exit::OK,
    })
}
