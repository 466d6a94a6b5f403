//! The full merge: the source's rows in start order, side by side with the stored window in key order
//! (`stream.rs`). Each row is compared with the stored session of the same agent and start; what differs
//! is written in batches: new sessions, changed ones, and stored ones no row matched. Memory holds a batch
//! of rows, a page of stored sessions, the system's names and (one day a year) the rows of the hour the
//! clocks go back: never the day.

use rustc_hash::{FxHashMap, FxHashSet};

use super::merge::{duplicate, Core, Slot, ValidRow, OPEN};
use super::names::UNKNOWN;
use super::queue::Queue;
use super::repeated::RepeatedHourRow;
use super::run::Merged;
pub(super) use super::stream::Stored;
use super::stream::StoredStream;
use super::ties::{self, Carried};
use crate::error::Failure;
use crate::sessions::Field;
use crate::source::{Batch, Rows};
use crate::store::models::{from_micros, micros, NewSession, SessionKey};
use crate::window::Place;

/// In place of an agent ID's index: a row read for the ties at its start only (`Place::Context`).
const CONTEXT: u32 = u32::MAX - 2;

pub(super) struct FullMerge<'p> {
    core: Core<'p>,
    stream: StoredStream,
    /// The source start being merged (rows come in start order), and the agents seen at it whose rows
    /// have no stored session (to tell duplicates among new rows).
    current_start: Option<i64>,
    agents_at_start: FxHashSet<i64>,
    /// Rows that start before the window with no stored session in it: looked up by key, batch by batch.
    before_window: Vec<NewSession>,
    stale_open: usize,
    stale_open_first: Option<i64>,
    /// Stored sessions of the window no row matched: deleted at the end of the result, unless a rejected
    /// row names them (`Protected`). Only what the source lost is held here, not the day.
    gone: Vec<(SessionKey, i64)>,
    /// Valid rows at the last start of the batch before, merged with the next batch's rows at that start.
    carried: Vec<Carried>,
}

impl<'p> FullMerge<'p> {
    pub fn new(core: Core<'p>, stream: StoredStream) -> FullMerge<'p> {
        FullMerge {
            core,
            stream,
            current_start: None,
            agents_at_start: FxHashSet::default(),
            before_window: Vec::new(),
            stale_open: 0,
            stale_open_first: None,
            gone: Vec::new(),
            carried: Vec::new(),
        }
    }

    pub fn run(mut self, queue: &Queue, rows: &mut Rows) -> anyhow::Result<Merged> {
        while let Some(batch) = rows.next_batch()? {
            self.batch(queue, &batch)?;
        }
        let carried = std::mem::take(&mut self.carried);
        let last: Vec<_> = carried.iter().map(|c| (c.view(), c.names)).collect();
        self.stream_rows(&last)?;
        self.finish(queue, rows.read())
    }

    /// After the last row: the stored sessions no row matched are settled, the held rows merged, what
    /// remains written.
    pub fn finish(mut self, queue: &Queue, read: u64) -> anyhow::Result<Merged> {
        self.core.counts.read = read;
        self.merge_before_window(queue)?;
        self.finish_stream(queue)?;
        self.core.finish_repeated_hour(queue)?;
        // Stored sessions of the held spans that no source row matched.
        let gone: Vec<(SessionKey, Slot)> = self
            .core
            .stored
            .iter()
            .filter(|(_, slot)| !slot.seen)
            .map(|(key, slot)| (*key, *slot))
            .collect();
        for (key, slot) in gone {
            self.unmatched(key, slot);
        }
        self.delete_gone(queue)?;
        self.core.flush(queue, true)?;
        Ok(self
            .core
            .into_merged(self.stale_open, self.stale_open_first))
    }

    fn batch(&mut self, queue: &Queue, batch: &Batch<'_>) -> anyhow::Result<()> {
        // Pass 1: rules and the window; each row's agent ID and code looked up once (UNKNOWN: new in this
        // batch).
        let mut valid: Vec<ValidRow<'_>> = Vec::with_capacity(batch.len());
        let mut names: Vec<(u32, u32)> = Vec::with_capacity(batch.len());
        for i in 0..batch.len() {
            let no = batch.row_no(i);
            let raw = batch.row(i);
            let Some(s) = self.core.admit(no, &raw) else {
                continue;
            };
            // A row whose end happens twice is placed once it is read with its agent's rows of that hour.
            let place = match s.in_repeated_hour {
                true => Place::Own,
                false => self.core.plan.window.place(&s),
            };
            let agent_and_code = match place {
                Place::Own => {
                    let agent = self.core.names.agents.index_of(s.agent_id);
                    (agent, self.core.names.code_index(s.activity_code))
                }
                // Kept for the ties at its start, then left.
                Place::Context => (CONTEXT, CONTEXT),
                Place::Outside(why) => {
                    self.core.reject(no, &raw, why);
                    continue;
                }
            };
            names.push(agent_and_code);
            valid.push(ValidRow { no, raw, s });
        }
        self.register_unknown(queue, &valid, &mut names)?;
        // Rows at one start are merged together (ties); those at the batch's last start wait for the next.
        let mut carried = std::mem::take(&mut self.carried);
        let from_carry = carried.len();
        let rows: Vec<(ValidRow<'_>, (u32, u32))> = carried
            .iter()
            .map(|c| (c.view(), c.names))
            .chain(valid.into_iter().zip(names))
            .collect();
        let last_start = rows.last().map(|(v, _)| v.s.started_at);
        let cut = rows
            .iter()
            .rposition(|(v, _)| Some(v.s.started_at) != last_start)
            .map_or(0, |i| i + 1);
        self.stream_rows(&rows[..cut])?;
        // The rows carried again keep their copies; only this batch's are copied.
        let new: Vec<Carried> = rows[cut.max(from_carry)..]
            .iter()
            .map(|(v, n)| Carried::new(v, *n))
            .collect();
        drop(rows);
        self.carried = carried.split_off(cut.min(from_carry));
        self.carried.extend(new);
        self.merge_before_window(queue)?;
        self.core.flush(queue, false)
    }

    /// Merges rows in start order with the stored stream, the rows at one start together.
    fn stream_rows(&mut self, rows: &[(ValidRow<'_>, (u32, u32))]) -> anyhow::Result<()> {
        let mut i = 0;
        while i < rows.len() {
            let start = rows[i].0.s.started_at;
            let group = &rows[i..];
            let n = group
                .iter()
                .take_while(|(v, _)| v.s.started_at == start)
                .count();
            let group = &group[..n];
            // Most starts hold one row per agent: merged as they come, with no sorting.
            let tied = n > 1
                && (n > 16
                    || (1..n)
                        .any(|a| (0..a).any(|b| group[a].0.s.agent_id == group[b].0.s.agent_id)));
            if tied {
                self.stream_tied(group)?;
            } else {
                for (v, (agent, code)) in group {
                    if *agent != CONTEXT {
                        self.stream_row(v, *agent as usize, *code)?;
                    }
                }
            }
            i += n;
        }
        Ok(())
    }

    /// Rows at one start: of an agent's rows (context rows too), the one `ties` keeps is merged if it is
    /// the window's own; the window's other rows are rejected.
    fn stream_tied(&mut self, rows: &[(ValidRow<'_>, (u32, u32))]) -> anyhow::Result<()> {
        let mut group: Vec<&(ValidRow<'_>, (u32, u32))> = rows.iter().collect();
        let kept = ties::settle(&mut group, |r| r.0.s.agent_id, |r| &r.0);
        for (i, (v, (agent, code))) in group.iter().enumerate() {
            if kept[i] == i {
                if *agent != CONTEXT {
                    self.stream_row(v, *agent as usize, *code)?;
                }
            } else if *agent != CONTEXT {
                let why = ties::tie(&group[kept[i]].0, v);
                self.core.reject(v.no, &v.raw, why);
            }
        }
        Ok(())
    }

    /// Registers the names of this batch not known yet, and looks their indices up again.
    fn register_unknown(
        &mut self,
        queue: &Queue,
        valid: &[ValidRow<'_>],
        names: &mut [(u32, u32)],
    ) -> anyhow::Result<()> {
        let unknown = |(a, c): &(u32, u32)| *a == UNKNOWN || *c == UNKNOWN;
        if !names.iter().any(unknown) {
            return Ok(());
        }
        let new = valid.iter().zip(names.iter()).filter(|(_, n)| unknown(n));
        let (agents, codes) = self
            .core
            .names
            .register(queue, new.map(|(v, _)| &v.s), false)?;
        self.core.counts.new_agent_ids += agents;
        self.core.counts.new_activity_codes += codes;
        for (v, (agent, code)) in valid.iter().zip(names.iter_mut()) {
            if *agent == UNKNOWN {
                *agent = self.core.names.agents.index_of(v.s.agent_id);
            }
            if *code == UNKNOWN {
                *code = self.core.names.code_index(v.s.activity_code);
            }
        }
        Ok(())
    }

    /// Merges one source row with the stored stream. Rows come in start order.
    fn stream_row(&mut self, v: &ValidRow<'_>, agent: usize, code: u32) -> anyhow::Result<()> {
        let start = micros(v.s.started_at);
        match self.current_start {
            Some(cur) if start < cur => return Err(self.out_of_order(v, cur).into()),
            Some(cur) if start == cur => {}
            _ => self.advance_to(start)?,
        }
        let agent_id = self.core.names.agents.id(agent);
        let key = SessionKey {
            start,
            agent: agent_id,
        };
        let found = match self.stream.take(key) {
            // A second row for an (agent, start) already read in this result.
            Stored::AlreadyTaken => None,
            // Rows with no stored session: duplicates are told apart by the agents seen at this start.
            Stored::Absent if !self.agents_at_start.insert(agent_id) => None,
            found => Some(found),
        };
        let Some(found) = found else {
            self.core.reject(v.no, &v.raw, duplicate(&v.s));
            return Ok(());
        };
        if v.s.in_repeated_hour {
            // Its end is a repeated time: merged with the agent's rows of that hour, at the end.
            if let Stored::Taken(slot) = found {
                // Matched again there, by key.
                self.core.stored.insert(
                    key,
                    Slot {
                        seen: false,
                        ..slot
                    },
                );
            }
            self.core
                .repeated
                .push(RepeatedHourRow::new(v.no, &v.raw, &v.s));
            return Ok(());
        }
        self.write_found(v, agent, code, found);
        Ok(())
    }

    /// A row merged with what the stream held for its key: compared with its stored session, or looked up
    /// by key (it begins before the window), or inserted.
    fn write_found(&mut self, v: &ValidRow<'_>, agent: usize, code: u32, found: Stored) {
        let session = self.core.session_of(agent, code, &v.s);
        match found {
            Stored::Taken(slot) => {
                self.core.compare(slot, &session);
            }
            _ if v.s.started_at < self.core.plan.window.utc.start => {
                self.before_window.push(session)
            }
            _ => self.core.insert(session),
        }
    }

    /// The key of agent index `agent`'s session starting at `start` (microseconds).
    fn key(&self, agent: usize, start: i64) -> SessionKey {
        let agent = self.core.names.agents.id(agent);
        SessionKey { start, agent }
    }

    /// The core, for the events merge.
    pub fn core(&mut self) -> &mut Core<'p> {
        &mut self.core
    }

    /// Events: a session opens at `start` (sessions open in start order): the stored session of its key,
    /// taken now from the stream (`None`: the session starts before the last one opened).
    pub fn open_slot(&mut self, agent: usize, start: i64) -> anyhow::Result<Option<Stored>> {
        match self.current_start {
            Some(cur) if start < cur => return Ok(None),
            Some(cur) if start == cur => {}
            _ => self.advance_to(start)?,
        }
        let key = self.key(agent, start);
        Ok(Some(self.stream.take(key)))
    }

    /// Events: the stored session a context session took, settled as no session's (it is another day's).
    pub fn release(&mut self, agent: usize, start: i64, slot: Slot) {
        let key = self.key(agent, start);
        self.unmatched(key, slot);
    }

    /// Events: a session that lasted no time gives back the stored session it took.
    pub fn put_back(&mut self, agent: usize, start: i64) {
        let key = self.key(agent, start);
        self.stream.put_back(key);
    }

    /// Events: a session of the window, closed (or open at the end), with the stored session its open took.
    pub fn settle(&mut self, v: &ValidRow<'_>, agent: usize, code: u32, found: Stored) {
        if matches!(found, Stored::AlreadyTaken) {
            self.core.reject(v.no, &v.raw, duplicate(&v.s));
            return;
        }
        self.write_found(v, agent, code, found);
    }

    /// Events: after a batch, the sessions begun before the window are looked up and the writes queued.
    pub fn after_batch(&mut self, queue: &Queue) -> anyhow::Result<()> {
        self.merge_before_window(queue)?;
        self.core.flush(queue, false)
    }

    fn out_of_order(&self, v: &ValidRow<'_>, current: i64) -> Failure {
        let system = self.core.plan.system;
        Failure::Config(format!(
            "system {:?}: row {} of {}: started_at {} comes after a row starting at {} UTC: the query must return rows in start order (end it with ORDER BY the start column; see sql/sources/README.md)",
            system.name,
            v.no,
            system.query.path().display(),
            v.raw.text(Field::StartedAt).unwrap_or_default(),
            from_micros(current),
        ))
    }

    /// Moves the merge to source start `start`: stored sessions starting before it that no row matched
    /// are settled, and the stored stream is read past it.
    fn advance_to(&mut self, start: i64) -> anyhow::Result<()> {
        self.settle_before(start);
        self.current_start = Some(start);
        self.agents_at_start.clear();
        while self.stream.behind(start) {
            self.read_stored_page()?;
            self.settle_before(start);
        }
        Ok(())
    }

    fn settle_before(&mut self, start: i64) {
        for (key, slot) in self.stream.settle_before(start) {
            self.unmatched(key, slot);
        }
    }

    fn read_stored_page(&mut self) -> anyhow::Result<()> {
        let core = &self.core;
        let held = self.stream.read_page(|t| core.in_held(t))?;
        self.core.stored.extend(held);
        Ok(())
    }

    /// After the last source row: every stored session not matched yet is settled, page by page.
    fn finish_stream(&mut self, queue: &Queue) -> anyhow::Result<()> {
        loop {
            self.settle_before(i64::MAX);
            self.core.flush(queue, false)?;
            if self.stream.done() {
                return Ok(());
            }
            self.read_stored_page()?;
        }
    }

    /// A stored session no source row matched: gone from the source if it starts in the window; if it
    /// began before the window and is stored open, only a sync of its own day can close it.
    fn unmatched(&mut self, key: SessionKey, slot: Slot) {
        if key.start >= micros(self.core.plan.window.utc.start) {
            self.gone.push((key, slot.id));
        } else if slot.end == OPEN {
            self.stale_open += 1;
            self.stale_open_first = Some(
                self.stale_open_first
                    .map_or(key.start, |f| f.min(key.start)),
            );
        }
    }

    /// Deletes the stored sessions no row matched, but those rejected rows name.
    fn delete_gone(&mut self, queue: &Queue) -> anyhow::Result<()> {
        let mut kept = 0usize;
        for (key, id) in std::mem::take(&mut self.gone) {
            if self.core.protected.covers(&key) {
                kept += 1;
            } else {
                self.core.delete(id);
                self.core.flush(queue, false)?;
            }
        }
        if kept > 0 {
            tracing::info!(
                system = %self.core.plan.system.name,
                kept,
                "stored sessions kept: rows that name them were rejected (see rejected_rows)"
            );
        }
        Ok(())
    }

    /// Rows starting before the window that the stored window did not hold: a session stored ending
    /// before the window that the source now says overlaps it (a corrected end) is updated, not inserted
    /// twice.
    fn merge_before_window(&mut self, queue: &Queue) -> anyhow::Result<()> {
        if self.before_window.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.before_window);
        let keys = rows
            .iter()
            .map(|r| SessionKey::new(r.started_at, r.external_agent_id));
        let found: FxHashMap<SessionKey, Slot> = queue
            .before_window(keys.collect())?
            .iter()
            .map(|s| (s.key(), Slot::of(s)))
            .collect();
        for r in rows {
            match found.get(&SessionKey::new(r.started_at, r.external_agent_id)) {
                Some(slot) => {
                    self.core.compare(*slot, &r);
                }
                None => self.core.insert(r),
            }
        }
        Ok(())
    }
}
