//! The events merge (`shape = "events"`): the source's events are paired as they are read
//! (`crate::events::Pairing`). Sessions open in start order, so each takes its stored session from the full
//! merge's stream when it opens, and is compared, inserted or looked up (begun before the window) when it
//! closes; stored sessions no session took are settled by the stream as for sessions. Memory holds a batch
//! of events and the agents' open sessions, never the day.

use chrono::NaiveDateTime;

use super::full::{FullMerge, Stored};
use super::merge::{Core, ValidRow, OPEN};
use super::names::UNKNOWN;
use super::queue::Queue;
use super::run::{EventStates, Merged};
use crate::error::Failure;
use crate::events::{AgentNo, Event, Pairing, Transition};
use crate::sessions::{self, RawRow, SourceSession};
use crate::source::query::Watermark;
use crate::source::{Batch, Rows};
use crate::store::models::micros;
use crate::window::Place;

/// A session open at this point of the events, with the stored session of its key.
struct Opened {
    start: NaiveDateTime,
    code: Option<String>,
    row: u64,
    agent: usize,
    code_index: u32,
    found: Stored,
}

pub(super) struct EventsMerge<'p> {
    full: FullMerge<'p>,
    pairing: Pairing,
    /// Each agent's open session, by the pairing's number of the agent.
    open: Vec<Option<Opened>>,
    /// The name book's index of each agent, by the pairing's number (`UNKNOWN` until registered).
    book: Vec<u32>,
    /// The transitions of a batch (its allocation kept from batch to batch).
    buffer: Vec<Transition>,
}

impl<'p> EventsMerge<'p> {
    pub fn new(full: FullMerge<'p>, tz: chrono_tz::Tz) -> EventsMerge<'p> {
        EventsMerge {
            full,
            pairing: Pairing::new(tz),
            open: Vec::new(),
            book: Vec::new(),
            buffer: Vec::new(),
        }
    }

    pub fn run(mut self, queue: &Queue, rows: &mut Rows) -> anyhow::Result<Merged> {
        while let Some(batch) = rows.next_batch()? {
            self.batch(queue, &batch)?;
        }
        // An incremental system keeps where the agents stand (stored if this sync read up to the watermark).
        let incremental = self.full.core().plan.system.incremental.is_some();
        let states = incremental.then(|| self.pairing.states(false));
        let mut last = self.pairing.end();
        self.transitions(queue, &mut last)?;
        let mut merged = self.full.finish(queue, rows.read())?;
        merged.event_states = states.map(|states| EventStates { states, all: true });
        Ok(merged)
    }

    fn batch(&mut self, queue: &Queue, batch: &Batch<'_>) -> anyhow::Result<()> {
        let incremental = self.full.core().plan.system.incremental.is_some();
        for i in 0..batch.len() {
            match Event::read(batch.row_no(i), &batch.event(i)) {
                Ok(e) => {
                    if let (Some(seq), true) = (e.sequence, incremental) {
                        self.full.core().note_key(Watermark::Integer(seq));
                    }
                    self
                    .pairing
                    .push(e)
                    .map_err(|o| self.out_of_order(o.row, "the events must come in the order they happened (ORDER BY the sequence column, else the time)"))?
                }
                Err(u) => self.full.core().reject_unpaired(*u),
            }
        }
        let mut ts = std::mem::take(&mut self.buffer);
        self.pairing.take_transitions(&mut ts);
        self.transitions(queue, &mut ts)?;
        self.buffer = ts;
        self.full.after_batch(queue)
    }

    /// Registers the agent IDs and codes new to this run that the sessions opened here name, then plays
    /// the transitions (`ts` is left empty).
    fn transitions(&mut self, queue: &Queue, ts: &mut Vec<Transition>) -> anyhow::Result<()> {
        let Self {
            full,
            pairing,
            book,
            ..
        } = self;
        book.resize(pairing.agents_numbered(), UNKNOWN);
        let core = full.core();
        let new: Vec<SourceSession<'_>> = ts
            .iter()
            .filter_map(|t| match t {
                Transition::Open {
                    agent, start, code, ..
                } if book[*agent as usize] == UNKNOWN
                    || core.names.code_index(code.as_deref()) == UNKNOWN =>
                {
                    let agent = pairing.agent(*agent);
                    Some(SourceSession::paired(agent, code.as_deref(), *start, None))
                }
                _ => None,
            })
            .collect();
        if !new.is_empty() {
            let (agents, codes) = core.names.register(queue, new.iter(), false)?;
            core.counts.new_agent_ids += agents;
            core.counts.new_activity_codes += codes;
            for s in &new {
                let no = pairing
                    .number_of(s.agent_id)
                    .expect("numbered by the pairing");
                book[no as usize] = core.names.agents.index_of(s.agent_id);
            }
        }
        drop(new);
        for t in ts.drain(..) {
            self.play(t)?;
        }
        Ok(())
    }

    fn play(&mut self, t: Transition) -> anyhow::Result<()> {
        match t {
            Transition::Open {
                agent,
                start,
                code,
                row,
            } => {
                let agent_index = self.book[agent as usize] as usize;
                let code_index = self.full.core().names.code_index(code.as_deref());
                let Some(found) = self.full.open_slot(agent_index, micros(start))? else {
                    // Its time goes back in the sequence's order: not a session (reported in its window).
                    self.skip(agent, start, code.as_deref(), row);
                    return Ok(());
                };
                let opened = Opened {
                    start,
                    code,
                    row,
                    agent: agent_index,
                    code_index,
                    found,
                };
                let no = agent as usize;
                if self.open.len() <= no {
                    self.open.resize_with(no + 1, || None);
                }
                self.open[no] = Some(opened);
            }
            Transition::Close { agent, end } => {
                // (None: its open went back in time and was rejected.)
                let o = self.open.get_mut(agent as usize).and_then(Option::take);
                if let Some(o) = o {
                    self.close(agent, o, end);
                }
            }
            Transition::Unpaired(u) => {
                // Reported by the sync whose window holds it (other windows read it for their lookback).
                let window = self.full.core().plan.window.utc;
                if u.at.is_none_or(|t| window.start <= t && t < window.end) {
                    self.full.core().reject_pairing(*u);
                }
            }
        }
        Ok(())
    }

    /// A session closed at `end` (`None`: open at the end of what is read): merged if it is the window's.
    fn close(&mut self, agent: AgentNo, o: Opened, end: Option<NaiveDateTime>) {
        let Self { full, pairing, .. } = self;
        let agent = pairing.agent(agent);
        let taken = matches!(o.found, Stored::Taken(_));
        if end == Some(o.start) {
            // It lasted no time: not a session; the stored session of its key is another's to take.
            if taken {
                full.put_back(o.agent, micros(o.start));
            }
            return;
        }
        // Open at the end of a read that ends in the past: its end is after what this sync reads. A later
        // day's sync, which reads it, wrote the end stored: keep it.
        let read_end = full.core().plan.window.read_utc.end;
        if let (None, Stored::Taken(slot)) = (end, &o.found) {
            if slot.end != OPEN && read_end < chrono::Utc::now().naive_utc() {
                full.core().counts.unchanged += 1;
                return;
            }
        }
        let checked = sessions::checked_times(o.start, end)
            .map(|(start, end)| SourceSession::paired(agent, o.code.as_deref(), start, end));
        let window = full.core().plan.window;
        match checked {
            Ok(s) if matches!(window.place(&s), Place::Own) => {
                // (The values as read matter only to a rejection: none are written here.)
                let raw = RawRow::default();
                let v = ValidRow { no: o.row, raw, s };
                full.settle(&v, o.agent, o.code_index, o.found);
            }
            // Paired from the events read around the window: its own day's sync writes it; a stored session
            // it took is settled as no session's (reported as stale if stored open).
            Ok(_) => {
                if let Stored::Taken(slot) = o.found {
                    full.release(o.agent, micros(o.start), slot);
                }
            }
            // Ends before it starts: times out of the order of the sequence. Reported by the sync of its day.
            Err(why) => {
                if window.utc.start <= o.start && o.start < window.utc.end {
                    let core = full.core();
                    reject_paired(core, o.row, agent, o.code.as_deref(), (o.start, end), why);
                }
                // (A rejected row never deletes: the stored session it took stays as it is.)
            }
        }
    }

    /// A session whose start goes back before one opened earlier: rejected by the sync whose window holds
    /// it; its close is then nothing.
    fn skip(&mut self, agent: AgentNo, start: NaiveDateTime, code: Option<&str>, row: u64) {
        let agent = self.pairing.agent(agent);
        let core = self.full.core();
        // A rejected row never deletes: the stored session of its key is kept.
        core.protect(Some(agent), Some(start));
        let window = core.plan.window.utc;
        if window.start <= start && start < window.end {
            reject_paired(core, row, agent, code, (start, None), went_back());
        }
    }

    fn out_of_order(&mut self, row: u64, what: &str) -> Failure {
        let system = self.full.core().plan.system;
        Failure::Config(format!(
            "system {:?}: row {row} of {}: {what}; see sql/sources/README.md",
            system.name,
            system.query.path().display()
        ))
    }
}

/// Rejects a session paired from events, its values as text (times in UTC) in `rejected_rows`.
pub(super) fn reject_paired(
    core: &mut Core<'_>,
    row: u64,
    agent: &str,
    code: Option<&str>,
    (start, end): (NaiveDateTime, Option<NaiveDateTime>),
    why: sessions::Rejection,
) {
    let utc = |t: NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string();
    let (start_text, end_text) = (utc(start), end.map(utc));
    let raw = RawRow {
        agent_id: Some(agent.as_bytes()),
        activity_code: code.map(str::as_bytes),
        started_at: Some(start_text.as_bytes()),
        ended_at: end_text.as_deref().map(str::as_bytes),
        change_key: None,
        too_long: None,
    };
    // A rejected row never deletes: the stored session of its key is kept.
    core.protect(Some(agent), Some(start));
    core.unpaired += 1;
    core.reject(row, &raw, why);
}

/// A session that opens before one opened earlier in the order of the events.
pub(super) fn went_back() -> sessions::Rejection {
    sessions::Rejection::new(
        sessions::Field::Event,
        "its time goes back before a session opened earlier, in the order of the sequence (check the sequence column, or the hour the clocks go back)",
    )
}
