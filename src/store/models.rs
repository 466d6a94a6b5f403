//! Rows as Diesel reads and writes them.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::serialize::{Output, ToSql};
use diesel::sql_types::Text;

use super::schema::{
    agent_sessions, event_agent_states, external_activity_codes, external_agent_ids, import_runs,
    rejected_rows,
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

impl StoredSession {
    pub fn key(&self) -> SessionKey {
        SessionKey::new(self.started_at, self.external_agent_id)
    }
}

/// The identity of a session within its system: its start (UTC microseconds since the epoch) and its agent
/// ID, ordered by start, then agent: the order the stored window is read in, and the unique index's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionKey {
    pub start: i64,
    pub agent: i64,
}

impl SessionKey {
    pub fn new(started_at: NaiveDateTime, agent: i64) -> SessionKey {
        SessionKey {
            start: micros(started_at),
            agent,
        }
    }

    pub fn started_at(&self) -> NaiveDateTime {
        from_micros(self.start)
    }
}

/// UTC microseconds since the epoch: the compact form the merge keys on.
pub fn micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

/// The instant `micros` made (the store's range, so always representable).
pub fn from_micros(t: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp_micros(t)
        .map(|t| t.naive_utc())
        .unwrap_or_default()
}

/// The two kinds of names a source hands out, each in a table of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// `external_agent_ids`: an agent's login at the ACD.
    AgentId,
    /// `external_activity_codes`: a reason or state code.
    ActivityCode,
}

impl NameKind {
    /// What messages call it.
    pub fn what(self) -> &'static str {
        match self {
            NameKind::AgentId => "agent IDs",
            NameKind::ActivityCode => "activity codes",
        }
    }
}

/// A stored agent ID or code, with the times it was first and last seen.
#[derive(Clone, Debug, PartialEq, Eq, Queryable, QueryableByName)]
pub struct NameRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
    pub first_seen_at: Option<NaiveDateTime>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
    pub last_seen_at: Option<NaiveDateTime>,
}

/// An agent ID or code seen for the first time (codes go to `Present`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewName {
    pub name: String,
    pub seen_at: NaiveDateTime,
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
    pub status: RunStatus,
    pub host: String,
    pub pid: i64,
    pub mode: RunMode,
}

/// `import_runs.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, diesel::expression::AsExpression)]
#[diesel(sql_type = Text)]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// Left `running` by a process that stopped; marked by the next run of its system.
    Abandoned,
    /// Stopped by SIGTERM or SIGINT at a safe point and rolled back (migration 2026-11-30-000002).
    Interrupted,
    /// Refused by the mass-delete guard: nothing written (migration 2026-11-30-000004).
    Refused,
}

/// `import_runs.mode`: how a run read the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, diesel::expression::AsExpression)]
#[diesel(sql_type = Text)]
pub enum RunMode {
    /// The window query: the window's sessions are made equal to the source (inserts, updates, deletes).
    Full,
    /// Incremental: the changes query, rows changed since the watermark (inserts and updates only).
    Changes,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Abandoned => "abandoned",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Refused => "refused",
        }
    }
}

impl RunMode {
    pub fn name(self) -> &'static str {
        match self {
            RunMode::Full => "full",
            RunMode::Changes => "changes",
        }
    }
}

impl<DB: Backend> ToSql<Text, DB> for RunStatus
where
    str: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> diesel::serialize::Result {
        self.as_str().to_sql(out)
    }
}

impl<DB: Backend> ToSql<Text, DB> for RunMode
where
    str: ToSql<Text, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> diesel::serialize::Result {
        self.name().to_sql(out)
    }
}

/// What a finished run writes into its `import_runs` row.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = import_runs, treat_none_as_null = true)]
pub struct RunOutcome {
    pub finished_at: Option<NaiveDateTime>,
    pub status: RunStatus,
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
    /// What the mass-delete guard let through because it was overridden (NULL otherwise).
    pub mass_delete_override: Option<String>,
}

impl RunOutcome {
    /// A run that failed: nothing but this row is kept. The error leaves the program here, passwords
    /// removed.
    pub fn failed(finished_at: NaiveDateTime, error: &anyhow::Error) -> RunOutcome {
        RunOutcome {
            finished_at: Some(finished_at),
            status: match crate::error::failure_of(error) {
                Some(crate::error::Failure::Interrupted(_)) => RunStatus::Interrupted,
                Some(crate::error::Failure::MassDelete(_)) => RunStatus::Refused,
                _ => RunStatus::Failed,
            },
            rows_read: 0,
            sessions_inserted: 0,
            sessions_updated: 0,
            sessions_deleted: 0,
            sessions_unchanged: 0,
            rows_rejected: 0,
            new_agent_ids: 0,
            new_activity_codes: 0,
            error: Some(crate::secrets::redact(&format!("{error:#}"))),
            watermark: None,
            mass_delete_override: None,
        }
    }
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

/// An agent's state at the watermark (incremental mode for event sources; see `events::AgentState`).
#[derive(Debug, Clone, PartialEq, Eq, Insertable, Queryable)]
#[diesel(table_name = event_agent_states, treat_none_as_default_value = false)]
pub struct EventStateRow {
    pub external_system_id: i64,
    pub agent_id: String,
    /// A JSON array of strings.
    pub scopes: String,
    pub open_started_at: Option<NaiveDateTime>,
    pub open_activity_code: Option<String>,
    pub logged_out: bool,
    pub implicit_login: bool,
    pub last_event_at: NaiveDateTime,
}

/// A system's last run, for the metrics (`crate::metrics`).
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub system: String,
    pub status: String,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    /// Read, inserted, updated, deleted, unchanged, rejected.
    pub counts: [i64; 6],
    /// When its last successful run finished.
    pub last_success: Option<NaiveDateTime>,
}

impl RunSummary {
    pub fn rows(&self) -> impl Iterator<Item = (&'static str, i64)> + '_ {
        [
            "read",
            "inserted",
            "updated",
            "deleted",
            "unchanged",
            "rejected",
        ]
        .into_iter()
        .zip(self.counts)
    }
}
