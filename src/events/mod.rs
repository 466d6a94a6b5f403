//! The events shape: an ACD's stream of agent events (login, logout, a change of state with its reason
//! code) paired into sessions. Pure, no I/O. The rules, for users, are in sql/sources/README.md ("The
//! events shape"); each is a unit test below.
//!
//! Vendor knowledge stays in the SQL file, which maps the source's own event names to three kinds:
//! - `login` (with the scope it joins, a queue for sources that log per queue, and optionally a code when
//!   the agent starts in a state, such as Asterisk's ADDMEMBER `PAUSED`);
//! - `state` (a code, or NULL for ready / no code);
//! - `logout` (the scope it leaves; with no scope, every scope).

use std::borrow::Cow;

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use rustc_hash::FxHashMap;

use crate::sessions::time::{self, Fold, SourceTime};

/// What an event does (the `event` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Login,
    State,
    Logout,
}

impl Kind {
    /// The kind named by the `event` column (any case, blanks around ignored).
    pub fn parse(text: &str) -> Option<Kind> {
        let t = text.trim();
        [Kind::Login, Kind::State, Kind::Logout]
            .into_iter()
            .find(|k| t.eq_ignore_ascii_case(k.name()))
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::State => "state",
            Kind::Logout => "logout",
        }
    }
}

/// A session paired from events: UTC times; `row` is the row of the event that opened it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub agent: String,
    pub code: Option<String>,
    pub start: NaiveDateTime,
    pub end: Option<NaiveDateTime>,
    pub row: u64,
}

/// An event that could not be read or paired: its row, its values as text (`source::EVENT_COLUMNS`), its
/// instant when it could be read (a sync reports it when that instant is in its window), and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unpaired {
    pub row: u64,
    pub values: [Option<String>; 6],
    pub at: Option<NaiveDateTime>,
    pub reason: String,
}

/// Where an agent stands: the scopes (queues) it is in, its open session, and whether its logout was read.
#[derive(Default)]
struct Agent {
    /// Scopes joined; `""` for a login with no scope.
    scopes: Vec<String>,
    open: Option<Open>,
    logged_out: bool,
    /// Logged in by a state, not a login read here: the scopes of its states are the scopes it is in.
    implicit: bool,
    /// The instant of its latest event.
    last: Option<NaiveDateTime>,
    /// An event changed it (since `Pairing::resumed`).
    touched: bool,
}

/// How far back a local time of the repeated hour must go, in the order of the events, to be read in the
/// second pass: more than threads of the ACD writing nearly one instant in the wrong order.
const FOLD_BACK: chrono::Duration = chrono::Duration::seconds(5);

struct Open {
    start: NaiveDateTime,
    code: Option<String>,
    row: u64,
}

/// What pairing an event does to an agent's sessions, in order: a session opened (its key is known now), the
/// agent's open session closed (at `end`; `None` at the end of what is read: still open), an event that
/// could not be paired. A close at the instant of its open is a session that lasted no time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    Open {
        agent: AgentNo,
        start: NaiveDateTime,
        code: Option<String>,
        row: u64,
    },
    Close {
        agent: AgentNo,
        end: Option<NaiveDateTime>,
    },
    /// (Boxed: rare, and large beside the others.)
    Unpaired(Box<Unpaired>),
}

/// An agent as the pairing numbers it, in the order first seen (`Pairing::agent` names it): transitions
/// carry the number, so that what follows them keys its maps by a number, not by the ID's text.
pub type AgentNo = u32;

/// Pairs events given in the order they happened (`push`) into transitions (`drain`, then `end`), or into
/// sessions (`finish`). Memory: the agents' open states, and the events of one time with no sequence.
pub struct Pairing {
    tz: Tz,
    /// The agents by number, their IDs, and the numbers by ID.
    agents: Vec<Agent>,
    names: Vec<Box<str>>,
    numbers: FxHashMap<Box<str>, AgentNo>,
    /// The instant of the latest event: a local time of the hour the clocks go back that would be before
    /// it is read in the second pass.
    last: Option<NaiveDateTime>,
    /// Events of one time with no sequence, taken in the order login, state, logout at the next time.
    same_time: Vec<Event<'static>>,
    /// The order key of the previous event (its sequence, else its time), to refuse a result out of order.
    previous: Option<(Option<i64>, SourceTime)>,
    out: Vec<Transition>,
}

/// Events out of order: the query must return them in the order they happened.
#[derive(Debug, PartialEq, Eq)]
pub struct OutOfOrder {
    pub row: u64,
}

impl Pairing {
    pub fn new(tz: Tz) -> Pairing {
        Pairing {
            tz,
            agents: Vec::new(),
            names: Vec::new(),
            numbers: FxHashMap::default(),
            last: None,
            same_time: Vec::new(),
            previous: None,
            out: Vec::new(),
        }
    }

    /// The next event. Events with a sequence come in sequence order; events without, in time order.
    pub fn push(&mut self, e: Event<'_>) -> Result<(), OutOfOrder> {
        let key = (e.sequence, e.at);
        if let Some((seq, at)) = self.previous {
            let back = match (seq, e.sequence, at, e.at) {
                (Some(a), Some(b), _, _) => b < a,
                (_, _, SourceTime::Local(a), SourceTime::Local(b))
                | (_, _, SourceTime::Utc(a), SourceTime::Utc(b)) => b < a,
                _ => false,
            };
            if back {
                return Err(OutOfOrder { row: e.row });
            }
        }
        self.previous = Some(key);
        if e.sequence.is_some() {
            self.flush_same_time();
            self.apply(e);
        } else {
            if self.same_time.first().is_some_and(|f| f.at != e.at) {
                self.flush_same_time();
            }
            self.same_time.push(e.into_owned());
        }
        Ok(())
    }

    /// The transitions of the events pushed so far (the events of the last time with no sequence wait).
    pub fn drain(&mut self) -> std::vec::Drain<'_, Transition> {
        self.out.drain(..)
    }

    /// The same, swapped into `buffer` (emptied first), whose allocation the pairing keeps for the next
    /// ones: no vector is allocated per batch.
    pub fn take_transitions(&mut self, buffer: &mut Vec<Transition>) {
        buffer.clear();
        std::mem::swap(&mut self.out, buffer);
    }

    /// The ID of agent `no`.
    pub fn agent(&self, no: AgentNo) -> &str {
        &self.names[no as usize]
    }

    /// How many agents are numbered (numbers are below it).
    pub fn agents_numbered(&self) -> usize {
        self.names.len()
    }

    /// The number of agent `id`, if it has one.
    pub fn number_of(&self, id: &str) -> Option<AgentNo> {
        self.numbers.get(id).copied()
    }

    /// The number of agent `id`, given now if it has none.
    fn number(&mut self, id: &str) -> AgentNo {
        if let Some(&no) = self.numbers.get(id) {
            return no;
        }
        let no = AgentNo::try_from(self.names.len()).expect("fewer than 4 billion agents");
        self.names.push(id.into());
        self.numbers.insert(id.into(), no);
        self.agents.push(Agent::default());
        no
    }

    /// At the end of what is read: the last transitions, and every agent still logged in closed with no
    /// end (in the order of their IDs).
    pub fn end(&mut self) -> Vec<Transition> {
        self.flush_same_time();
        let mut open: Vec<AgentNo> = (0..self.agents.len())
            .filter(|&i| self.agents[i].open.is_some())
            .map(|i| i as AgentNo)
            .collect();
        open.sort_unstable_by(|a, b| self.agent(*a).cmp(self.agent(*b)));
        for agent in open {
            self.agents[agent as usize].open = None;
            self.out.push(Transition::Close { agent, end: None });
        }
        std::mem::take(&mut self.out)
    }

    /// The sessions paired (those still open at the end with no end), in start order, and the events
    /// that could not be paired: the transitions played through.
    pub fn finish(mut self) -> (Vec<Session>, Vec<Unpaired>) {
        let (mut sessions, mut unpaired) = (Vec::new(), Vec::new());
        let mut open: FxHashMap<AgentNo, Open> = FxHashMap::default();
        for t in self.end() {
            match t {
                Transition::Open {
                    agent,
                    start,
                    code,
                    row,
                } => {
                    open.insert(agent, Open { start, code, row });
                }
                Transition::Close { agent, end } => {
                    let o = open.remove(&agent).expect("a close follows its open");
                    if end.is_none_or(|e| e > o.start) {
                        let (start, code, row) = (o.start, o.code, o.row);
                        sessions.push(Session {
                            agent: self.agent(agent).to_owned(),
                            code,
                            start,
                            end,
                            row,
                        });
                    }
                }
                Transition::Unpaired(u) => unpaired.push(*u),
            }
        }
        sessions.sort_unstable_by(|a, b| (a.start, &a.agent).cmp(&(b.start, &b.agent)));
        (sessions, unpaired)
    }

    fn flush_same_time(&mut self) {
        let mut group = std::mem::take(&mut self.same_time);
        group.sort_by(|a, b| {
            (a.kind, &a.agent, &a.code, &a.scope).cmp(&(b.kind, &b.agent, &b.code, &b.scope))
        });
        for e in group {
            self.apply(e);
        }
    }

    /// The instant of an event's time: a local time that happens twice is its first occurrence unless
    /// that is before the latest event's instant; a time the clocks skipped, with the offset before.
    ///
    /// Instants are kept to the microsecond (as the stores keep them), and never go back by less than
    /// `FOLD_BACK` in the order of the events: an event a little before the previous one (threads of the ACD,
    /// another agent's event in the same millisecond) is taken at the previous one's instant, so sessions
    /// open in start order. An event further back keeps its time (its session is then rejected).
    fn instant(&mut self, at: SourceTime) -> NaiveDateTime {
        use chrono::SubsecRound;
        let t = match at {
            SourceTime::Utc(u) => u,
            SourceTime::Local(l) => match time::both_readings(self.tz, l) {
                Some((first, second)) if self.last.is_some_and(|p| first < p - FOLD_BACK) => second,
                Some((first, _)) => first,
                None => time::local_to_utc(self.tz, l, Fold::First),
            },
        }
        .trunc_subsecs(6);
        let t = match self.last {
            Some(p) if t < p && t >= p - FOLD_BACK => p,
            _ => t,
        };
        self.last = Some(self.last.map_or(t, |p| p.max(t)));
        t
    }

    fn apply(&mut self, e: Event<'_>) {
        let t = self.instant(e.at);
        let no = self.number(&e.agent);
        let agent = &mut self.agents[no as usize];
        agent.last = Some(agent.last.map_or(t, |l| l.max(t)));
        agent.touched = true;
        let scope = e.scope.as_deref().unwrap_or_default();
        // What the event does: open a session (closing the open one), close it, nothing, or a problem.
        enum Act {
            Open,
            Close,
            Nothing,
            Problem(String),
        }
        let act = match e.kind {
            Kind::Login if agent.scopes.iter().any(|s| s == scope) => Act::Problem(format!(
                "login while already logged in{}: ignored",
                in_scope(e.scope.as_deref())
            )),
            Kind::Login => {
                agent.logged_out = false;
                agent.implicit = false;
                agent.scopes.push(scope.to_owned());
                match agent.open {
                    None => Act::Open,
                    Some(_) => Act::Nothing,
                }
            }
            // A return to ready after the agent's logout, read here, changes nothing (Wazo writes
            // UNPAUSEALL and an UNPAUSE per queue after each logoff).
            Kind::State if agent.scopes.is_empty() && agent.logged_out && e.code.is_none() => {
                Act::Nothing
            }
            Kind::State => {
                if agent.scopes.is_empty() {
                    // A state of an agent not seen logging in (nor out): logged in (its login is older than
                    // the events read, or the ACD restarted with its members, or they are static members).
                    agent.implicit = true;
                    agent.scopes.push(scope.to_owned());
                } else if agent.implicit && !agent.scopes.iter().any(|s| s == scope) {
                    agent.scopes.push(scope.to_owned());
                }
                match &agent.open {
                    Some(o) if o.code.as_deref() == e.code.as_deref() => Act::Nothing,
                    _ => Act::Open,
                }
            }
            // A logout after the agent's logout (Asterisk: AGENTLOGOFF, then REMOVEMEMBER per queue).
            Kind::Logout if agent.scopes.is_empty() && agent.logged_out => Act::Nothing,
            Kind::Logout if agent.scopes.is_empty() && agent.open.is_none() => Act::Problem(format!(
                "logout with no login{} in the events read (a login more than max_session_hours before the window is not read)",
                in_scope(e.scope.as_deref())
            )),
            Kind::Logout => {
                match e.scope.as_deref() {
                    None => agent.scopes.clear(),
                    Some(s) => agent.scopes.retain(|x| x != s),
                }
                if agent.scopes.is_empty() {
                    agent.logged_out = true;
                }
                match agent.scopes.is_empty() && agent.open.is_some() {
                    true => Act::Close,
                    false => Act::Nothing,
                }
            }
        };
        match act {
            Act::Nothing => {}
            Act::Open | Act::Close => {
                if agent.open.take().is_some() {
                    let end = Some(t);
                    self.out.push(Transition::Close { agent: no, end });
                }
                if matches!(act, Act::Open) {
                    let (start, row) = (t, e.row);
                    let code = e.code.as_deref().map(str::to_owned);
                    agent.open = Some(Open { start, code, row });
                    let code = e.code.map(Cow::into_owned);
                    let open = Transition::Open {
                        agent: no,
                        start,
                        code,
                        row,
                    };
                    self.out.push(open);
                }
            }
            Act::Problem(reason) => {
                let (row, values, at) = (e.row, e.texts(), Some(t));
                self.out.push(Transition::Unpaired(Box::new(Unpaired {
                    row,
                    values,
                    at,
                    reason,
                })));
            }
        }
    }
}

fn in_scope(scope: Option<&str>) -> String {
    scope.map_or_else(String::new, |s| format!(" (scope {s:?})"))
}

mod event;
mod state;
pub use event::Event;
pub use state::AgentState;

#[cfg(test)]
mod tests;
