//! What both merges share: the rules applied to each row, the comparison with a stored session, the writes
//! batched for the queue, the rejected rows, and the keyed merge (rows matched with stored sessions looked
//! up by key) that incremental runs use for every row and full syncs for the rows of the repeated hour.

use chrono::NaiveDateTime;
use rustc_hash::{FxHashMap, FxHashSet};

use super::names::{NameBook, NO_CODE, UNKNOWN};
use super::queue::{Queue, Write};
use super::repeated::RepeatedHourRow;
use super::run::{Counts, Merged, Mode, Plan, RejectedSample};
use super::ties;
use crate::sessions::{self, Field, LocalZone, RawRow, Rejection, SourceSession, SourceTime};
use crate::source::query::Watermark;
use crate::store::models::{
    micros, NewRejectedRow, NewSession, SessionChange, SessionKey, StoredSession,
};

/// How many rejected rows a report keeps for display.
const REPORT_SAMPLE: usize = 10;
/// Updates, deletes and rejected rows are sent in statements of this many rows at most.
pub(super) const WRITE_BATCH: usize = 10_000;
/// New sessions are sent in statements of up to this many (56 bytes each: 5.6 MB): fewer, larger COPY
/// statements, because each runs the set-based reference check once (PostgreSQL).
const INSERT_BATCH: usize = 100_000;

/// No end / no code in the compact stored form.
pub(super) const OPEN: i64 = i64::MIN;
const NO_CODE_ID: i64 = 0;

/// A stored session, compactly: 32 bytes. `seen` marks one a source row has taken.
#[derive(Clone, Copy)]
pub(super) struct Slot {
    pub id: i64,
    pub code: i64,
    pub end: i64,
    pub seen: bool,
}

impl Slot {
    pub fn of(s: &StoredSession) -> Slot {
        Slot {
            id: s.id,
            code: s.external_activity_code_id.unwrap_or(NO_CODE_ID),
            end: s.ended_at.map_or(OPEN, micros),
            seen: false,
        }
    }
}

/// The stored sessions a run must not delete, named by rejected rows: by key, or all of an agent's.
#[derive(Default)]
pub(super) struct Protected {
    keys: FxHashSet<SessionKey>,
    agents: FxHashSet<i64>,
}

impl Protected {
    pub fn covers(&self, key: &SessionKey) -> bool {
        self.agents.contains(&key.agent) || self.keys.contains(key)
    }
}

/// A row that passed the rules: its number in the result, its values as read, the session it is.
#[derive(Clone, Copy)]
pub(super) struct ValidRow<'a> {
    pub no: u64,
    pub raw: RawRow<'a>,
    pub s: SourceSession<'a>,
}

pub(super) struct Core<'p> {
    pub plan: &'p Plan<'p>,
    pub zone: LocalZone,
    pub names: NameBook,
    /// UTC spans (microseconds) in which local times repeat (clocks going back): stored sessions starting
    /// there, and source rows of those hours, are merged by key at the end.
    pub held: Vec<(i64, i64)>,
    /// Keyed merge: stored sessions loaded by key, and the keys this run inserts.
    pub stored: FxHashMap<SessionKey, Slot>,
    pub inserted: FxHashSet<SessionKey>,
    /// Rows held back until the end of the result because a local time of theirs happens twice.
    pub repeated: Vec<RepeatedHourRow>,
    /// Stored sessions that rejected rows name: never deleted by this run.
    pub protected: Protected,
    inserts: Vec<NewSession>,
    updates: Vec<SessionChange>,
    deletes: Vec<i64>,
    rejected: Vec<NewRejectedRow>,
    rejected_sample: Vec<RejectedSample>,
    /// Largest change key read (incremental systems).
    max_change_key: Option<Watermark>,
    /// Local days a changes run wrote sessions in.
    changed_days: std::collections::BTreeSet<chrono::NaiveDate>,
    /// Local days of the repeated hours a changes run met, left to a full read of the day.
    reread_days: std::collections::BTreeSet<chrono::NaiveDate>,
    /// The agents and starts of the rows a changes run left to that read: rows at the same start go
    /// with them (the tie is settled there).
    pub deferred: FxHashSet<(Box<str>, SourceTime)>,
    pub counts: Counts,
    /// Rows rejected though they could be read: events that could not be paired (`every_row_rejected`).
    pub unpaired: u64,
}

impl<'p> Core<'p> {
    pub fn new(plan: &'p Plan<'p>, names: NameBook) -> Core<'p> {
        let tz = plan.system.time_zone;
        Core {
            plan,
            zone: LocalZone::new(tz),
            names,
            held: super::repeated::repeated_spans(tz, &plan.window.read),
            stored: FxHashMap::default(),
            inserted: FxHashSet::default(),
            repeated: Vec::new(),
            protected: Protected::default(),
            inserts: Vec::with_capacity(WRITE_BATCH),
            updates: Vec::new(),
            deletes: Vec::new(),
            rejected: Vec::new(),
            rejected_sample: Vec::new(),
            max_change_key: None,
            changed_days: Default::default(),
            reread_days: Default::default(),
            deferred: FxHashSet::default(),
            counts: Counts::default(),
            unpaired: 0,
        }
    }

    pub fn into_merged(self, stale_open: usize, stale_open_first: Option<i64>) -> Merged {
        Merged {
            counts: self.counts,
            names: self.names,
            rejected_sample: self.rejected_sample,
            stale_open,
            stale_open_first: stale_open_first.map(crate::store::models::from_micros),
            max_change_key: self.max_change_key,
            changed_days: self.changed_days.into_iter().collect(),
            reread_days: self.reread_days.into_iter().collect(),
            event_states: None,
            unpaired: self.unpaired,
        }
    }

    pub fn in_held(&self, t: i64) -> bool {
        self.held.iter().any(|(a, b)| *a <= t && t < *b)
    }

    /// Row `no` through the rules (its change key first, for incremental systems): the session it is, or
    /// `None` when it is rejected, or held for the end of the result because its start is a time of the
    /// hour the clocks go back (read then with the agent's other rows of that hour), or, in a changes run,
    /// left to a full read of the day of that hour.
    pub fn admit<'a>(&mut self, no: u64, raw: &RawRow<'a>) -> Option<SourceSession<'a>> {
        let checked = self
            .change_key(raw)
            .and_then(|()| sessions::validate_in(raw, &mut self.zone));
        let changes = self.plan.mode == Mode::Changes;
        match checked {
            Ok(s) if changes && s.in_repeated_hour => {
                self.defer(&s);
                None
            }
            Ok(s) if !changes && (s.start_repeats || self.in_held(micros(s.started_at))) => {
                self.repeated.push(RepeatedHourRow::new(no, raw, &s));
                None
            }
            Ok(s) => Some(s),
            Err(why) => {
                let (agent, start) = sessions::named_session(raw, &mut self.zone);
                self.protect(agent, start);
                self.reject(no, raw, why);
                None
            }
        }
    }

    /// A changes run sees a row of the repeated hour without the agent's other rows of that hour: its
    /// day is read in full right after the run (`sync_and_reconcile`), which reads them all.
    fn defer(&mut self, s: &SourceSession<'_>) {
        self.deferred.insert((s.agent_id.into(), s.start));
        let tz = self.zone.tz();
        for t in [Some(s.start), s.end].into_iter().flatten() {
            if let SourceTime::Local(l) = t {
                if let Some(r) = sessions::Repeat::of(tz, l) {
                    self.reread_days.insert(r.wall_start.date());
                }
            }
        }
    }

    /// Keeps the stored session a rejected row names (agent and start), or every stored session of the
    /// window of its agent when its start cannot be read: a row that cannot be read never deletes.
    pub fn protect(&mut self, agent: Option<&str>, start: Option<NaiveDateTime>) {
        let Some(agent) = agent.and_then(|a| self.names.agents.get(a)) else {
            return; // no agent ID, or one never stored: nothing stored to keep
        };
        let agent = self.names.agents.id(agent);
        match start {
            Some(t) => self.protected.keys.insert(SessionKey::new(t, agent)),
            None => self.protected.agents.insert(agent),
        };
    }

    /// An event of an events query that could not be read or paired: in `rejected_rows` with its values
    /// (its time as `started_at`, its kind, scope and sequence in the reason).
    pub fn reject_unpaired(&mut self, u: crate::events::Unpaired) {
        let [agent, at, kind, code, scope, sequence] = &u.values;
        fn b(v: &Option<String>) -> Option<&[u8]> {
            v.as_deref().map(str::as_bytes)
        }
        let raw = RawRow {
            agent_id: b(agent),
            activity_code: b(code),
            started_at: b(at),
            ended_at: None,
            change_key: None,
            too_long: None,
        };
        let mut what = kind.clone().unwrap_or_else(|| "an".into()) + " event";
        for (name, v) in [("scope", scope), ("sequence", sequence)] {
            if let Some(v) = v {
                what += &format!(", {name} {v}");
            }
        }
        let why = Rejection::new(Field::Event, format!("{what}: {}", u.reason));
        self.reject(u.row, &raw, why);
    }

    /// An event read but not paired (a logout with no login, a second login): rejected.
    pub fn reject_pairing(&mut self, u: crate::events::Unpaired) {
        self.unpaired += 1;
        self.reject_unpaired(u);
    }

    /// The change key of a row (incremental systems), kept for the watermark.
    fn change_key(&mut self, raw: &RawRow<'_>) -> Result<(), Rejection> {
        let Some(inc) = &self.plan.system.incremental else {
            return Ok(());
        };
        let text = match raw.change_key.map(std::str::from_utf8) {
            None => return Err(Rejection::new(Field::ChangeKey, "no change key (NULL)")),
            Some(Err(e)) => {
                let why = format!("change_key is not valid UTF-8 ({e})");
                return Err(Rejection::new(Field::ChangeKey, why));
            }
            Some(Ok(t)) => t,
        };
        let key = Watermark::parse(inc.watermark, text)
            .map_err(|e| Rejection::new(Field::ChangeKey, e))?;
        self.note_key(key);
        Ok(())
    }

    /// A change key read (an event's sequence, for an incremental events system).
    pub fn note_key(&mut self, key: Watermark) {
        self.max_change_key = Some(self.max_change_key.map_or(key, |m| m.max(key)));
    }

    pub fn reject(&mut self, row_no: u64, raw: &RawRow<'_>, why: Rejection) {
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

    /// The session a valid row becomes, with its agent's and code's indices already looked up (`NO_CODE`
    /// for none); notes when they were seen.
    pub fn session_of(&mut self, agent: usize, code: u32, s: &SourceSession<'_>) -> NewSession {
        let external_agent_id = self.names.agents.touch(agent, s.started_at);
        let external_activity_code_id = (code != NO_CODE).then(|| {
            debug_assert!(code != UNKNOWN, "registered before");
            self.names.codes.touch(code as usize, s.started_at)
        });
        NewSession {
            external_system_id: self.plan.system_id,
            external_agent_id,
            external_activity_code_id,
            started_at: s.started_at,
            ended_at: s.ended_at,
        }
    }

    /// A row matched with its stored session: an update if the code or the end differ.
    /// Returns whether it is an update.
    pub fn compare(&mut self, slot: Slot, s: &NewSession) -> bool {
        let end = s.ended_at.map_or(OPEN, micros);
        if slot.code == s.external_activity_code_id.unwrap_or(NO_CODE_ID) && slot.end == end {
            self.counts.unchanged += 1;
            false
        } else {
            self.updates.push(SessionChange {
                id: slot.id,
                external_activity_code_id: s.external_activity_code_id,
                ended_at: s.ended_at,
            });
            true
        }
    }

    /// A changes run wrote a session starting at `t`: its local day is read again by the next full sync
    /// of today (a changes run cannot delete what a corrected start left behind).
    fn note_changed(&mut self, t: NaiveDateTime) {
        if self.plan.mode == Mode::Changes {
            let day = t.and_utc().with_timezone(&self.zone.tz()).date_naive();
            self.changed_days.insert(day);
        }
    }

    pub fn insert(&mut self, s: NewSession) {
        self.inserts.push(s);
    }

    pub fn delete(&mut self, id: i64) {
        self.deletes.push(id);
    }

    /// Queues the writes gathered so far: each kind once it fills a statement, or all of them.
    pub fn flush(&mut self, queue: &Queue, all: bool) -> anyhow::Result<()> {
        if !self.inserts.is_empty() && (all || self.inserts.len() >= INSERT_BATCH) {
            let rows = std::mem::replace(&mut self.inserts, Vec::with_capacity(INSERT_BATCH));
            queue.write(Write::Insert(rows))?;
        }
        if !self.updates.is_empty() && (all || self.updates.len() >= WRITE_BATCH) {
            queue.write(Write::Update(std::mem::take(&mut self.updates)))?;
        }
        if !self.deletes.is_empty() && (all || self.deletes.len() >= WRITE_BATCH) {
            queue.write(Write::Delete(std::mem::take(&mut self.deletes)))?;
        }
        if !self.rejected.is_empty() && (all || self.rejected.len() >= WRITE_BATCH) {
            queue.write(Write::Reject(std::mem::take(&mut self.rejected)))?;
        }
        Ok(())
    }

    /// Merges rows by key with the stored sessions in `stored` and those looked up now: every row's in an
    /// incremental run (its rows may belong to any day), only those of rows that start before the window
    /// in a full sync (which reads the window itself); gathers the writes.
    pub fn merge_keyed(&mut self, queue: &Queue, valid: Vec<ValidRow<'_>>) -> anyhow::Result<()> {
        let changes = self.plan.mode == Mode::Changes;
        let (agents, codes) = self
            .names
            .register(queue, valid.iter().map(|v| &v.s), changes)?;
        self.counts.new_agent_ids += agents;
        self.counts.new_activity_codes += codes;
        self.load_missing(queue, &valid)?;
        let key_of = |core: &Self, v: &ValidRow<'_>| {
            let agent = core
                .names
                .agents
                .get(v.s.agent_id)
                .expect("registered above");
            (
                agent,
                SessionKey::new(v.s.started_at, core.names.agents.id(agent)),
            )
        };
        // Rows of one agent and start in this batch: the one `ties` keeps, whatever their order.
        let mut order: Vec<(SessionKey, usize)> = valid
            .iter()
            .enumerate()
            .map(|(i, v)| (key_of(self, v).1, i))
            .collect();
        order.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| ties::kept_first(&valid[a.1], &valid[b.1]))
        });
        let mut kept_by: Vec<Option<usize>> = vec![None; valid.len()];
        for w in order.windows(2) {
            if w[0].0 == w[1].0 {
                kept_by[w[1].1] = Some(kept_by[w[0].1].unwrap_or(w[0].1));
            }
        }
        for (i, v) in valid.iter().enumerate() {
            if let Some(k) = kept_by[i] {
                self.reject(v.no, &v.raw, ties::tie(&valid[k], v));
                continue;
            }
            let (agent, key) = key_of(self, v);
            let fresh = match self.stored.get(&key) {
                Some(slot) => !slot.seen,
                None => !self.inserted.contains(&key),
            };
            if !fresh {
                self.reject(v.no, &v.raw, duplicate(&v.s));
                continue;
            }
            let code = self.names.code_index(v.s.activity_code);
            let session = self.session_of(agent, code, &v.s);
            let started_at = session.started_at;
            let written = match self.stored.get_mut(&key) {
                Some(slot) => {
                    slot.seen = true;
                    let slot = *slot;
                    self.compare(slot, &session)
                }
                None => {
                    self.inserted.insert(key);
                    self.inserts.push(session);
                    true
                }
            };
            if written {
                self.note_changed(started_at);
            }
        }
        Ok(())
    }

    /// Looks up the stored sessions of rows not loaded yet (see `merge_keyed`).
    fn load_missing(&mut self, queue: &Queue, valid: &[ValidRow<'_>]) -> anyhow::Result<()> {
        let (window_start, changes) = (self.plan.window.utc.start, self.plan.mode == Mode::Changes);
        let keys: Vec<SessionKey> = valid
            .iter()
            .filter(|v| changes || v.s.started_at < window_start)
            .filter_map(|v| {
                let agent = self.names.agents.id(self.names.agents.get(v.s.agent_id)?);
                let key = SessionKey::new(v.s.started_at, agent);
                (!self.stored.contains_key(&key) && !self.inserted.contains(&key)).then_some(key)
            })
            .collect();
        self.load_into_stored(queue, keys)
    }

    /// Adds the stored sessions with these keys to `stored` (after the writes queued so far).
    pub fn load_into_stored(&mut self, queue: &Queue, keys: Vec<SessionKey>) -> anyhow::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        for s in queue.sessions_at(keys)? {
            self.stored.insert(s.key(), Slot::of(&s));
        }
        Ok(())
    }
}

pub(super) fn duplicate(s: &SourceSession<'_>) -> Rejection {
    Rejection::new(
        Field::StartedAt,
        format!(
            "duplicate: agent {} already has a session starting at {} UTC in this result",
            s.agent_id, s.started_at
        ),
    )
}
