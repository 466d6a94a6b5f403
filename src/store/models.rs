//! Rows as Diesel reads and writes them.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::schema::{
    agent_sessions, external_activity_codes, external_agent_ids, import_runs, rejected_rows,
};

/// A session to insert. `treat_none_as_default_value = false`: NULL means NULL (SQLite batch insert, COPY).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = agent_sessions, treat_none_as_default_value = false)]
pub struct NewSession {
    pub external_system_id: i64,
    pub external_agent_id: i64,
    pub external_activity_code_id: Option<i64>,
    pub started_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
}

/// A stored session of the window, as the merge compares it.
#[derive(Debug, Clone, Queryable, QueryableByName)]
#[diesel(table_name = agent_sessions)]
pub struct StoredSession {
    pub id: i64,
    pub external_agent_id: i64,
    pub external_activity_code_id: Option<i64>,
    pub started_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
}

/// A changed session: its code and end (the start is part of its identity).
#[derive(Debug, Clone, Copy)]
pub struct SessionChange {
    pub id: i64,
    pub external_activity_code_id: Option<i64>,
    pub ended_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = external_agent_ids, treat_none_as_default_value = false)]
pub struct NewAgentId<'a> {
    pub external_system_id: i64,
    pub external_id: &'a str,
    pub first_seen_at: Option<NaiveDateTime>,
    pub last_seen_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = external_activity_codes, treat_none_as_default_value = false)]
pub struct NewActivityCode<'a> {
    pub external_system_id: i64,
    pub code: &'a str,
    pub activity_id: i64,
    pub first_seen_at: Option<NaiveDateTime>,
    pub last_seen_at: Option<NaiveDateTime>,
}

/// New first/last-seen times of an agent ID or a code (only written when they widen).
#[derive(Debug, Clone, Copy)]
pub struct SeenChange {
    pub id: i64,
    pub first_seen_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = import_runs)]
pub struct NewImportRun {
    pub external_system_id: i64,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub window_start: NaiveDateTime,
    pub window_end: NaiveDateTime,
    pub started_at: NaiveDateTime,
    pub status: &'static str,
    pub host: String,
    pub pid: i64,
    /// `full` or `changes`.
    pub mode: &'static str,
}

/// What a finished run writes into its `import_runs` row.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = import_runs, treat_none_as_null = true)]
pub struct RunOutcome {
    pub finished_at: Option<NaiveDateTime>,
    pub status: String,
    pub rows_read: i64,
    pub sessions_inserted: i64,
    pub sessions_updated: i64,
    pub sessions_deleted: i64,
    pub sessions_unchanged: i64,
    pub rows_rejected: i64,
    pub new_agent_ids: i64,
    pub new_activity_codes: i64,
    pub error: Option<String>,
    /// The system's watermark after the run (incremental mode).
    pub watermark: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = rejected_rows, treat_none_as_default_value = false)]
pub struct NewRejectedRow {
    pub import_run_id: i64,
    pub source_row: i64,
    pub field: &'static str,
    pub reason: String,
    pub agent_id: Option<String>,
    pub activity_code: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
}
