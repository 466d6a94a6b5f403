//! The statements a sync sends to the WFM database, as one object-safe trait that both backends implement
//! (`postgres.rs`, `sqlite.rs`; what Diesel writes the same way for both is in `shared.rs`). A sync holds
//! a `&mut dyn WfmOps` inside the store's transaction and never learns which backend it talks to.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::QueryResult;

use super::models::*;
use super::shared::CHUNK;
use crate::window::Bounds;

/// The id of the system activity new codes are assigned to.
pub const PRESENT_ACTIVITY_ID: i64 = 1;

pub trait WfmOps {
    /// The id and stored time zone of the external system `name`, created with `time_zone` if new.
    fn register_system(&mut self, name: &str, time_zone: &str) -> QueryResult<(i64, String)>;
    fn set_time_zone(&mut self, system_id: i64, time_zone: &str) -> QueryResult<()>;
    /// The start of the oldest session of the system stored open that starts before `before`.
    fn oldest_open_before(
        &mut self,
        system_id: i64,
        before: NaiveDateTime,
    ) -> QueryResult<Option<NaiveDateTime>>;
    /// Notes local days a changes run wrote sessions in (see the table `changed_days`).
    fn mark_changed_days(&mut self, system_id: i64, days: &[NaiveDate]) -> QueryResult<usize>;
    /// A full sync of `first..=last` read those days again.
    fn clear_changed_days(
        &mut self,
        system_id: i64,
        first: NaiveDate,
        last: NaiveDate,
    ) -> QueryResult<usize>;
    /// The days changes runs wrote to since their last full sync, in order.
    fn changed_days(&mut self, system_id: i64) -> QueryResult<Vec<NaiveDate>>;
    /// How many sessions of the system are stored.
    fn count_sessions(&mut self, system_id: i64) -> QueryResult<i64>;
    /// Marks `running` runs of the system as `abandoned` (called under the run lock: nobody runs them).
    fn abandon_running(&mut self, system_id: i64, now: NaiveDateTime) -> QueryResult<usize>;
    fn start_run(&mut self, run: &NewImportRun) -> QueryResult<i64>;
    fn finish_run(&mut self, run_id: i64, outcome: &RunOutcome) -> QueryResult<()>;
    /// Every agent ID or code of the system.
    fn load_names(&mut self, kind: NameKind, system_id: i64) -> QueryResult<Vec<NameRow>>;
    /// The agent IDs or codes of the system among `names` (an incremental run loads only those it reads).
    fn load_names_named(
        &mut self,
        kind: NameKind,
        system_id: i64,
        names: &[String],
    ) -> QueryResult<Vec<NameRow>>;
    /// Inserts at most `CHUNK` agent IDs or codes (codes on `Present`) with one statement, leaving alone
    /// those that exist; returns the ids of those it inserted.
    fn insert_new_names(
        &mut self,
        kind: NameKind,
        system_id: i64,
        rows: &[NewName],
    ) -> QueryResult<Vec<(i64, String)>>;
    /// Inserts agent IDs or codes (existing ones are left alone) and returns the ids of all of them.
    fn insert_names(
        &mut self,
        kind: NameKind,
        system_id: i64,
        rows: &[NewName],
    ) -> QueryResult<Vec<(i64, String)>> {
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(CHUNK) {
            let inserted = self.insert_new_names(kind, system_id, chunk)?;
            // Those someone else registered meanwhile (a DBA): looked up by name.
            if inserted.len() < chunk.len() {
                let missing = not_returned(chunk, &inserted);
                let found = self.load_names_named(kind, system_id, &missing)?;
                out.extend(found.into_iter().map(|r| (r.id, r.name)));
            }
            out.extend(inserted);
        }
        Ok(out)
    }
    fn update_seen(&mut self, kind: NameKind, rows: &[SeenChange]) -> QueryResult<usize>;
    /// Reads the stored sessions of the window in key order (start, agent) in one pass and hands them on
    /// in pages of `page_rows`; stops early when `send` returns false. Run on a connection of its own.
    /// The window's sessions start in [`lookback_start`, `end`) and start in the window or overlap its start.
    fn stream_window(
        &mut self,
        system_id: i64,
        window: &Bounds,
        page_rows: usize,
        send: &mut dyn FnMut(Vec<StoredSession>) -> bool,
    ) -> QueryResult<()>;
    /// The system's watermark (kind, value), if incremental mode has set one.
    fn load_watermark(&mut self, system_id: i64) -> QueryResult<Option<(String, String)>>;
    fn save_watermark(
        &mut self,
        system_id: i64,
        kind: &str,
        value: &str,
        now: NaiveDateTime,
    ) -> QueryResult<()>;
    /// When the last successful full sync of the latest day the system was synced in full for started.
    fn last_full_sync(&mut self, system_id: i64) -> QueryResult<Option<NaiveDateTime>>;
    /// The stored sessions with these keys, wherever they start (sessions that began before the window
    /// and ended before it are not in the stored window, but the source may now say they overlap it).
    fn load_sessions_at(
        &mut self,
        system_id: i64,
        keys: &[SessionKey],
    ) -> QueryResult<Vec<StoredSession>>;
    /// The stored sessions with these ids (a dry run shows what it would change).
    fn load_sessions_by_id(&mut self, ids: &[i64]) -> QueryResult<Vec<StoredSession>>;
    fn insert_sessions(&mut self, rows: &[NewSession]) -> QueryResult<usize>;
    fn update_sessions(&mut self, rows: &[SessionChange]) -> QueryResult<usize>;
    fn delete_sessions(&mut self, ids: &[i64]) -> QueryResult<usize>;
    fn insert_rejected(&mut self, rows: &[NewRejectedRow]) -> QueryResult<usize>;
    /// The agents' states at the watermark (incremental mode for event sources), in agent order.
    fn load_event_states(&mut self, system_id: i64) -> QueryResult<Vec<EventStateRow>>;
    /// Stores agents' states: those of `rows` replace the stored ones of the same agents, or, with
    /// `replace_all`, all of the system's.
    fn save_event_states(
        &mut self,
        system_id: i64,
        rows: &[EventStateRow],
        replace_all: bool,
    ) -> QueryResult<usize>;
    /// Each system's last run and last success, in the order of the systems' names (systems never run are
    /// left out).
    fn run_summaries(&mut self) -> QueryResult<Vec<RunSummary>>;
    /// How many agent IDs of the system have no employee.
    fn count_unmapped(&mut self, system_id: i64) -> QueryResult<i64>;
}

/// The names an `INSERT ... ON CONFLICT DO NOTHING RETURNING` did not return: those that already existed.
fn not_returned(rows: &[NewName], returned: &[(i64, String)]) -> Vec<String> {
    let got: std::collections::HashSet<&str> = returned.iter().map(|(_, n)| n.as_str()).collect();
    rows.iter()
        .map(|r| r.name.as_str())
        .filter(|n| !got.contains(n))
        .map(str::to_owned)
        .collect()
}
