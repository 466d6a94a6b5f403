//! `WfmOps` on SQLite: multi-row statements and prepared statements in one transaction (in-process, a
//! statement per row costs no round trip).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::models::*;
use super::ops::{WfmOps, PRESENT_ACTIVITY_ID};
use super::schema::{
    agent_sessions, changed_days, external_activity_codes, external_agent_ids, external_systems,
    import_runs, rejected_rows,
};
use super::shared::{ABANDONED, CHUNK};
use crate::window::Bounds;

impl WfmOps for SqliteConnection {
    shared_ops!();

    fn load_names_named(
        &mut self,
        kind: NameKind,
        system_id: i64,
        names: &[String],
    ) -> QueryResult<Vec<NameRow>> {
        use external_activity_codes::dsl as c;
        use external_agent_ids::dsl as a;
        let mut out = Vec::with_capacity(names.len());
        for chunk in names.chunks(CHUNK) {
            out.extend(match kind {
                NameKind::AgentId => a::external_agent_ids
                    .filter(a::external_system_id.eq(system_id))
                    .filter(a::external_id.eq_any(chunk))
                    .select((a::id, a::external_id, a::first_seen_at, a::last_seen_at))
                    .load::<NameRow>(self)?,
                NameKind::ActivityCode => c::external_activity_codes
                    .filter(c::external_system_id.eq(system_id))
                    .filter(c::code.eq_any(chunk))
                    .select((c::id, c::code, c::first_seen_at, c::last_seen_at))
                    .load::<NameRow>(self)?,
            });
        }
        Ok(out)
    }

    // One prepared lookup per key on the unique index: the cost follows the keys asked for, not the size
    // of the table.
    fn load_sessions_at(
        &mut self,
        system_id: i64,
        keys: &[SessionKey],
    ) -> QueryResult<Vec<StoredSession>> {
        use agent_sessions::dsl as s;
        let mut out = Vec::new();
        for key in keys {
            out.extend(
                s::agent_sessions
                    .filter(s::external_system_id.eq(system_id))
                    .filter(s::started_at.eq(key.started_at()))
                    .filter(s::external_agent_id.eq(key.agent))
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
        system_id: i64,
        window: &Bounds,
        page_rows: usize,
        send: &mut dyn FnMut(Vec<StoredSession>) -> bool,
    ) -> QueryResult<()> {
        let rows = window_sessions!(system_id, window)
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

    fn update_seen(&mut self, kind: NameKind, rows: &[SeenChange]) -> QueryResult<usize> {
        use external_activity_codes::dsl as c;
        use external_agent_ids::dsl as a;
        let mut n = 0;
        for r in rows {
            let (first, last) = (r.first_seen_at, r.last_seen_at);
            n += match kind {
                NameKind::AgentId => diesel::update(a::external_agent_ids.find(r.id))
                    .set((a::first_seen_at.eq(first), a::last_seen_at.eq(last)))
                    .execute(self)?,
                NameKind::ActivityCode => diesel::update(c::external_activity_codes.find(r.id))
                    .set((c::first_seen_at.eq(first), c::last_seen_at.eq(last)))
                    .execute(self)?,
            };
        }
        Ok(n)
    }
}
