//! The changes merge of an events source (incremental mode, `shape = "events"`): only the events after the
//! watermark are read, in the order of their sequence, and paired from where the agents stood at the
//! watermark (`event_agent_states`, loaded once: one row per agent). A session a changes run closes is
//! merged by key with the stored session (the open one it ends, or none: inserted); a session it opens and
//! that is still open at the end is stored open, and the next run ends it. The run costs the events it
//! reads and the agents, never the day.

use chrono::NaiveDateTime;
use rustc_hash::FxHashMap;

use super::events::{reject_paired, went_back};
use super::merge::{Core, ValidRow};
use super::queue::{Queue, Write};
use super::run::{EventStates, Merged};
use crate::error::Failure;
use crate::events::{AgentState, Event, Pairing, Transition, Unpaired};
use crate::sessions::{self, RawRow, SourceSession};
use crate::source::query::Watermark;
use crate::source::{Batch, Rows};
use crate::store::models::SessionKey;

const NO_SEQUENCE: &str =
    "no sequence (NULL): an incremental events system reads its events in the order of their sequence, its change key";

/// An agent's open session: stored open at the watermark (`fresh` false), or opened by this run.
struct OpenSession {
    start: NaiveDateTime,
    code: Option<String>,
    row: u64,
    fresh: bool,
}

/// A session this run ends (or opened and leaves open: `end` `None`), to merge by key.
struct Done {
    agent: String,
    code: Option<String>,
    start: NaiveDateTime,
    end: Option<NaiveDateTime>,
    row: u64,
}

pub(super) struct EventsChanges<'p> {
    core: Core<'p>,
    pairing: Pairing,
    open: FxHashMap<String, OpenSession>,
    done: Vec<Done>,
    /// Sessions stored open that an event closed at their start (they lasted no time): deleted.
    vanished: Vec<(String, NaiveDateTime)>,
    /// The latest start opened, as the full merge orders sessions: one before it is rejected.
    last_open: Option<NaiveDateTime>,
}

impl<'p> EventsChanges<'p> {
    pub fn new(core: Core<'p>, states: Vec<AgentState>) -> EventsChanges<'p> {
        let mut open = FxHashMap::default();
        let mut last_open = None;
        for s in &states {
            if let Some((start, code)) = &s.open {
                last_open = last_open.max(Some(*start));
                let (start, code) = (*start, code.clone());
                let o = OpenSession {
                    start,
                    code,
                    row: 0,
                    fresh: false,
                };
                open.insert(s.agent.clone(), o);
            }
        }
        let pairing = Pairing::resumed(core.plan.system.time_zone, states);
        EventsChanges {
            core,
            pairing,
            open,
            done: Vec::new(),
            vanished: Vec::new(),
            last_open,
        }
    }

    pub fn run(mut self, queue: &Queue, rows: &mut Rows) -> anyhow::Result<Merged> {
        while let Some(batch) = rows.next_batch()? {
            self.batch(queue, &batch)?;
        }
        let states = self.pairing.states(true);
        let last: Vec<Transition> = self.pairing.drain().collect();
        last.into_iter().for_each(|t| self.play(t));
        // Opened by this run and still open: stored open (the next run ends them).
        let mut still_open: Vec<(String, OpenSession)> =
            self.open.drain().filter(|(_, o)| o.fresh).collect();
        still_open.sort_unstable_by(|a, b| (a.1.start, &a.0).cmp(&(b.1.start, &b.0)));
        for (agent, o) in still_open {
            self.done(agent, o, None);
        }
        self.write(queue)?;
        self.core.counts.read = rows.read();
        self.core.flush(queue, true)?;
        let mut merged = self.core.into_merged(0, None);
        merged.event_states = Some(EventStates { states, all: false });
        Ok(merged)
    }

    fn batch(&mut self, queue: &Queue, batch: &Batch<'_>) -> anyhow::Result<()> {
        for i in 0..batch.len() {
            match Event::read(batch.row_no(i), &batch.event(i)) {
                Ok(e) => match e.sequence {
                    Some(seq) => {
                        self.core.note_key(Watermark::Integer(seq));
                        let row = e.row;
                        self.pairing.push(e).map_err(|_| self.out_of_order(row))?;
                    }
                    None => self.core.reject_unpaired(Unpaired {
                        row: e.row,
                        values: e.texts(),
                        at: None,
                        reason: NO_SEQUENCE.into(),
                    }),
                },
                Err(u) => self.core.reject_unpaired(*u),
            }
        }
        let ts: Vec<Transition> = self.pairing.drain().collect();
        ts.into_iter().for_each(|t| self.play(t));
        self.write(queue)?;
        // Nothing is held between batches: a later batch naming the same session finds it written.
        self.core.stored.clear();
        self.core.inserted.clear();
        self.core.flush(queue, true)
    }

    fn play(&mut self, t: Transition) {
        match t {
            Transition::Open {
                agent,
                start,
                code,
                row,
            } => {
                // (A changes run reads few events: the maps below are keyed by the ID.)
                let agent = self.pairing.agent(agent).to_owned();
                if self.last_open.is_some_and(|l| start < l) {
                    reject_paired(
                        &mut self.core,
                        row,
                        &agent,
                        code.as_deref(),
                        (start, None),
                        went_back(),
                    );
                    return;
                }
                self.last_open = Some(start);
                let o = OpenSession {
                    start,
                    code,
                    row,
                    fresh: true,
                };
                self.open.insert(agent, o);
            }
            Transition::Close { agent, end } => {
                // (None: its open went back in time and was rejected.)
                let Some((agent, o)) = self.open.remove_entry(self.pairing.agent(agent)) else {
                    return;
                };
                if end == Some(o.start) {
                    // It lasted no time: not a session (a stored one is deleted).
                    if !o.fresh {
                        self.vanished.push((agent, o.start));
                    }
                    return;
                }
                self.done(agent, o, end);
            }
            Transition::Unpaired(u) => self.core.reject_pairing(*u),
        }
    }

    /// A session ended at `end` (`None`: left open), to merge with the others of the batch.
    fn done(&mut self, agent: String, o: OpenSession, end: Option<NaiveDateTime>) {
        let (code, start, row) = (o.code, o.start, o.row);
        self.done.push(Done {
            agent,
            code,
            start,
            end,
            row,
        });
    }

    /// Merges the sessions ended (or left open) so far by key with the stored ones, and deletes the
    /// stored open sessions that lasted no time.
    fn write(&mut self, queue: &Queue) -> anyhow::Result<()> {
        let done = std::mem::take(&mut self.done);
        let mut valid = Vec::with_capacity(done.len());
        for d in &done {
            match sessions::checked_times(d.start, d.end) {
                Ok((started_at, ended_at)) => valid.push(ValidRow {
                    no: d.row,
                    raw: RawRow::default(),
                    s: SourceSession::paired(&d.agent, d.code.as_deref(), started_at, ended_at),
                }),
                // Ends before it starts: times out of the order of the sequence.
                Err(why) => {
                    let (core, code) = (&mut self.core, d.code.as_deref());
                    reject_paired(core, d.row, &d.agent, code, (d.start, d.end), why);
                }
            }
        }
        self.core.merge_keyed(queue, valid)?;
        self.delete_vanished(queue)
    }

    fn delete_vanished(&mut self, queue: &Queue) -> anyhow::Result<()> {
        let vanished = std::mem::take(&mut self.vanished);
        if vanished.is_empty() {
            return Ok(());
        }
        // Their agent IDs are stored (their sessions are): looked up.
        let named: Vec<SourceSession<'_>> = vanished
            .iter()
            .map(|(agent, start)| SourceSession::paired(agent, None, *start, None))
            .collect();
        self.core.names.register(queue, named.iter(), true)?;
        let keys: Vec<SessionKey> = vanished
            .iter()
            .filter_map(|(agent, start)| {
                let agents = &self.core.names.agents;
                let id = agents.id(agents.get(agent)?);
                Some(SessionKey::new(*start, id))
            })
            .collect();
        let ids: Vec<i64> = queue.sessions_at(keys)?.iter().map(|s| s.id).collect();
        if !ids.is_empty() {
            queue.write(Write::Delete(ids))?;
        }
        Ok(())
    }

    fn out_of_order(&self, row: u64) -> Failure {
        let system = self.core.plan.system;
        let inc = system.incremental.as_ref().expect("a changes run");
        Failure::Config(format!(
            "system {:?}: row {row} of {}: the events must come in the order of their sequence (ORDER BY the sequence column); see sql/sources/README.md",
            system.name,
            inc.query.path().display()
        ))
    }
}
