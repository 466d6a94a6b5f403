//! The statements of the mapping commands (`crate::admin`): activities, employees, the code → activity
//! mapping and the dated ownership of agent IDs (`agent_id_owners`, migration 2026-11-30-000003). One
//! object-safe trait, `AdminOps`, implemented by both backends; what Diesel writes the same way for both is
//! stamped into each by `admin_shared!`, and the two reports that add up time are written per backend.

use chrono::NaiveDateTime;
use diesel::dsl::{count, count_star};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamp};
use diesel::sqlite::SqliteConnection;
use diesel::upsert::excluded;

use super::schema::{
    activities, agent_id_owners, employees, external_activity_codes, external_agent_ids,
    external_systems,
};
use super::transaction::in_transaction;
use super::{Store, Wfm};

/// An ownership period of an agent ID: [valid_from, valid_to), `None` bounds open.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct OwnerRow {
    pub id: i64,
    pub external_agent_id: i64,
    pub employee_id: i64,
    pub valid_from: Option<NaiveDateTime>,
    pub valid_to: Option<NaiveDateTime>,
}

/// An agent ID or a code waiting for a mapping, with what it covers.
#[derive(Debug, Clone, QueryableByName)]
pub struct WaitingRow {
    #[diesel(sql_type = BigInt)]
    pub system_id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Nullable<Timestamp>)]
    pub first_seen: Option<NaiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    pub last_seen: Option<NaiveDateTime>,
    #[diesel(sql_type = BigInt)]
    pub sessions: i64,
    /// Time of its closed sessions, in seconds.
    #[diesel(sql_type = Nullable<Double>)]
    pub seconds: Option<f64>,
}

pub trait AdminOps {
    /// (id, name), by id.
    fn activities(&mut self) -> QueryResult<Vec<(i64, String)>>;
    /// (activity id, number of codes mapped to it).
    fn codes_per_activity(&mut self) -> QueryResult<Vec<(i64, i64)>>;
    fn add_activity(&mut self, name: &str) -> QueryResult<i64>;
    fn rename_activity(&mut self, id: i64, name: &str) -> QueryResult<usize>;
    /// (id, name, external_ref), by id.
    fn employees(&mut self) -> QueryResult<Vec<(i64, String, Option<String>)>>;
    /// (employee id, number of agent IDs it owns or owned).
    fn ids_per_employee(&mut self) -> QueryResult<Vec<(i64, i64)>>;
    fn add_employee(&mut self, name: &str, external_ref: Option<&str>) -> QueryResult<i64>;
    /// (id, name, time_zone), by name.
    fn systems(&mut self) -> QueryResult<Vec<(i64, String, String)>>;
    fn add_system(&mut self, name: &str, time_zone: &str) -> QueryResult<i64>;
    /// The codes of a system: (id, code, activity id), by code.
    fn codes(&mut self, system_id: i64) -> QueryResult<Vec<(i64, String, i64)>>;
    /// Assigns `code` to `activity_id` in one statement: inserted if the system has not sent it yet,
    /// moved otherwise (never a moment without an owner).
    fn map_code(
        &mut self,
        system_id: i64,
        code: &str,
        activity_id: i64,
        now: NaiveDateTime,
    ) -> QueryResult<()>;
    /// The agent IDs of a system: (id, external ID), by external ID.
    fn agents(&mut self, system_id: i64) -> QueryResult<Vec<(i64, String)>>;
    fn add_agent(&mut self, system_id: i64, external_id: &str) -> QueryResult<i64>;
    /// The ownership periods of the agent IDs of a system.
    fn owners(&mut self, system_id: i64) -> QueryResult<Vec<OwnerRow>>;
    fn delete_owner(&mut self, id: i64) -> QueryResult<usize>;
    fn end_owner(&mut self, id: i64, valid_to: Option<NaiveDateTime>) -> QueryResult<usize>;
    fn insert_owner(
        &mut self,
        agent: i64,
        employee: i64,
        from: Option<NaiveDateTime>,
        to: Option<NaiveDateTime>,
    ) -> QueryResult<i64>;
    /// Agent IDs with sessions no employee owns at their start, or with no owner at all.
    fn unmapped_agents(&mut self, system_id: Option<i64>) -> QueryResult<Vec<WaitingRow>>;
    /// Codes still on `Present` since their discovery (never assigned by an admin).
    fn codes_on_present(&mut self, system_id: Option<i64>) -> QueryResult<Vec<WaitingRow>>;
}

macro_rules! admin_shared {
    () => {
        fn activities(&mut self) -> QueryResult<Vec<(i64, String)>> {
            use activities::dsl as a;
            a::activities
                .select((a::id, a::name))
                .order(a::id)
                .load(self)
        }

        fn codes_per_activity(&mut self) -> QueryResult<Vec<(i64, i64)>> {
            use external_activity_codes::dsl as c;
            c::external_activity_codes
                .group_by(c::activity_id)
                .select((c::activity_id, count_star()))
                .load(self)
        }

        fn add_activity(&mut self, name: &str) -> QueryResult<i64> {
            use activities::dsl as a;
            diesel::insert_into(a::activities)
                .values(a::name.eq(name))
                .returning(a::id)
                .get_result(self)
        }

        fn rename_activity(&mut self, id: i64, name: &str) -> QueryResult<usize> {
            use activities::dsl as a;
            diesel::update(a::activities.find(id))
                .set(a::name.eq(name))
                .execute(self)
        }

        fn employees(&mut self) -> QueryResult<Vec<(i64, String, Option<String>)>> {
            use employees::dsl as e;
            e::employees
                .select((e::id, e::name, e::external_ref))
                .order(e::id)
                .load(self)
        }

        fn ids_per_employee(&mut self) -> QueryResult<Vec<(i64, i64)>> {
            use agent_id_owners::dsl as o;
            o::agent_id_owners
                .group_by(o::employee_id)
                .select((
                    o::employee_id,
                    count(o::external_agent_id).aggregate_distinct(),
                ))
                .load(self)
        }

        fn add_employee(&mut self, name: &str, external_ref: Option<&str>) -> QueryResult<i64> {
            use employees::dsl as e;
            diesel::insert_into(e::employees)
                .values((e::name.eq(name), e::external_ref.eq(external_ref)))
                .returning(e::id)
                .get_result(self)
        }

        fn systems(&mut self) -> QueryResult<Vec<(i64, String, String)>> {
            use external_systems::dsl as s;
            s::external_systems
                .select((s::id, s::name, s::time_zone))
                .order(s::name)
                .load(self)
        }

        fn add_system(&mut self, name: &str, time_zone: &str) -> QueryResult<i64> {
            use external_systems::dsl as s;
            diesel::insert_into(s::external_systems)
                .values((s::name.eq(name), s::time_zone.eq(time_zone)))
                .returning(s::id)
                .get_result(self)
        }

        fn codes(&mut self, system_id: i64) -> QueryResult<Vec<(i64, String, i64)>> {
            use external_activity_codes::dsl as c;
            c::external_activity_codes
                .filter(c::external_system_id.eq(system_id))
                .select((c::id, c::code, c::activity_id))
                .order(c::code)
                .load(self)
        }

        fn map_code(
            &mut self,
            system_id: i64,
            code: &str,
            activity_id: i64,
            now: NaiveDateTime,
        ) -> QueryResult<()> {
            use external_activity_codes::dsl as c;
            diesel::insert_into(c::external_activity_codes)
                .values((
                    c::external_system_id.eq(system_id),
                    c::code.eq(code),
                    c::activity_id.eq(activity_id),
                    c::mapped_at.eq(Some(now)),
                ))
                .on_conflict((c::external_system_id, c::code))
                .do_update()
                .set((
                    c::activity_id.eq(excluded(c::activity_id)),
                    c::mapped_at.eq(excluded(c::mapped_at)),
                ))
                .execute(self)
                .map(drop)
        }

        fn agents(&mut self, system_id: i64) -> QueryResult<Vec<(i64, String)>> {
            use external_agent_ids::dsl as a;
            a::external_agent_ids
                .filter(a::external_system_id.eq(system_id))
                .select((a::id, a::external_id))
                .order(a::external_id)
                .load(self)
        }

        fn add_agent(&mut self, system_id: i64, external_id: &str) -> QueryResult<i64> {
            use external_agent_ids::dsl as a;
            diesel::insert_into(a::external_agent_ids)
                .values((
                    a::external_system_id.eq(system_id),
                    a::external_id.eq(external_id),
                ))
                .returning(a::id)
                .get_result(self)
        }

        fn owners(&mut self, system_id: i64) -> QueryResult<Vec<OwnerRow>> {
            use agent_id_owners::dsl as o;
            use external_agent_ids::dsl as a;
            o::agent_id_owners
                .inner_join(a::external_agent_ids)
                .filter(a::external_system_id.eq(system_id))
                .select((
                    o::id,
                    o::external_agent_id,
                    o::employee_id,
                    o::valid_from,
                    o::valid_to,
                ))
                .load(self)
        }

        fn delete_owner(&mut self, id: i64) -> QueryResult<usize> {
            use agent_id_owners::dsl as o;
            diesel::delete(o::agent_id_owners.find(id)).execute(self)
        }

        fn end_owner(&mut self, id: i64, valid_to: Option<NaiveDateTime>) -> QueryResult<usize> {
            use agent_id_owners::dsl as o;
            diesel::update(o::agent_id_owners.find(id))
                .set(o::valid_to.eq(valid_to))
                .execute(self)
        }

        fn insert_owner(
            &mut self,
            agent: i64,
            employee: i64,
            from: Option<NaiveDateTime>,
            to: Option<NaiveDateTime>,
        ) -> QueryResult<i64> {
            use agent_id_owners::dsl as o;
            diesel::insert_into(o::agent_id_owners)
                .values((
                    o::external_agent_id.eq(agent),
                    o::employee_id.eq(employee),
                    o::valid_from.eq(from),
                    o::valid_to.eq(to),
                ))
                .returning(o::id)
                .get_result(self)
        }
    };
}

/// The two reports, with the backend's placeholder (`$1`, `?`) and its way to subtract instants.
macro_rules! waiting_sql {
    ($null:literal, $param:literal, $seconds:literal) => {
        (
            concat!(
                "SELECT a.external_system_id AS system_id, a.external_id AS name, ",
                "COALESCE(MIN(s.started_at), a.first_seen_at) AS first_seen, ",
                "COALESCE(MAX(s.started_at), a.last_seen_at) AS last_seen, ",
                "COUNT(s.id) AS sessions, ",
                $seconds,
                " AS seconds ",
                "FROM external_agent_ids a ",
                "LEFT JOIN agent_sessions s ON s.external_agent_id = a.id AND NOT EXISTS (",
                "SELECT 1 FROM agent_id_owners o WHERE o.external_agent_id = a.id ",
                "AND (o.valid_from IS NULL OR o.valid_from <= s.started_at) ",
                "AND (o.valid_to IS NULL OR s.started_at < o.valid_to)) ",
                "WHERE (",
                $null,
                " IS NULL OR a.external_system_id = ",
                $param,
                ") GROUP BY a.id, a.external_system_id, a.external_id, a.first_seen_at, a.last_seen_at ",
                "HAVING COUNT(s.id) > 0 OR NOT EXISTS ",
                "(SELECT 1 FROM agent_id_owners o WHERE o.external_agent_id = a.id) ",
                "ORDER BY a.external_system_id, a.external_id"
            ),
            concat!(
                "SELECT c.external_system_id AS system_id, c.code AS name, ",
                "c.first_seen_at AS first_seen, c.last_seen_at AS last_seen, ",
                "COUNT(s.id) AS sessions, ",
                $seconds,
                " AS seconds ",
                "FROM external_activity_codes c ",
                "LEFT JOIN agent_sessions s ON s.external_activity_code_id = c.id ",
                "WHERE c.activity_id = 1 AND c.mapped_at IS NULL AND (",
                $null,
                " IS NULL OR c.external_system_id = ",
                $param,
                ") GROUP BY c.id, c.external_system_id, c.code, c.first_seen_at, c.last_seen_at ",
                "ORDER BY c.external_system_id, c.code"
            ),
        )
    };
}

const PG_WAITING: (&str, &str) = waiting_sql!(
    "$1::bigint",
    "$1",
    "SUM(EXTRACT(EPOCH FROM (s.ended_at - s.started_at)))::float8"
);
const SQLITE_WAITING: (&str, &str) = waiting_sql!(
    "?1",
    "?1",
    "SUM((julianday(s.ended_at) - julianday(s.started_at)) * 86400.0)"
);

/// The two reports on one backend, with its SQL (`PG_WAITING`, `SQLITE_WAITING`).
macro_rules! waiting_ops {
    ($sql:expr) => {
        fn unmapped_agents(&mut self, system_id: Option<i64>) -> QueryResult<Vec<WaitingRow>> {
            diesel::sql_query($sql.0)
                .bind::<Nullable<BigInt>, _>(system_id)
                .load(self)
        }

        fn codes_on_present(&mut self, system_id: Option<i64>) -> QueryResult<Vec<WaitingRow>> {
            diesel::sql_query($sql.1)
                .bind::<Nullable<BigInt>, _>(system_id)
                .load(self)
        }
    };
}

impl AdminOps for PgConnection {
    admin_shared!();
    waiting_ops!(PG_WAITING);
}

impl AdminOps for SqliteConnection {
    admin_shared!();
    waiting_ops!(SQLITE_WAITING);
}

impl Store {
    /// Runs `work` in one transaction of the mapping commands, committed if it returns `Ok` (on SQLite
    /// with the write lock taken up front, as a sync's).
    pub fn admin<R>(
        &mut self,
        work: impl FnOnce(&mut dyn AdminOps) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        match &mut self.conn {
            Wfm::Postgres(c) => in_transaction(c, ("BEGIN", &self.name), |c| work(c)),
            Wfm::Sqlite(c, _) => in_transaction(c, ("BEGIN IMMEDIATE", &self.name), |c| work(c)),
        }
    }
}
