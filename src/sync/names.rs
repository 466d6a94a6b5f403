//! The agent IDs and codes of a system as a merge sees them: looked up once per row, registered when new
//! (codes on `Present`), their first/last-seen times widened by what the run read. Both kinds go through
//! the same code; `NameKind` says which table.

use chrono::NaiveDateTime;
use rustc_hash::{FxHashMap, FxHashSet};

use super::queue::Queue;
use crate::sessions::SourceSession;
use crate::store::models::{NameKind, NameRow, NewName, SeenChange};

/// A name not registered yet, and a row without a code, in a row's looked-up indices.
pub(super) const UNKNOWN: u32 = u32::MAX;
pub(super) const NO_CODE: u32 = u32::MAX - 1;

/// Agent IDs or codes of a system, by their text, with the times this run saw them.
#[derive(Default)]
pub(super) struct Names {
    index: FxHashMap<String, usize>,
    entries: Vec<NameEntry>,
}

struct NameEntry {
    id: i64,
    stored_first: Option<NaiveDateTime>,
    stored_last: Option<NaiveDateTime>,
    run_first: Option<NaiveDateTime>,
    run_last: Option<NaiveDateTime>,
    new: bool,
}

impl Names {
    fn add(&mut self, row: NameRow, new: bool) {
        self.index.insert(row.name, self.entries.len());
        self.entries.push(NameEntry {
            id: row.id,
            stored_first: row.first_seen_at,
            stored_last: row.last_seen_at,
            run_first: None,
            run_last: None,
            new,
        });
    }

    pub fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The index of `name`, or `UNKNOWN`.
    pub fn index_of(&self, name: &str) -> u32 {
        self.index.get(name).map_or(UNKNOWN, |i| *i as u32)
    }

    /// The stored id of the name at `i`.
    pub fn id(&self, i: usize) -> i64 {
        self.entries[i].id
    }

    /// Notes that the name at `i` was seen at `t`; returns its stored id.
    pub fn touch(&mut self, i: usize, t: NaiveDateTime) -> i64 {
        let e = &mut self.entries[i];
        e.run_first = Some(e.run_first.map_or(t, |f| f.min(t)));
        e.run_last = Some(e.run_last.map_or(t, |l| l.max(t)));
        e.id
    }

    /// First/last-seen times this run widened.
    pub fn seen_changes(&self) -> Vec<SeenChange> {
        self.entries
            .iter()
            .filter_map(|e| {
                let (rf, rl) = (e.run_first?, e.run_last?);
                let first = e.stored_first.map_or(rf, |f| f.min(rf));
                let last = e.stored_last.map_or(rl, |l| l.max(rl));
                (Some(first) != e.stored_first || Some(last) != e.stored_last).then_some(
                    SeenChange {
                        id: e.id,
                        first_seen_at: first,
                        last_seen_at: last,
                    },
                )
            })
            .collect()
    }

    /// The names this run registered, in the order it met them.
    pub fn new_names(&self) -> Vec<String> {
        let mut by_index: Vec<(&String, usize)> = self
            .index
            .iter()
            .map(|(k, v)| (k, *v))
            .filter(|(_, i)| self.entries[*i].new)
            .collect();
        by_index.sort_by_key(|(_, i)| *i);
        by_index.into_iter().map(|(k, _)| k.clone()).collect()
    }
}

/// The name of `kind` a row holds, if any.
fn name_of<'a>(kind: NameKind, s: &SourceSession<'a>) -> Option<&'a str> {
    match kind {
        NameKind::AgentId => Some(s.agent_id),
        NameKind::ActivityCode => s.activity_code,
    }
}

/// Both kinds of names of a system.
#[derive(Default)]
pub(super) struct NameBook {
    pub agents: Names,
    pub codes: Names,
}

impl NameBook {
    pub fn of(&self, kind: NameKind) -> &Names {
        match kind {
            NameKind::AgentId => &self.agents,
            NameKind::ActivityCode => &self.codes,
        }
    }

    fn of_mut(&mut self, kind: NameKind) -> &mut Names {
        match kind {
            NameKind::AgentId => &mut self.agents,
            NameKind::ActivityCode => &mut self.codes,
        }
    }

    /// Every stored name of the system (a full sync meets most of them).
    pub fn loaded(agents: Vec<NameRow>, codes: Vec<NameRow>) -> NameBook {
        let mut book = NameBook::default();
        for row in agents {
            book.agents.add(row, false);
        }
        for row in codes {
            book.codes.add(row, false);
        }
        book
    }

    /// `index_of` for an optional code: `NO_CODE` when there is none.
    pub fn code_index(&self, code: Option<&str>) -> u32 {
        code.map_or(NO_CODE, |c| self.codes.index_of(c))
    }

    /// Loads the stored names of `kind` among `names` that are not loaded yet (incremental runs load only
    /// what their rows name, so that they cost what changed, not the system's size).
    pub fn load_named(
        &mut self,
        queue: &Queue,
        kind: NameKind,
        names: impl IntoIterator<Item = String>,
    ) -> anyhow::Result<()> {
        let known = self.of(kind);
        let mut missing: Vec<String> = names
            .into_iter()
            .filter(|n| known.get(n).is_none())
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        for row in queue.named(kind, missing)? {
            self.of_mut(kind).add(row, false);
        }
        Ok(())
    }

    /// Registers the names of these rows not known yet. With `load_first` (incremental runs), stored names
    /// the rows name are loaded first. Returns how many of each kind were new: (agent IDs, codes).
    pub fn register<'r>(
        &mut self,
        queue: &Queue,
        rows: impl Iterator<Item = &'r SourceSession<'r>> + Clone,
        load_first: bool,
    ) -> anyhow::Result<(u64, u64)> {
        let mut new = [0u64; 2];
        for (n, kind) in [NameKind::AgentId, NameKind::ActivityCode]
            .into_iter()
            .enumerate()
        {
            if load_first {
                let named = rows
                    .clone()
                    .filter_map(|s| name_of(kind, s))
                    .map(str::to_owned);
                self.load_named(queue, kind, named)?;
            }
            let mut seen: FxHashSet<&str> = FxHashSet::default();
            let fresh: Vec<NewName> = rows
                .clone()
                .filter_map(|s| Some((name_of(kind, s)?, s.started_at)))
                .filter(|(name, _)| self.of(kind).get(name).is_none() && seen.insert(name))
                .map(|(name, t)| NewName {
                    name: name.to_owned(),
                    seen_at: t,
                })
                .collect();
            if fresh.is_empty() {
                continue;
            }
            tracing::debug!(
                kind = kind.what(),
                count = fresh.len(),
                "registering new names"
            );
            let first_seen: FxHashMap<String, NaiveDateTime> =
                fresh.iter().map(|r| (r.name.clone(), r.seen_at)).collect();
            for (id, name) in queue.register(kind, fresh)? {
                let t = first_seen.get(&name).copied();
                new[n] += 1;
                let row = NameRow {
                    id,
                    name,
                    first_seen_at: t,
                    last_seen_at: t,
                };
                self.of_mut(kind).add(row, true);
            }
        }
        Ok((new[0], new[1]))
    }
}
