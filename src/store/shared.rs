//! The statements Diesel writes the same way for PostgreSQL and SQLite, stamped into each backend's
//! `impl WfmOps` (a function generic over the connection cannot name ON CONFLICT and RETURNING for both;
//! see shared/STACK-FACTS.md). SQL only: no control flow of the sync lives here.

/// The stored sessions of a window (`Bounds`, UTC) of system `$system`, in key order (start, agent).
macro_rules! window_sessions {
    ($system:expr, $w:expr) => {{
        use $crate::store::schema::agent_sessions::dsl as s;
        let w: &$crate::window::Bounds = $w;
        s::agent_sessions
            .filter(s::external_system_id.eq($system))
            .filter(s::started_at.ge(w.lookback_start))
            .filter(s::started_at.lt(w.end))
            .filter(
                s::started_at
                    .ge(w.start)
                    .or(s::ended_at.is_null())
                    .or(s::ended_at.ge(w.start)),
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

/// `WfmOps` methods whose statements are the same on both backends.
macro_rules! shared_ops {
    () => {
        fn register_system(&mut self, name: &str, time_zone: &str) -> QueryResult<(i64, String)> {
            use external_systems::dsl as s;
            let found: Option<(i64, String)> = s::external_systems
                .filter(s::name.eq(name))
                .select((s::id, s::time_zone))
                .first(self)
                .optional()?;
            match found {
                Some(system) => Ok(system),
                None => diesel::insert_into(s::external_systems)
                    .values((s::name.eq(name), s::time_zone.eq(time_zone)))
                    .returning((s::id, s::time_zone))
                    .get_result(self),
            }
        }

        fn set_time_zone(&mut self, system_id: i64, time_zone: &str) -> QueryResult<()> {
            use external_systems::dsl as s;
            diesel::update(s::external_systems.find(system_id))
                .set(s::time_zone.eq(time_zone))
                .execute(self)
                .map(drop)
        }

        fn oldest_open_before(
            &mut self,
            system_id: i64,
            before: NaiveDateTime,
        ) -> QueryResult<Option<NaiveDateTime>> {
            use agent_sessions::dsl as s;
            s::agent_sessions
                .filter(s::external_system_id.eq(system_id))
                .filter(s::ended_at.is_null())
                .filter(s::started_at.lt(before))
                .select(diesel::dsl::min(s::started_at))
                .first(self)
        }

        fn mark_changed_days(&mut self, system_id: i64, days: &[NaiveDate]) -> QueryResult<usize> {
            use changed_days::dsl as c;
            let rows: Vec<_> = days
                .iter()
                .map(|d| (c::external_system_id.eq(system_id), c::day.eq(*d)))
                .collect();
            let mut n = 0;
            for chunk in rows.chunks(CHUNK) {
                n += diesel::insert_into(c::changed_days)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .execute(self)?;
            }
            Ok(n)
        }

        fn clear_changed_days(
            &mut self,
            system_id: i64,
            first: NaiveDate,
            last: NaiveDate,
        ) -> QueryResult<usize> {
            use changed_days::dsl as c;
            let days = c::changed_days
                .filter(c::external_system_id.eq(system_id))
                .filter(c::day.ge(first))
                .filter(c::day.le(last));
            diesel::delete(days).execute(self)
        }

        fn changed_days(&mut self, system_id: i64) -> QueryResult<Vec<NaiveDate>> {
            use changed_days::dsl as c;
            c::changed_days
                .filter(c::external_system_id.eq(system_id))
                .select(c::day)
                .order(c::day)
                .load(self)
        }

        fn count_sessions(&mut self, system_id: i64) -> QueryResult<i64> {
            use agent_sessions::dsl as s;
            s::agent_sessions
                .filter(s::external_system_id.eq(system_id))
                .count()
                .get_result(self)
        }

        fn abandon_running(&mut self, system_id: i64, now: NaiveDateTime) -> QueryResult<usize> {
            use import_runs::dsl as r;
            let running = r::import_runs
                .filter(r::external_system_id.eq(system_id))
                .filter(r::status.eq(RunStatus::Running));
            diesel::update(running)
                .set((
                    r::status.eq(RunStatus::Abandoned),
                    r::finished_at.eq(now),
                    r::error.eq(ABANDONED),
                ))
                .execute(self)
        }

        fn start_run(&mut self, run: &NewImportRun) -> QueryResult<i64> {
            diesel::insert_into(import_runs::table)
                .values(run)
                .returning(import_runs::id)
                .get_result(self)
        }

        fn finish_run(&mut self, run_id: i64, outcome: &RunOutcome) -> QueryResult<()> {
            match diesel::update(import_runs::table.find(run_id))
                .set(outcome)
                .execute(self)?
            {
                1 => Ok(()),
                n => Err(diesel::result::Error::QueryBuilderError(
                    format!("import_runs has {n} row(s) with id {run_id}, not one: the run's row was not written").into(),
                )),
            }
        }

        fn load_names(&mut self, kind: NameKind, system_id: i64) -> QueryResult<Vec<NameRow>> {
            use external_activity_codes::dsl as c;
            use external_agent_ids::dsl as a;
            match kind {
                NameKind::AgentId => a::external_agent_ids
                    .filter(a::external_system_id.eq(system_id))
                    .select((a::id, a::external_id, a::first_seen_at, a::last_seen_at))
                    .load(self),
                NameKind::ActivityCode => c::external_activity_codes
                    .filter(c::external_system_id.eq(system_id))
                    .select((c::id, c::code, c::first_seen_at, c::last_seen_at))
                    .load(self),
            }
        }

        fn insert_new_names(
            &mut self,
            kind: NameKind,
            system_id: i64,
            rows: &[NewName],
        ) -> QueryResult<Vec<(i64, String)>> {
            use external_activity_codes::dsl as c;
            use external_agent_ids::dsl as a;
            let seen = |r: &NewName| Some(r.seen_at);
            match kind {
                NameKind::AgentId => diesel::insert_into(a::external_agent_ids)
                    .values(
                        rows.iter()
                            .map(|r| NewAgentId {
                                external_system_id: system_id,
                                external_id: &r.name,
                                first_seen_at: seen(r),
                                last_seen_at: seen(r),
                            })
                            .collect::<Vec<_>>(),
                    )
                    .on_conflict_do_nothing()
                    .returning((a::id, a::external_id))
                    .get_results(self),
                NameKind::ActivityCode => diesel::insert_into(c::external_activity_codes)
                    .values(
                        rows.iter()
                            .map(|r| NewActivityCode {
                                external_system_id: system_id,
                                code: &r.name,
                                activity_id: PRESENT_ACTIVITY_ID,
                                first_seen_at: seen(r),
                                last_seen_at: seen(r),
                            })
                            .collect::<Vec<_>>(),
                    )
                    .on_conflict_do_nothing()
                    .returning((c::id, c::code))
                    .get_results(self),
            }
        }

        fn load_watermark(&mut self, system_id: i64) -> QueryResult<Option<(String, String)>> {
            use external_systems::dsl as s;
            let (kind, value): (Option<String>, Option<String>) = s::external_systems
                .find(system_id)
                .select((s::watermark_kind, s::watermark))
                .first(self)?;
            Ok(kind.zip(value))
        }

        fn save_watermark(
            &mut self,
            system_id: i64,
            kind: &str,
            value: &str,
            now: NaiveDateTime,
        ) -> QueryResult<()> {
            use external_systems::dsl as s;
            diesel::update(s::external_systems.find(system_id))
                .set((
                    s::watermark_kind.eq(kind),
                    s::watermark.eq(value),
                    s::watermark_updated_at.eq(now),
                ))
                .execute(self)
                .map(drop)
        }

        fn last_full_sync(&mut self, system_id: i64) -> QueryResult<Option<NaiveDateTime>> {
            use import_runs::dsl as r;
            // The latest full sync of the latest day synced in full: a sync of an earlier day (a cron
            // job closing yesterday) does not stand for today's reconciliation.
            r::import_runs
                .filter(r::external_system_id.eq(system_id))
                .filter(r::mode.eq(RunMode::Full))
                .filter(r::status.eq(RunStatus::Succeeded))
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
                n += diesel::insert_into(rejected_rows::table)
                    .values(chunk)
                    .execute(self)?;
            }
            Ok(n)
        }

        fn load_event_states(&mut self, system_id: i64) -> QueryResult<Vec<EventStateRow>> {
            use $crate::store::schema::event_agent_states::dsl as e;
            e::event_agent_states
                .filter(e::external_system_id.eq(system_id))
                .order(e::agent_id)
                .load(self)
        }

        fn save_event_states(
            &mut self,
            system_id: i64,
            rows: &[EventStateRow],
            replace_all: bool,
        ) -> QueryResult<usize> {
            use $crate::store::schema::event_agent_states::dsl as e;
            let system = e::event_agent_states.filter(e::external_system_id.eq(system_id));
            if replace_all {
                diesel::delete(system).execute(self)?;
            }
            let mut n = 0;
            for chunk in rows.chunks(CHUNK) {
                if !replace_all {
                    let agents: Vec<&str> = chunk.iter().map(|r| r.agent_id.as_str()).collect();
                    diesel::delete(system.filter(e::agent_id.eq_any(agents))).execute(self)?;
                }
                n += diesel::insert_into(e::event_agent_states)
                    .values(chunk)
                    .execute(self)?;
            }
            Ok(n)
        }

        fn run_summaries(&mut self) -> QueryResult<Vec<RunSummary>> {
            use external_systems::dsl as x;
            use import_runs::dsl as r;
            let systems: Vec<(i64, String)> = x::external_systems
                .select((x::id, x::name))
                .order(x::name)
                .load(self)?;
            let mut out = Vec::new();
            for (id, name) in systems {
                let runs = r::import_runs.filter(r::external_system_id.eq(id));
                let last: Option<(String, NaiveDateTime, Option<NaiveDateTime>, [i64; 6])> = runs
                    .order(r::id.desc())
                    .select((
                        r::status,
                        r::started_at,
                        r::finished_at,
                        (
                            r::rows_read,
                            r::sessions_inserted,
                            r::sessions_updated,
                            r::sessions_deleted,
                            r::sessions_unchanged,
                            r::rows_rejected,
                        ),
                    ))
                    .first::<(
                        String,
                        NaiveDateTime,
                        Option<NaiveDateTime>,
                        (i64, i64, i64, i64, i64, i64),
                    )>(self)
                    .optional()?
                    .map(|(status, started, finished, c)| {
                        (status, started, finished, [c.0, c.1, c.2, c.3, c.4, c.5])
                    });
                let Some((status, started_at, finished_at, counts)) = last else {
                    continue;
                };
                let last_success: Option<NaiveDateTime> = runs
                    .filter(r::status.eq(RunStatus::Succeeded))
                    .select(diesel::dsl::max(r::finished_at))
                    .first(self)?;
                out.push(RunSummary {
                    system: name,
                    status,
                    started_at,
                    finished_at,
                    counts,
                    last_success,
                });
            }
            Ok(out)
        }

        fn load_sessions_by_id(&mut self, ids: &[i64]) -> QueryResult<Vec<StoredSession>> {
            use agent_sessions::dsl as s;
            let mut out = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(CHUNK) {
                out.extend(
                    s::agent_sessions
                        .filter(s::id.eq_any(chunk))
                        .select((
                            s::id,
                            s::external_agent_id,
                            s::external_activity_code_id,
                            s::started_at,
                            s::ended_at,
                        ))
                        .load::<StoredSession>(self)?,
                );
            }
            Ok(out)
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

/// Why a run was marked `abandoned`.
pub(super) const ABANDONED: &str =
    "the process running it stopped before it finished (killed or crashed); nothing it did was kept";

/// Rows per multi-row statement: below SQLite's 32,766 bound parameters for every table written here.
pub(crate) const CHUNK: usize = 2_000;
