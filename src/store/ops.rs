//! The statements a sync sends to the WFM database, for both backends.
//!
//! `WfmOps` is implemented for `PgConnection` and `SqliteConnection`. Statements that Diesel writes the same
//! way for both are written once in the `shared_ops!` macro; bulk writes use what each backend does best:
//! PostgreSQL binary COPY and set-based `unnest` statements, SQLite prepared statements in one transaction
//! (in-process, so a statement per row costs no round trip).

use chrono::NaiveDateTime;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};
use diesel::sqlite::SqliteConnection;

use super::models::*;
use super::schema::{
    agent_sessions, external_activity_codes, external_agent_ids, external_systems, import_runs,
    rejected_rows,
};

/// Rows per multi-row statement: below SQLite's 32,766 bound parameters for every table written here.
const CHUNK: usize = 2_000;

/// An agent ID as loaded for the merge.
pub type AgentRow = (i64, String, Option<NaiveDateTime>, Option<NaiveDateTime>);
/// An activity code as loaded for the merge.
pub type CodeRow = (i64, String, Option<NaiveDateTime>, Option<NaiveDateTime>);

/// The window of stored sessions a sync compares with the source (UTC): sessions starting in
/// [`lookback_start`, `window_end`) that start in the window or overlap its start.
#[derive(Clone, Copy, Debug)]
pub struct StoredWindow {
    pub external_system_id: i64,
    pub lookback_start: NaiveDateTime,
    pub window_start: NaiveDateTime,
    pub window_end: NaiveDateTime,
}

pub trait WfmOps {
    /// The id of the external system `name`, created if new; its time zone is kept up to date.
    fn register_system(&mut self, name: &str, time_zone: &str) -> QueryResult<i64>;
    /// Marks `running` runs of the system as `abandoned` (called under the run lock: nobody runs them).
    fn abandon_running(&mut self, system_id: i64, now: NaiveDateTime) -> QueryResult<usize>;
    fn start_run(&mut self, run: &NewImportRun) -> QueryResult<i64>;
    fn finish_run(&mut self, run_id: i64, outcome: &RunOutcome) -> QueryResult<()>;
    fn load_agents(&mut self, system_id: i64) -> QueryResult<Vec<AgentRow>>;
    fn load_codes(&mut self, system_id: i64) -> QueryResult<Vec<CodeRow>>;
    /// The agent IDs of the system among `names` (an incremental run loads only those it reads).
    fn load_agents_named(&mut self, system_id: i64, names: &[String])
        -> QueryResult<Vec<AgentRow>>;
    fn load_codes_named(&mut self, system_id: i64, names: &[String]) -> QueryResult<Vec<CodeRow>>;
    /// Inserts agent IDs (existing ones are left alone) and returns the ids of all of them.
    fn insert_agents(
        &mut self,
        system_id: i64,
        rows: &[NewAgentId<'_>],
    ) -> QueryResult<Vec<(i64, String)>>;
    /// Inserts codes on `Present` (existing ones are left alone) and returns the ids of all of them.
    fn insert_codes(
        &mut self,
        system_id: i64,
        rows: &[NewActivityCode<'_>],
    ) -> QueryResult<Vec<(i64, String)>>;
    /// Reads the stored sessions of the window in key order (start, agent) in one pass and hands them on
    /// in pages of `page_rows`; stops early when `send` returns false. Run on a connection of its own.
    fn stream_window(
        &mut self,
        w: &StoredWindow,
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
    /// The stored sessions with these (agent, start) keys: sessions that began before the window and
    /// ended before it, which `load_window` leaves out, but which the source may now say overlap it.
    fn load_sessions_at(
        &mut self,
        system_id: i64,
        keys: &[(i64, NaiveDateTime)],
    ) -> QueryResult<Vec<StoredSession>>;
    fn insert_sessions(&mut self, rows: &[NewSession]) -> QueryResult<usize>;
    fn update_sessions(&mut self, rows: &[SessionChange]) -> QueryResult<usize>;
    fn delete_sessions(&mut self, ids: &[i64]) -> QueryResult<usize>;
    fn update_agents_seen(&mut self, rows: &[SeenChange]) -> QueryResult<usize>;
    fn update_codes_seen(&mut self, rows: &[SeenChange]) -> QueryResult<usize>;
    fn insert_rejected(&mut self, rows: &[NewRejectedRow]) -> QueryResult<usize>;
    /// How many of these agent IDs have no employee.
    fn count_unmapped(&mut self, system_id: i64) -> QueryResult<i64>;
}

/// The stored sessions of a window (`StoredWindow`), in key order (start, agent): the same query for both
/// backends, which page it (PostgreSQL) or step through it (SQLite).
macro_rules! window_sessions {
    ($w:expr) => {{
        use agent_sessions::dsl as s;
        let w: &StoredWindow = $w;
        s::agent_sessions
            .filter(s::external_system_id.eq(w.external_system_id))
            .filter(s::started_at.ge(w.lookback_start))
            .filter(s::started_at.lt(w.window_end))
            .filter(
                s::started_at
                    .ge(w.window_start)
                    .or(s::ended_at.is_null())
                    .or(s::ended_at.ge(w.window_start)),
            )
            .select((
                s::id,
                s::external_agent_id,
                s::external_activity_code_id,
                s::started_at,
                s::ended_at,
            ))
            .order((s::started_at, s::external_agent_id))
    }};
}

macro_rules! shared_ops {
    () => {
        fn register_system(&mut self, name: &str, time_zone: &str) -> QueryResult<i64> {
            use external_systems::dsl as s;
            let found: Option<(i64, String)> = s::external_systems
                .filter(s::name.eq(name))
                .select((s::id, s::time_zone))
                .first(self)
                .optional()?;
            match found {
                Some((id, tz)) if tz == time_zone => Ok(id),
                Some((id, _)) => {
                    diesel::update(s::external_systems.find(id)).set(s::time_zone.eq(time_zone)).execute(self)?;
                    Ok(id)
                }
                None => diesel::insert_into(s::external_systems)
                    .values((s::name.eq(name), s::time_zone.eq(time_zone)))
                    .returning(s::id)
                    .get_result(self),
            }
        }

        fn abandon_running(&mut self, system_id: i64, now: NaiveDateTime) -> QueryResult<usize> {
            use import_runs::dsl as r;
            diesel::update(r::import_runs.filter(r::external_system_id.eq(system_id)).filter(r::status.eq("running")))
                .set((
                    r::status.eq("abandoned"),
                    r::finished_at.eq(now),
                    r::error.eq("the process running it stopped before it finished (killed or crashed); nothing it did was kept"),
                ))
                .execute(self)
        }

        fn start_run(&mut self, run: &NewImportRun) -> QueryResult<i64> {
            diesel::insert_into(import_runs::table).values(run).returning(import_runs::id).get_result(self)
        }

        fn finish_run(&mut self, run_id: i64, outcome: &RunOutcome) -> QueryResult<()> {
            diesel::update(import_runs::table.find(run_id)).set(outcome).execute(self).map(drop)
        }

        fn load_agents(&mut self, system_id: i64) -> QueryResult<Vec<AgentRow>> {
            use external_agent_ids::dsl as a;
            a::external_agent_ids
                .filter(a::external_system_id.eq(system_id))
                .select((a::id, a::external_id, a::first_seen_at, a::last_seen_at))
                .load(self)
        }

        fn load_codes(&mut self, system_id: i64) -> QueryResult<Vec<CodeRow>> {
            use external_activity_codes::dsl as c;
            c::external_activity_codes
                .filter(c::external_system_id.eq(system_id))
                .select((c::id, c::code, c::first_seen_at, c::last_seen_at))
                .load(self)
        }

        fn insert_agents(&mut self, system_id: i64, rows: &[NewAgentId<'_>]) -> QueryResult<Vec<(i64, String)>> {
            use external_agent_ids::dsl as a;
            let mut out = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(CHUNK) {
                let inserted: Vec<(i64, String)> = diesel::insert_into(a::external_agent_ids)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .returning((a::id, a::external_id))
                    .get_results(self)?;
                // Those someone else registered meanwhile (a DBA): looked up by name.
                if inserted.len() < chunk.len() {
                    let missing = not_returned(chunk.iter().map(|r| r.external_id), &inserted);
                    let found = self.load_agents_named(system_id, &missing)?;
                    out.extend(found.into_iter().map(|(id, name, _, _)| (id, name)));
                }
                out.extend(inserted);
            }
            Ok(out)
        }

        fn insert_codes(&mut self, system_id: i64, rows: &[NewActivityCode<'_>]) -> QueryResult<Vec<(i64, String)>> {
            use external_activity_codes::dsl as c;
            let mut out = Vec::with_capacity(rows.len());
            for chunk in rows.chunks(CHUNK) {
                let inserted: Vec<(i64, String)> = diesel::insert_into(c::external_activity_codes)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .returning((c::id, c::code))
                    .get_results(self)?;
                if inserted.len() < chunk.len() {
                    let missing = not_returned(chunk.iter().map(|r| r.code), &inserted);
                    let found = self.load_codes_named(system_id, &missing)?;
                    out.extend(found.into_iter().map(|(id, code, _, _)| (id, code)));
                }
                out.extend(inserted);
            }
            Ok(out)
        }

        fn load_watermark(&mut self, system_id: i64) -> QueryResult<Option<(String, String)>> {
            use external_systems::dsl as s;
            let (kind, value): (Option<String>, Option<String>) = s::external_systems
                .find(system_id)
                .select((s::watermark_kind, s::watermark))
                .first(self)?;
            Ok(kind.zip(value))
        }

        fn save_watermark(&mut self, system_id: i64, kind: &str, value: &str, now: NaiveDateTime) -> QueryResult<()> {
            use external_systems::dsl as s;
            diesel::update(s::external_systems.find(system_id))
                .set((s::watermark_kind.eq(kind), s::watermark.eq(value), s::watermark_updated_at.eq(now)))
                .execute(self)
                .map(drop)
        }

        fn last_full_sync(&mut self, system_id: i64) -> QueryResult<Option<NaiveDateTime>> {
            use import_runs::dsl as r;
            // The latest full sync of the latest day synced in full: a sync of an earlier day (a cron job
            // closing yesterday) does not stand for today's reconciliation.
            r::import_runs
                .filter(r::external_system_id.eq(system_id))
                .filter(r::mode.eq("full"))
                .filter(r::status.eq("succeeded"))
                .order((r::last_day.desc(), r::started_at.desc()))
                .select(r::started_at)
                .first(self)
                .optional()
        }

        fn delete_sessions(&mut self, ids: &[i64]) -> QueryResult<usize> {
            use agent_sessions::dsl as s;
            let mut n = 0;
            for chunk in ids.chunks(CHUNK) {
                n += diesel::delete(s::agent_sessions.filter(s::id.eq_any(chunk))).execute(self)?;
            }
            Ok(n)
        }

        fn insert_rejected(&mut self, rows: &[NewRejectedRow]) -> QueryResult<usize> {
            let mut n = 0;
            for chunk in rows.chunks(CHUNK) {
                n += diesel::insert_into(rejected_rows::table).values(chunk).execute(self)?;
            }
            Ok(n)
        }

        fn count_unmapped(&mut self, system_id: i64) -> QueryResult<i64> {
            use external_agent_ids::dsl as a;
            a::external_agent_ids
                .filter(a::external_system_id.eq(system_id))
                .filter(a::employee_id.is_null())
                .count()
                .get_result(self)
        }
    };
}

impl WfmOps for PgConnection {
    shared_ops!();

    // Joined to the unique index name by name: `external_id = ANY($2)` can be planned as a filter that
    // compares every row of the table with every name (seen: 0.5 s a call on 50,000 IDs).
    fn load_agents_named(
        &mut self,
        system_id: i64,
        names: &[String],
    ) -> QueryResult<Vec<AgentRow>> {
        let rows: Vec<NamedRow> = diesel::sql_query(
            "SELECT a.id, a.external_id AS name, a.first_seen_at, a.last_seen_at \
             FROM unnest($2) AS n(name) \
             JOIN external_agent_ids a ON a.external_system_id = $1 AND a.external_id = n.name",
        )
        .bind::<BigInt, _>(system_id)
        .bind::<Array<Text>, _>(names)
        .load(self)?;
        Ok(rows.into_iter().map(NamedRow::into_row).collect())
    }

    fn load_codes_named(&mut self, system_id: i64, names: &[String]) -> QueryResult<Vec<CodeRow>> {
        let rows: Vec<NamedRow> = diesel::sql_query(
            "SELECT c.id, c.code AS name, c.first_seen_at, c.last_seen_at \
             FROM unnest($2) AS n(name) \
             JOIN external_activity_codes c ON c.external_system_id = $1 AND c.code = n.name",
        )
        .bind::<BigInt, _>(system_id)
        .bind::<Array<Text>, _>(names)
        .load(self)?;
        Ok(rows.into_iter().map(NamedRow::into_row).collect())
    }

    // One statement per 10,000 keys, each key looked up in the unique index (LATERAL ... LIMIT 1: a plain
    // join was planned as a hash join over the whole table, 1 s a call at 1.5 million sessions): the cost
    // follows the keys asked for, not the size of the table.
    fn load_sessions_at(
        &mut self,
        system_id: i64,
        keys: &[(i64, NaiveDateTime)],
    ) -> QueryResult<Vec<StoredSession>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(10_000) {
            let agents: Vec<i64> = chunk.iter().map(|k| k.0).collect();
            let starts: Vec<NaiveDateTime> = chunk.iter().map(|k| k.1).collect();
            out.extend(
                diesel::sql_query(
                    "SELECT s.id, s.external_agent_id, s.external_activity_code_id, s.started_at, s.ended_at \
                     FROM unnest($2, $3) AS k(agent, started_at) \
                     CROSS JOIN LATERAL (SELECT * FROM agent_sessions a WHERE a.external_system_id = $1 \
                       AND a.started_at = k.started_at AND a.external_agent_id = k.agent LIMIT 1) s",
                )
                .bind::<BigInt, _>(system_id)
                .bind::<Array<BigInt>, _>(agents)
                .bind::<Array<Timestamp>, _>(starts)
                .load::<StoredSession>(self)?,
            );
        }
        Ok(out)
    }

    // Pages by key (start, agent), each an index range scan from the last key read, decoded by position:
    // one result per page (libpq's single-row mode would allocate a result per row, a cursor's rows can
    // only be decoded by column name). The reader's session prefers the index's order to a sort, so that
    // statistics not yet updated after a first load cannot make it sort the day for every page.
    fn stream_window(
        &mut self,
        w: &StoredWindow,
        page_rows: usize,
        send: &mut dyn FnMut(Vec<StoredSession>) -> bool,
    ) -> QueryResult<()> {
        use agent_sessions::dsl as s;
        self.batch_execute("SET enable_sort = off; SET enable_bitmapscan = off")?;
        let mut after: Option<(NaiveDateTime, i64)> = None;
        loop {
            let mut q = window_sessions!(w).limit(page_rows as i64).into_boxed();
            if let Some((t, agent)) = after {
                q = q
                    .filter(s::started_at.ge(t))
                    .filter(s::started_at.gt(t).or(s::external_agent_id.gt(agent)));
            }
            let page: Vec<StoredSession> = q.load(self)?;
            let full = page.len() == page_rows;
            after = page.last().map(|r| (r.started_at, r.external_agent_id));
            if page.is_empty() || !send(page) || !full {
                return Ok(());
            }
        }
    }

    fn insert_sessions(&mut self, rows: &[NewSession]) -> QueryResult<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        // Binary COPY: the merge has already established that every row is new.
        diesel::copy_from(agent_sessions::table)
            .from_insertable(rows)
            .execute(self)
    }

    fn update_sessions(&mut self, rows: &[SessionChange]) -> QueryResult<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let codes: Vec<Option<i64>> = rows.iter().map(|r| r.external_activity_code_id).collect();
        let ends: Vec<Option<NaiveDateTime>> = rows.iter().map(|r| r.ended_at).collect();
        diesel::sql_query(
            "UPDATE agent_sessions AS s SET external_activity_code_id = v.code, ended_at = v.ended_at \
             FROM unnest($1, $2, $3) AS v(id, code, ended_at) WHERE s.id = v.id",
        )
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Array<Nullable<BigInt>>, _>(codes)
        .bind::<Array<Nullable<Timestamp>>, _>(ends)
        .execute(self)
    }

    fn update_agents_seen(&mut self, rows: &[SeenChange]) -> QueryResult<usize> {
        pg_update_seen(self, "external_agent_ids", rows)
    }

    fn update_codes_seen(&mut self, rows: &[SeenChange]) -> QueryResult<usize> {
        pg_update_seen(self, "external_activity_codes", rows)
    }
}

/// One statement for all changed first/last-seen times. `table` is one of two constants above, never input.
fn pg_update_seen(
    conn: &mut PgConnection,
    table: &'static str,
    rows: &[SeenChange],
) -> QueryResult<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let first: Vec<NaiveDateTime> = rows.iter().map(|r| r.first_seen_at).collect();
    let last: Vec<NaiveDateTime> = rows.iter().map(|r| r.last_seen_at).collect();
    diesel::sql_query(format!(
        "UPDATE {table} AS t SET first_seen_at = v.first_seen_at, last_seen_at = v.last_seen_at \
         FROM unnest($1, $2, $3) AS v(id, first_seen_at, last_seen_at) WHERE t.id = v.id"
    ))
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Timestamp>, _>(first)
    .bind::<Array<Timestamp>, _>(last)
    .execute(conn)
}

impl WfmOps for SqliteConnection {
    shared_ops!();

    fn load_agents_named(
        &mut self,
        system_id: i64,
        names: &[String],
    ) -> QueryResult<Vec<AgentRow>> {
        use external_agent_ids::dsl as a;
        let mut out = Vec::with_capacity(names.len());
        for chunk in names.chunks(CHUNK) {
            out.extend(
                a::external_agent_ids
                    .filter(a::external_system_id.eq(system_id))
                    .filter(a::external_id.eq_any(chunk))
                    .select((a::id, a::external_id, a::first_seen_at, a::last_seen_at))
                    .load::<AgentRow>(self)?,
            );
        }
        Ok(out)
    }

    fn load_codes_named(&mut self, system_id: i64, names: &[String]) -> QueryResult<Vec<CodeRow>> {
        use external_activity_codes::dsl as c;
        let mut out = Vec::with_capacity(names.len());
        for chunk in names.chunks(CHUNK) {
            out.extend(
                c::external_activity_codes
                    .filter(c::external_system_id.eq(system_id))
                    .filter(c::code.eq_any(chunk))
                    .select((c::id, c::code, c::first_seen_at, c::last_seen_at))
                    .load::<CodeRow>(self)?,
            );
        }
        Ok(out)
    }

    // One prepared lookup per key on the unique index: in-process, a statement per key costs no round trip,
    // and the cost follows the keys asked for, not the size of the table.
    fn load_sessions_at(
        &mut self,
        system_id: i64,
        keys: &[(i64, NaiveDateTime)],
    ) -> QueryResult<Vec<StoredSession>> {
        use agent_sessions::dsl as s;
        let mut out = Vec::new();
        for (agent, start) in keys {
            out.extend(
                s::agent_sessions
                    .filter(s::external_system_id.eq(system_id))
                    .filter(s::started_at.eq(*start))
                    .filter(s::external_agent_id.eq(*agent))
                    .select((
                        s::id,
                        s::external_agent_id,
                        s::external_activity_code_id,
                        s::started_at,
                        s::ended_at,
                    ))
                    .first::<StoredSession>(self)
                    .optional()?,
            );
        }
        Ok(out)
    }

    // One statement stepped through (in-process: no result to hold); its read snapshot (WAL) does not see
    // the sync's own uncommitted writes on the other connection.
    fn stream_window(
        &mut self,
        w: &StoredWindow,
        page_rows: usize,
        send: &mut dyn FnMut(Vec<StoredSession>) -> bool,
    ) -> QueryResult<()> {
        let rows = window_sessions!(w)
            .load_iter::<StoredSession, diesel::connection::DefaultLoadingMode>(self)?;
        let mut page = Vec::with_capacity(page_rows);
        for row in rows {
            page.push(row?);
            if page.len() == page_rows
                && !send(std::mem::replace(&mut page, Vec::with_capacity(page_rows)))
            {
                return Ok(());
            }
        }
        if !page.is_empty() {
            send(page);
        }
        Ok(())
    }

    fn insert_sessions(&mut self, rows: &[NewSession]) -> QueryResult<usize> {
        let mut n = 0;
        for chunk in rows.chunks(CHUNK) {
            n += diesel::insert_into(agent_sessions::table)
                .values(chunk)
                .execute(self)?;
        }
        Ok(n)
    }

    fn update_sessions(&mut self, rows: &[SessionChange]) -> QueryResult<usize> {
        use agent_sessions::dsl as s;
        let mut n = 0;
        for r in rows {
            n += diesel::update(s::agent_sessions.find(r.id))
                .set((
                    s::external_activity_code_id.eq(r.external_activity_code_id),
                    s::ended_at.eq(r.ended_at),
                ))
                .execute(self)?;
        }
        Ok(n)
    }

    fn update_agents_seen(&mut self, rows: &[SeenChange]) -> QueryResult<usize> {
        use external_agent_ids::dsl as a;
        let mut n = 0;
        for r in rows {
            n += diesel::update(a::external_agent_ids.find(r.id))
                .set((
                    a::first_seen_at.eq(r.first_seen_at),
                    a::last_seen_at.eq(r.last_seen_at),
                ))
                .execute(self)?;
        }
        Ok(n)
    }

    fn update_codes_seen(&mut self, rows: &[SeenChange]) -> QueryResult<usize> {
        use external_activity_codes::dsl as c;
        let mut n = 0;
        for r in rows {
            n += diesel::update(c::external_activity_codes.find(r.id))
                .set((
                    c::first_seen_at.eq(r.first_seen_at),
                    c::last_seen_at.eq(r.last_seen_at),
                ))
                .execute(self)?;
        }
        Ok(n)
    }
}

/// The names an `INSERT ... ON CONFLICT DO NOTHING RETURNING` did not return: those that already existed.
fn not_returned<'a>(
    names: impl Iterator<Item = &'a str>,
    returned: &[(i64, String)],
) -> Vec<String> {
    let got: std::collections::HashSet<&str> = returned.iter().map(|(_, n)| n.as_str()).collect();
    names
        .filter(|n| !got.contains(n))
        .map(str::to_owned)
        .collect()
}

/// An agent ID or a code with its first/last-seen times, as a PostgreSQL query by name returns it.
#[derive(QueryableByName)]
struct NamedRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Timestamp>)]
    first_seen_at: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    last_seen_at: Option<NaiveDateTime>,
}

impl NamedRow {
    fn into_row(self) -> AgentRow {
        (self.id, self.name, self.first_seen_at, self.last_seen_at)
    }
}

/// The id of the system activity new codes are assigned to.
pub const PRESENT_ACTIVITY_ID: i64 = 1;
