//! Where each agent stands after the events read (the scopes it is in, its open session), kept in the store
//! between runs of an incremental events system (table `event_agent_states`): a changes run reads only the
//! events after the watermark and goes on from the states stored with it.

use chrono::NaiveDateTime;

use super::{Agent, Open, Pairing};
use crate::store::models::EventStateRow;

/// One agent's state, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentState {
    pub agent: String,
    /// Scopes joined, in the order joined; `""` for a login with no scope.
    pub scopes: Vec<String>,
    /// The open session: its start (UTC) and code.
    pub open: Option<(NaiveDateTime, Option<String>)>,
    pub logged_out: bool,
    pub implicit: bool,
    /// The instant of the agent's latest event.
    pub last: NaiveDateTime,
}

impl AgentState {
    pub fn to_row(&self, system_id: i64) -> EventStateRow {
        let (open_started_at, open_activity_code) = match &self.open {
            Some((start, code)) => (Some(*start), code.clone()),
            None => (None, None),
        };
        EventStateRow {
            external_system_id: system_id,
            agent_id: self.agent.clone(),
            scopes: serde_json::to_string(&self.scopes).expect("a list of strings is JSON"),
            open_started_at,
            open_activity_code,
            logged_out: self.logged_out,
            implicit_login: self.implicit,
            last_event_at: self.last,
        }
    }

    /// A stored state; one that cannot be read names its agent.
    pub fn from_row(row: EventStateRow) -> Result<AgentState, String> {
        let scopes: Vec<String> = serde_json::from_str(&row.scopes).map_err(|e| {
            format!(
                "event_agent_states of agent {:?}: scopes {:?} is not a JSON array of strings ({e})",
                row.agent_id, row.scopes
            )
        })?;
        if row.open_activity_code.is_some() && row.open_started_at.is_none() {
            return Err(format!(
                "event_agent_states of agent {:?}: an open_activity_code with no open_started_at",
                row.agent_id
            ));
        }
        Ok(AgentState {
            agent: row.agent_id,
            scopes,
            open: row.open_started_at.map(|s| (s, row.open_activity_code)),
            logged_out: row.logged_out,
            implicit: row.implicit_login,
            last: row.last_event_at,
        })
    }
}

impl Pairing {
    /// A pairing that goes on from stored states: the agents stand where they stood, and a time of the
    /// hour the clocks go back is read against the latest of their events.
    pub fn resumed(tz: chrono_tz::Tz, states: Vec<AgentState>) -> Pairing {
        let mut p = Pairing::new(tz);
        for s in states {
            p.last = Some(p.last.map_or(s.last, |l| l.max(s.last)));
            let agent = Agent {
                scopes: s.scopes,
                open: s.open.map(|(start, code)| Open {
                    start,
                    code,
                    row: 0,
                }),
                logged_out: s.logged_out,
                implicit: s.implicit,
                last: Some(s.last),
                touched: false,
            };
            let no = p.number(&s.agent);
            p.agents[no as usize] = agent;
        }
        p
    }

    /// The agents' states after the events pushed so far (all of them, or those an event changed since
    /// `resumed`), in the order of their IDs. The events of the last time with no sequence are applied
    /// first: their transitions are in the next `drain` (or `end`).
    pub fn states(&mut self, changed_only: bool) -> Vec<AgentState> {
        self.flush_same_time();
        let mut out: Vec<AgentState> = self
            .agents
            .iter()
            .zip(&self.names)
            .filter(|(a, _)| a.touched || !changed_only)
            .filter_map(|(a, agent)| {
                Some(AgentState {
                    agent: agent.to_string(),
                    scopes: a.scopes.clone(),
                    open: a.open.as_ref().map(|o| (o.start, o.code.clone())),
                    logged_out: a.logged_out,
                    implicit: a.implicit,
                    last: a.last?,
                })
            })
            .collect();
        out.sort_unstable_by(|a, b| a.agent.cmp(&b.agent));
        out
    }
}

#[cfg(test)]
mod tests;
