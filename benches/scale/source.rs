//! The source database: a generated day of agent states in PostgreSQL, as an ACD keeps them; the changes
//! that section (d) syncs; the day's rows set aside for the incremental section.

use std::time::Instant;

use anyhow::bail;
use chrono::{Duration, NaiveDate};

use crate::bench::Bench;
use crate::db::{psql, psql_i64, recreate_database, ts, INC_DB, SRC_DB};

/// Creates `db` with the source table and fills it with `days` days of agent states ending on `day`, plus
/// the night shifts of the evening before the first day (they cross into it).
///
/// Every agent works one shift a day: 92 % start between 06:00 and 14:00, 8 % are night agents who start
/// between 20:00 and 23:00 and work across midnight. A shift is tiled by consecutive states (the end of one
/// is the start of the next) of 2 minutes to an hour, about sessions/agents of them; the day has exactly
/// `sessions` states. Codes C01..Cnn follow a Zipf-like law (C01 the most frequent), 3 % of the states have
/// no code, and the last state of 1 % of the agents on `day` is still open (ended_at NULL). Rows are
/// inserted in started_at order, as an ACD appends them; change_id comes from a sequence, on insert by the
/// column default and on update by a trigger. All values come from a seeded random(): the same arguments
/// give the same rows.
pub fn generate_source(
    db: &str,
    sessions: u64,
    agents: u64,
    codes: u64,
    day: NaiveDate,
    days: u64,
) -> anyhow::Result<()> {
    if agents == 0 || sessions < agents {
        bail!(
            "need at least one agent and at least one session per agent (--sessions >= --agents)"
        );
    }
    recreate_database(db, None)?;
    psql(
        db,
        "CREATE SEQUENCE acd_change_seq;
         CREATE TABLE acd_agent_states (
             id bigserial PRIMARY KEY,
             agent_id text NOT NULL,
             activity_code text,
             started_at timestamp NOT NULL,
             ended_at timestamp,
             change_id bigint NOT NULL DEFAULT nextval('acd_change_seq'));
         CREATE FUNCTION acd_touch_change_id() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN NEW.change_id := nextval('acd_change_seq'); RETURN NEW; END $$;
         CREATE TRIGGER acd_agent_states_change_id BEFORE UPDATE ON acd_agent_states
             FOR EACH ROW EXECUTE FUNCTION acd_touch_change_id();",
    )?;
    let per_agent = sessions as f64 / agents as f64;
    // Mean state length so that a shift lasts about 8 hours: 2 minutes plus an exponential part, capped
    // at an hour.
    let extra_secs = ((8.0 * 3600.0 / per_agent) - 120.0).max(30.0);
    let first_shift_day = day - Duration::days(days as i64);
    let sql = format!(
        "SET work_mem = '256MB';
         SET jit = off;
         SELECT setseed(0.42);
         CREATE TEMP TABLE bench_agents AS
         SELECT a,
                'A' || lpad(a::text, 6, '0') AS agent_id,
                random() < 0.08 AS night,
                random() < 0.01 AS left_open,
                (floor({sessions}::numeric * a / {agents}) - floor({sessions}::numeric * (a - 1) / {agents}))::int AS k
         FROM generate_series(1, {agents}) AS a;
         INSERT INTO acd_agent_states (agent_id, activity_code, started_at, ended_at)
         SELECT agent_id, code, started_at, CASE WHEN open_end THEN NULL ELSE ended_at END
         FROM (
           SELECT st.a, st.agent_id, st.code, st.open_end,
                  st.shift_start + make_interval(secs => sum(st.dur) OVER w - st.dur) AS started_at,
                  st.shift_start + make_interval(secs => sum(st.dur) OVER w) AS ended_at
           FROM (
             SELECT sh.a, sh.agent_id, sh.shift_start, sh.day, i,
                    least(3600, 120 + floor(-ln(1 - random()) * {extra_secs}))::int AS dur,
                    CASE WHEN random() < 0.03 THEN NULL
                         ELSE 'C' || lpad(least({codes}, floor(exp(random() * ln({codes} + 1))))::int::text, 2, '0')
                    END AS code,
                    (i = sh.k AND sh.day = DATE '{day}' AND sh.left_open) AS open_end
             FROM (
               SELECT ag.a, ag.agent_id, ag.k, ag.left_open, d::date AS day,
                      date_trunc('second', d + CASE WHEN ag.night
                                                    THEN interval '20 hours' + random() * interval '3 hours'
                                                    ELSE interval '6 hours' + random() * interval '8 hours' END) AS shift_start
               FROM bench_agents ag
               CROSS JOIN generate_series(DATE '{first_shift_day}', DATE '{day}', interval '1 day') AS d
               WHERE d::date > DATE '{first_shift_day}' OR ag.night
             ) sh
             CROSS JOIN LATERAL generate_series(1, sh.k) AS i
           ) st
           WINDOW w AS (PARTITION BY st.a, st.day ORDER BY st.i)
         ) x
         ORDER BY started_at, a;
         CREATE INDEX ON acd_agent_states (started_at);
         CREATE INDEX ON acd_agent_states (change_id);"
    );
    psql(db, &sql)?;
    // Hint bits and statistics now, so that no measured read pays for them.
    psql(db, "VACUUM (FREEZE, ANALYZE) acd_agent_states;")?;
    Ok(())
}

pub struct Changes {
    pub updated: i64,
    pub inserted: i64,
    pub deleted: i64,
}

impl Bench {
    /// Applies 1 % updates, 0.5 % inserts and 0.1 % deletes (of the day's sessions) to rows of the synced
    /// day, and returns the numbers actually changed.
    pub fn apply_changes(
        &mut self,
        sessions: u64,
        agents: u64,
        day: NaiveDate,
    ) -> anyhow::Result<Changes> {
        let n_upd = (sessions as f64 * 0.01).round() as i64;
        let n_ins = (sessions as f64 * 0.005).round() as i64;
        let n_del = (sessions as f64 * 0.001).round() as i64;
        let d0 = day.and_hms_opt(0, 0, 0).expect("midnight");
        let (d0, d1) = (ts(d0), ts(d0 + Duration::days(1)));
        let before = psql_i64(SRC_DB, "SELECT max(change_id) FROM acd_agent_states;")?;
        let t = Instant::now();
        // Updates: half get an end 37 seconds later (an open one gets closed), half another code.
        let updated = psql_i64(
            SRC_DB,
            &format!(
                "SET jit = off; SELECT setseed(0.17);
                 WITH pick AS (
                   SELECT id FROM acd_agent_states
                   WHERE started_at >= '{d0}' AND started_at < '{d1}'
                   ORDER BY random() LIMIT {n_upd}
                 ), u AS (
                   UPDATE acd_agent_states s
                   SET ended_at = CASE WHEN s.id % 2 = 0
                                       THEN coalesce(s.ended_at, s.started_at) + interval '37 seconds'
                                       ELSE s.ended_at END,
                       activity_code = CASE WHEN s.id % 2 = 1
                                            THEN CASE WHEN s.activity_code = 'C01' THEN 'C02' ELSE 'C01' END
                                            ELSE s.activity_code END
                   FROM pick WHERE s.id = pick.id
                   RETURNING 1)
                 SELECT count(*) FROM u;"
            ),
        )?;
        // Inserts: new states of existing agents at start times no row of the agent has.
        let inserted = psql_i64(
            SRC_DB,
            &format!(
                "SET jit = off; SELECT setseed(0.23);
                 WITH cand AS (
                   SELECT DISTINCT ON (agent_id, started_at) agent_id, started_at FROM (
                     SELECT 'A' || lpad((1 + floor(random() * {agents}))::int::text, 6, '0') AS agent_id,
                            TIMESTAMP '{d0}' + make_interval(secs => floor(random() * 86400)) AS started_at
                     FROM generate_series(1, {n_ins} * 2 + 100)) c
                 ), ok AS (
                   SELECT c.agent_id, c.started_at FROM cand c
                   WHERE c.started_at < '{d1}'
                     AND NOT EXISTS (SELECT 1 FROM acd_agent_states s
                                     WHERE s.agent_id = c.agent_id AND s.started_at = c.started_at)
                   LIMIT {n_ins}
                 ), i AS (
                   INSERT INTO acd_agent_states (agent_id, activity_code, started_at, ended_at)
                   SELECT agent_id, 'C03', started_at, started_at + interval '4 minutes' FROM ok
                   ORDER BY started_at
                   RETURNING 1)
                 SELECT count(*) FROM i;"
            ),
        )?;
        // Deletes: rows of the day that were neither updated nor inserted above.
        let deleted = psql_i64(
            SRC_DB,
            &format!(
                "SET jit = off; SELECT setseed(0.31);
                 WITH pick AS (
                   SELECT id FROM acd_agent_states
                   WHERE started_at >= '{d0}' AND started_at < '{d1}' AND change_id <= {before}
                   ORDER BY random() LIMIT {n_del}
                 ), d AS (DELETE FROM acd_agent_states s USING pick WHERE s.id = pick.id RETURNING 1)
                 SELECT count(*) FROM d;"
            ),
        )?;
        psql(SRC_DB, "VACUUM (ANALYZE) acd_agent_states;")?;
        self.say(&format!(
            "source changed: {updated} updated, {inserted} inserted, {deleted} deleted ({:.1}s)",
            t.elapsed().as_secs_f64()
        ));
        if inserted != n_ins {
            self.notes.push(format!(
                "Only {inserted} of {n_ins} planned inserts found a free (agent, start)."
            ));
        }
        Ok(Changes {
            updated,
            inserted,
            deleted,
        })
    }

    /// Moves the synced day's rows of the incremental source (a copy of the generated source) into
    /// `bench_day`, numbered in start order, and drops the rows of later days (they do not exist yet at the
    /// end of the day). Returns the number of rows of the day.
    pub fn prepare_incremental(&self) -> anyhow::Result<i64> {
        let day = self.args.date.and_hms_opt(0, 0, 0).expect("midnight");
        let (d0, d1) = (ts(day), ts(day + Duration::days(1)));
        psql_i64(
            INC_DB,
            &format!(
                "DELETE FROM acd_agent_states WHERE started_at >= '{d1}';
                 CREATE TABLE bench_day AS
                   SELECT row_number() OVER (ORDER BY id) AS ord, agent_id, activity_code, started_at, ended_at
                   FROM acd_agent_states WHERE started_at >= '{d0}';
                 CREATE UNIQUE INDEX ON bench_day (ord);
                 SELECT count(*) FROM bench_day;"
            ),
        )
    }
}
