//! `WfmOps` on PostgreSQL: binary COPY for new sessions, set-based `unnest` statements for the rest, and
//! lookups by key as index probes.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};

use super::models::*;
use super::ops::{WfmOps, PRESENT_ACTIVITY_ID};
use super::schema::{
    agent_sessions, changed_days, external_activity_codes, external_agent_ids, external_systems,
    import_runs, rejected_rows,
};
use super::shared::{ABANDONED, CHUNK};
use crate::window::Bounds;

impl WfmOps for PgConnection {
    shared_ops!();

    // Joined to the unique index by name: `external_id = ANY($2)` can be planned as a filter that compares
    // every row of the table with every name (seen: 0.5 s a call on 50,000 IDs).
    fn load_names_named(
        &mut self,
        kind: NameKind,
        system_id: i64,
        names: &[String],
    ) -> QueryResult<Vec<NameRow>> {
        let sql = match kind {
            NameKind::AgentId => {
                "SELECT a.id, a.external_id AS name, a.first_seen_at, a.last_seen_at \
                 FROM unnest($2) AS n(name) JOIN external_agent_ids a \
                 ON a.external_system_id = $1 AND a.external_id = n.name"
            }
            NameKind::ActivityCode => {
                "SELECT c.id, c.code AS name, c.first_seen_at, c.last_seen_at \
                 FROM unnest($2) AS n(name) JOIN external_activity_codes c \
                 ON c.external_system_id = $1 AND c.code = n.name"
            }
        };
        diesel::sql_query(sql)
            .bind::<BigInt, _>(system_id)
            .bind::<Array<Text>, _>(names)
            .load(self)
    }

    // One statement per 10,000 keys, each key looked up in the unique index (LATERAL ... LIMIT 1: a plain
    // join was planned as a hash join over the whole table, 1 s a call at 1.5 million sessions): the cost
    // follows the keys asked for, not the size of the table.
    fn load_sessions_at(
        &mut self,
        system_id: i64,
        keys: &[SessionKey],
    ) -> QueryResult<Vec<StoredSession>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(10_000) {
            let agents: Vec<i64> = chunk.iter().map(|k| k.agent).collect();
            let starts: Vec<NaiveDateTime> = chunk.iter().map(SessionKey::started_at).collect();
            out.extend(
                diesel::sql_query(
                    "SELECT s.id, s.external_agent_id, s.external_activity_code_id, s.started_at, \
                     s.ended_at FROM unnest($2, $3) AS k(agent, started_at) \
                     CROSS JOIN LATERAL (SELECT * FROM agent_sessions a \
                     WHERE a.external_system_id = $1 AND a.started_at = k.started_at \
                     AND a.external_agent_id = k.agent LIMIT 1) s",
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
        system_id: i64,
        window: &Bounds,
        page_rows: usize,
        send: &mut dyn FnMut(Vec<StoredSession>) -> bool,
    ) -> QueryResult<()> {
        use agent_sessions::dsl as s;
        self.batch_execute("SET enable_sort = off; SET enable_bitmapscan = off")?;
        let mut after: Option<(NaiveDateTime, i64)> = None;
        loop {
            let mut q = window_sessions!(system_id, window)
                .limit(page_rows as i64)
                .into_boxed();
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

    // One statement for all changed first/last-seen times.
    fn update_seen(&mut self, kind: NameKind, rows: &[SeenChange]) -> QueryResult<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        let sql = match kind {
            NameKind::AgentId => {
                "UPDATE external_agent_ids AS t \
                 SET first_seen_at = v.first_seen_at, last_seen_at = v.last_seen_at \
                 FROM unnest($1, $2, $3) AS v(id, first_seen_at, last_seen_at) WHERE t.id = v.id"
            }
            NameKind::ActivityCode => {
                "UPDATE external_activity_codes AS t \
                 SET first_seen_at = v.first_seen_at, last_seen_at = v.last_seen_at \
                 FROM unnest($1, $2, $3) AS v(id, first_seen_at, last_seen_at) WHERE t.id = v.id"
            }
        };
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let first: Vec<NaiveDateTime> = rows.iter().map(|r| r.first_seen_at).collect();
        let last: Vec<NaiveDateTime> = rows.iter().map(|r| r.last_seen_at).collect();
        diesel::sql_query(sql)
            .bind::<Array<BigInt>, _>(ids)
            .bind::<Array<Timestamp>, _>(first)
            .bind::<Array<Timestamp>, _>(last)
            .execute(self)
    }
}
