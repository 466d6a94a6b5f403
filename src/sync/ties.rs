//! Rows of one agent that start at the same instant: the sessions shape is a timeline of states
//! (sql/sources/README.md), so only one of them can be a session. Which one is decided by the rows'
//! values, never by their order in the result: the longer is kept (a later end; an open end is the
//! latest; an end that happens twice, in the hour the clocks go back, counts as its first occurrence), then
//! one with a code, then the smaller code, then the smaller text of the values as read.
//! The others go to `rejected_rows`, naming the row kept.

use std::cmp::Ordering;

use super::merge::ValidRow;
use crate::sessions::{Field, RawRow, Rejection, SourceSession};
use crate::store::models::micros;

/// Orders two rows of one agent and start: the one kept first.
pub(super) fn kept_first(a: &ValidRow<'_>, b: &ValidRow<'_>) -> Ordering {
    let end = |v: &ValidRow<'_>| v.s.ended_at.map_or(i64::MAX, micros);
    fn raw<'a>(v: &ValidRow<'a>) -> [Option<&'a [u8]>; 4] {
        let r = &v.raw;
        [r.activity_code, r.started_at, r.ended_at, r.agent_id]
    }
    end(b)
        .cmp(&end(a))
        .then_with(|| {
            a.s.activity_code
                .is_none()
                .cmp(&b.s.activity_code.is_none())
        })
        .then_with(|| a.s.activity_code.cmp(&b.s.activity_code))
        .then_with(|| raw(a).cmp(&raw(b)))
}

/// Why `other` is not imported: `kept` starts at the same instant for the same agent.
pub(super) fn tie(kept: &ValidRow<'_>, other: &ValidRow<'_>) -> Rejection {
    Rejection::new(
        Field::StartedAt,
        format!(
            "same agent and start as row {} ({} UTC), which is kept: the sessions shape is a timeline of states, and of two rows at one start the longer is kept (sql/sources/README.md)",
            kept.no, other.s.started_at
        ),
    )
}

/// Sorts `rows` (all starting at the same instant) by `agent`, the row kept first, and returns for each
/// row the index of the row kept for its agent (itself, for a kept row).
pub(super) fn settle<T, K: Ord>(
    rows: &mut [T],
    agent: impl Fn(&T) -> K,
    view: impl Fn(&T) -> &ValidRow<'_>,
) -> Vec<usize> {
    rows.sort_by(|a, b| {
        agent(a)
            .cmp(&agent(b))
            .then_with(|| kept_first(view(a), view(b)))
    });
    let mut kept = Vec::with_capacity(rows.len());
    for i in 0..rows.len() {
        let same = i > 0 && agent(&rows[i]) == agent(&rows[i - 1]);
        kept.push(if same { kept[i - 1] } else { i });
    }
    kept
}

/// A valid row held past the end of its batch (the rows at the batch's last start may go on in the next).
pub(super) struct Carried {
    no: u64,
    raw: [Option<Box<[u8]>>; 5],
    agent_id: Box<str>,
    activity_code: Option<Box<str>>,
    s: SourceSession<'static>,
    /// The row's agent ID and code, as indices of the run's names.
    pub names: (u32, u32),
}

impl Carried {
    pub fn new(v: &ValidRow<'_>, names: (u32, u32)) -> Carried {
        let own = |b: Option<&[u8]>| b.map(Box::from);
        let r = &v.raw;
        Carried {
            no: v.no,
            raw: [
                r.agent_id,
                r.activity_code,
                r.started_at,
                r.ended_at,
                r.change_key,
            ]
            .map(own),
            agent_id: v.s.agent_id.into(),
            activity_code: v.s.activity_code.map(Box::from),
            s: SourceSession {
                agent_id: "",
                activity_code: None,
                ..v.s
            },
            names,
        }
    }

    /// The row again, borrowing from this.
    pub fn view(&self) -> ValidRow<'_> {
        let b = |i: usize| self.raw[i].as_deref();
        ValidRow {
            no: self.no,
            raw: RawRow {
                agent_id: b(0),
                activity_code: b(1),
                started_at: b(2),
                ended_at: b(3),
                change_key: b(4),
                too_long: None,
            },
            s: SourceSession {
                agent_id: &self.agent_id,
                activity_code: self.activity_code.as_deref(),
                ..self.s
            },
        }
    }
}
