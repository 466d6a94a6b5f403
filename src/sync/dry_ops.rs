//! `WfmOps` for a dry run: reads go to the store (in a read-only transaction), writes are only noted.
//! The merge runs as in a real sync and never learns the difference: what it would insert, update and
//! delete, and the agent IDs and codes it would register (given ids below zero), end up in `Diff`.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::QueryResult;

use crate::store::models::*;
use crate::store::{SessionKey, WfmOps};
use crate::window::Bounds;

/// What a sync would write.
#[derive(Debug, Default)]
pub struct Diff {
    pub inserted: Vec<NewSession>,
    pub updated: Vec<SessionChange>,
    pub deleted: Vec<i64>,
    pub rejected: u64,
    /// Agent IDs and codes it would register, with the ids it was given here (below zero).
    pub new_agent_ids: Vec<(i64, String)>,
    pub new_codes: Vec<(i64, String)>,
}

pub struct DryOps<'a> {
    pub inner: &'a mut (dyn WfmOps + Send),
    pub diff: Diff,
    next_id: i64,
}

impl<'a> DryOps<'a> {
    pub fn new(inner: &'a mut (dyn WfmOps + Send)) -> DryOps<'a> {
        DryOps {
            inner,
            diff: Diff::default(),
            next_id: -1,
        }
    }
}

impl WfmOps for DryOps<'_> {
    fn register_system(&mut self, name: &str, time_zone: &str) -> QueryResult<(i64, String)> {
        let _ = name;
        Ok((-1, time_zone.to_owned()))
    }
    fn set_time_zone(&mut self, _: i64, _: &str) -> QueryResult<()> {
        Ok(())
    }
    fn oldest_open_before(
        &mut self,
        system_id: i64,
        before: NaiveDateTime,
    ) -> QueryResult<Option<NaiveDateTime>> {
        self.inner.oldest_open_before(system_id, before)
    }
    fn mark_changed_days(&mut self, _: i64, days: &[NaiveDate]) -> QueryResult<usize> {
        Ok(days.len())
    }
    fn clear_changed_days(&mut self, _: i64, _: NaiveDate, _: NaiveDate) -> QueryResult<usize> {
        Ok(0)
    }
    fn changed_days(&mut self, system_id: i64) -> QueryResult<Vec<NaiveDate>> {
        self.inner.changed_days(system_id)
    }
    fn count_sessions(&mut self, system_id: i64) -> QueryResult<i64> {
        self.inner.count_sessions(system_id)
    }
    fn abandon_running(&mut self, _: i64, _: NaiveDateTime) -> QueryResult<usize> {
        Ok(0)
    }
    fn start_run(&mut self, _: &NewImportRun) -> QueryResult<i64> {
        Ok(0)
    }
    fn finish_run(&mut self, _: i64, _: &RunOutcome) -> QueryResult<()> {
        Ok(())
    }
    fn load_names(&mut self, kind: NameKind, system_id: i64) -> QueryResult<Vec<NameRow>> {
        self.inner.load_names(kind, system_id)
    }
    fn load_names_named(
        &mut self,
        kind: NameKind,
        system_id: i64,
        names: &[String],
    ) -> QueryResult<Vec<NameRow>> {
        self.inner.load_names_named(kind, system_id, names)
    }
    fn insert_new_names(
        &mut self,
        kind: NameKind,
        _: i64,
        rows: &[NewName],
    ) -> QueryResult<Vec<(i64, String)>> {
        let mut given = Vec::with_capacity(rows.len());
        for r in rows {
            given.push((self.next_id, r.name.clone()));
            self.next_id -= 1;
        }
        match kind {
            NameKind::AgentId => self.diff.new_agent_ids.extend(given.iter().cloned()),
            NameKind::ActivityCode => self.diff.new_codes.extend(given.iter().cloned()),
        }
        Ok(given)
    }
    fn update_seen(&mut self, _: NameKind, rows: &[SeenChange]) -> QueryResult<usize> {
        Ok(rows.len())
    }
    fn stream_window(
        &mut self,
        system_id: i64,
        window: &Bounds,
        page_rows: usize,
        send: &mut dyn FnMut(Vec<StoredSession>) -> bool,
    ) -> QueryResult<()> {
        self.inner.stream_window(system_id, window, page_rows, send)
    }
    fn load_watermark(&mut self, system_id: i64) -> QueryResult<Option<(String, String)>> {
        self.inner.load_watermark(system_id)
    }
    fn save_watermark(&mut self, _: i64, _: &str, _: &str, _: NaiveDateTime) -> QueryResult<()> {
        Ok(())
    }
    fn last_full_sync(&mut self, system_id: i64) -> QueryResult<Option<NaiveDateTime>> {
        self.inner.last_full_sync(system_id)
    }
    fn load_sessions_at(
        &mut self,
        system_id: i64,
        keys: &[SessionKey],
    ) -> QueryResult<Vec<StoredSession>> {
        self.inner.load_sessions_at(system_id, keys)
    }
    fn load_sessions_by_id(&mut self, ids: &[i64]) -> QueryResult<Vec<StoredSession>> {
        self.inner.load_sessions_by_id(ids)
    }
    fn insert_sessions(&mut self, rows: &[NewSession]) -> QueryResult<usize> {
        self.diff.inserted.extend(rows.iter().cloned());
        Ok(rows.len())
    }
    fn update_sessions(&mut self, rows: &[SessionChange]) -> QueryResult<usize> {
        self.diff.updated.extend(rows.iter().copied());
        Ok(rows.len())
    }
    fn delete_sessions(&mut self, ids: &[i64]) -> QueryResult<usize> {
        self.diff.deleted.extend(ids);
        Ok(ids.len())
    }
    fn insert_rejected(&mut self, rows: &[NewRejectedRow]) -> QueryResult<usize> {
        self.diff.rejected += rows.len() as u64;
        Ok(rows.len())
    }
    fn load_event_states(&mut self, system_id: i64) -> QueryResult<Vec<EventStateRow>> {
        self.inner.load_event_states(system_id)
    }
    fn save_event_states(&mut self, _: i64, rows: &[EventStateRow], _: bool) -> QueryResult<usize> {
        Ok(rows.len())
    }
    fn run_summaries(&mut self) -> QueryResult<Vec<RunSummary>> {
        self.inner.run_summaries()
    }
    fn count_unmapped(&mut self, system_id: i64) -> QueryResult<i64> {
        self.inner.count_unmapped(system_id)
    }
}
