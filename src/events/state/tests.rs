//! A pairing resumed from its stored states (a changes run of an incremental events system) goes on as the
//! pairing of all the events would.

use rustc_hash::FxHashMap;

use super::AgentState;
use crate::events::tests::{ev, pair, Given};
use crate::events::{Kind, Pairing, Session, Transition};
use Kind::{Login, Logout, State};

/// Events cut anywhere, the pairing of the first part handed to the second through the stored states (as
/// a changes run resumes), make the sessions of one pairing of them all: agents in several queues, pauses,
/// logouts, implicit logins, one still logged in.
#[test]
fn a_pairing_resumed_from_its_states_goes_on_as_if_never_stopped() {
    let events: [Given<'_>; 14] = [
        ("a", "08:00", Login, None, Some("sales")),
        ("a", "08:01", Login, None, Some("support")),
        ("b", "08:30", State, Some("BREAK"), Some("sales")),
        ("a", "09:00", Logout, None, Some("sales")),
        ("a", "09:30", State, Some("LUNCH"), Some("support")),
        ("b", "09:40", State, None, Some("sales")),
        ("c", "10:00", Logout, None, None),
        ("a", "10:00", State, None, Some("support")),
        ("c", "10:05", State, None, None),
        ("a", "11:00", Logout, None, Some("support")),
        ("a", "11:05", State, None, Some("support")),
        ("b", "11:10", Logout, None, Some("sales")),
        ("a", "12:00", Login, None, Some("sales")),
        ("a", "12:00", Login, None, Some("sales")),
    ];
    let (whole, whole_unpaired) = pair(&events);
    for cut in 0..=events.len() {
        let tz = chrono_tz::Europe::Paris;
        let mut first = Pairing::new(tz);
        let mut sessions: Vec<Session> = Vec::new();
        let mut unpaired = Vec::new();
        let mut open: FxHashMap<String, Session> = FxHashMap::default();
        let mut play = |ts: Vec<Transition>, p: &Pairing, open: &mut FxHashMap<String, Session>| {
            for t in ts {
                match t {
                    Transition::Open {
                        agent,
                        start,
                        code,
                        row,
                    } => {
                        let agent = p.agent(agent).to_owned();
                        let s = Session {
                            agent: agent.clone(),
                            code,
                            start,
                            end: None,
                            row,
                        };
                        open.insert(agent, s);
                    }
                    Transition::Close { agent, end } => {
                        let mut s = open.remove(p.agent(agent)).unwrap();
                        if end != Some(s.start) {
                            s.end = end;
                            sessions.push(s);
                        }
                    }
                    Transition::Unpaired(u) => unpaired.push(u.reason),
                }
            }
        };
        let push = |p: &mut Pairing, i: usize| {
            let (agent, at, kind, code, scope) = events[i];
            let at = format!("2026-01-15 {at}:00");
            p.push(ev(
                i as u64 + 1,
                agent,
                &at,
                kind,
                code,
                scope,
                Some(i as i64 + 1),
            ))
            .unwrap();
        };
        (0..cut).for_each(|i| push(&mut first, i));
        let states = first.states(false);
        let ts: Vec<Transition> = first.drain().collect();
        play(ts, &first, &mut open);
        // (What is stored: a state goes through its row.)
        let states: Vec<AgentState> = states
            .into_iter()
            .map(|s| AgentState::from_row(s.to_row(1)).unwrap())
            .collect();
        let mut second = Pairing::resumed(tz, states);
        (cut..events.len()).for_each(|i| push(&mut second, i));
        let end = second.end();
        play(end, &second, &mut open);
        sessions.sort_by(|a, b| (a.start, &a.agent).cmp(&(b.start, &b.agent)));
        let key = |s: &Session| (s.agent.clone(), s.code.clone(), s.start, s.end);
        assert_eq!(
            sessions.iter().map(key).collect::<Vec<_>>(),
            whole.iter().map(key).collect::<Vec<_>>(),
            "cut at {cut}"
        );
        let whole_reasons: Vec<String> = whole_unpaired.iter().map(|u| u.reason.clone()).collect();
        assert_eq!(unpaired, whole_reasons, "cut at {cut}");
    }
}
