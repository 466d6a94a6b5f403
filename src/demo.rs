//! `acdsync demo`: the whole job on the embedded default, with nothing to set up.
//!
//! Writes a sample telephony reporting database (SQLite: a day of agent states for a contact centre in
//! Paris, with night shifts across midnight, an agent still logged in, and three bad rows), a config file
//! pointing at it through the SQLite ODBC driver, then migrates an SQLite WFM database and syncs the day.
//! The sample is deterministic: running the demo again syncs the same rows and changes nothing.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{Duration, NaiveDate, NaiveDateTime};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel::sqlite::SqliteConnection;

use crate::config::Config;
use crate::store::{Create, Store};
use crate::sync::{self, Days, RunReport, Target};

/// The generic sessions query, as shipped in sql/sources/.
pub const GENERIC_SESSIONS_SQL: &str = include_str!("../sql/sources/generic_sessions.sql");

pub const DEMO_TIME_ZONE: &str = "Europe/Paris";
pub const DEMO_SYSTEM: &str = "demo-acd";

/// Activity codes of the sample, with their typical length in minutes.
const CODES: [(&str, i64); 6] = [
    ("BREAK", 15),
    ("LUNCH", 40),
    ("TRAINING", 60),
    ("MEETING", 30),
    ("BACKOFFICE", 45),
    ("COACHING", 25),
];

pub struct DemoOptions {
    pub dir: PathBuf,
    pub agents: u32,
    pub day: NaiveDate,
    /// Overwrite the demo's files in `dir` (the WFM database is synced into, not replaced).
    pub force: bool,
}

pub struct DemoOutcome {
    pub config_path: PathBuf,
    pub telephony_db: PathBuf,
    pub wfm_db: PathBuf,
    pub source_rows: usize,
    pub report: RunReport,
}

/// A row of the sample telephony table.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleState {
    pub agent_id: Option<String>,
    pub activity_code: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
}

/// SplitMix64: a small deterministic generator, so the sample is the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

fn fmt(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// One shift of one agent: logged in from `start` for `hours`, mostly Present (no code), with breaks,
/// a lunch and the odd meeting or training in between.
fn shift(
    rng: &mut Rng,
    agent: &str,
    start: NaiveDateTime,
    minutes: i64,
    open_at_end: bool,
    out: &mut Vec<SampleState>,
) {
    let end = start + Duration::minutes(minutes);
    let mut t = start + Duration::seconds(rng.below(300));
    let mut since_break = 0;
    while t < end {
        let (code, len) = if since_break >= 100 + rng.below(60) && t + Duration::minutes(60) < end {
            since_break = 0;
            let (c, l) = if (t - start).num_minutes() > minutes / 2 - 60
                && (t - start).num_minutes() < minutes / 2 + 60
            {
                CODES[1]
            } else {
                match rng.below(10) {
                    0..=5 => CODES[0],
                    6 => CODES[2],
                    7 => CODES[3],
                    8 => CODES[4],
                    _ => CODES[5],
                }
            };
            (Some(c), l)
        } else {
            (None, 40 + rng.below(50))
        };
        let mut next = t + Duration::minutes(len) + Duration::seconds(rng.below(240) - 120);
        if code.is_none() {
            since_break += (next - t).num_minutes();
        }
        let last = next >= end;
        if last {
            next = end + Duration::seconds(rng.below(600));
        }
        out.push(SampleState {
            agent_id: Some(agent.to_owned()),
            activity_code: code.map(str::to_owned),
            started_at: fmt(t),
            ended_at: if last && open_at_end {
                None
            } else {
                Some(fmt(next))
            },
        });
        t = next;
    }
}

/// The sample day: `agents` agents on early, day, late and night shifts around `day`, plus three bad rows.
pub fn sample_states(day: NaiveDate, agents: u32) -> Vec<SampleState> {
    let mut rng = Rng(0x00AC_D5C0_2026 ^ u64::from(agents));
    let mut out = Vec::new();
    let midnight = day.and_time(chrono::NaiveTime::MIN);
    for n in 0..agents {
        let agent = format!("{}", 1001 + n);
        match n % 10 {
            // Night shift: from the evening before across midnight, and again tonight (still logged in).
            0 => {
                shift(
                    &mut rng,
                    &agent,
                    midnight - Duration::hours(2),
                    510,
                    false,
                    &mut out,
                );
                shift(
                    &mut rng,
                    &agent,
                    midnight + Duration::hours(22),
                    510,
                    true,
                    &mut out,
                );
            }
            1..=3 => shift(
                &mut rng,
                &agent,
                midnight + Duration::hours(6),
                510,
                false,
                &mut out,
            ),
            4..=7 => shift(
                &mut rng,
                &agent,
                midnight + Duration::hours(8),
                510,
                false,
                &mut out,
            ),
            _ => shift(
                &mut rng,
                &agent,
                midnight + Duration::hours(13),
                510,
                false,
                &mut out,
            ),
        }
    }
    let at = |h: i64, m: i64| fmt(midnight + Duration::hours(h) + Duration::minutes(m));
    out.push(SampleState {
        agent_id: None,
        activity_code: Some("BREAK".into()),
        started_at: at(10, 0),
        ended_at: Some(at(10, 15)),
    });
    out.push(SampleState {
        agent_id: Some("1003".into()),
        activity_code: None,
        started_at: at(12, 30),
        ended_at: Some(at(12, 10)),
    });
    out.push(SampleState {
        agent_id: Some("1004".into()),
        activity_code: Some("MEETING".into()),
        started_at: format!("{} 25:70:00", day.format("%Y-%m-%d")),
        ended_at: Some(at(16, 0)),
    });
    out
}

/// Writes the sample telephony database (replacing an older one).
pub fn write_sample_database(path: &Path, states: &[SampleState]) -> anyhow::Result<()> {
    if path.exists() {
        std::fs::remove_file(path)
            .with_context(|| format!("removing the old sample {}", path.display()))?;
    }
    let mut conn = SqliteConnection::establish(&path.to_string_lossy())
        .with_context(|| format!("creating the sample telephony database {}", path.display()))?;
    conn.batch_execute(
        "CREATE TABLE acd_agent_states (
            id INTEGER PRIMARY KEY,
            agent_id TEXT,
            activity_code TEXT,
            started_at TIMESTAMP,
            ended_at TIMESTAMP
         );
         CREATE INDEX acd_agent_states_started_idx ON acd_agent_states (started_at);",
    )?;
    conn.transaction(|c| {
        for s in states {
            diesel::sql_query("INSERT INTO acd_agent_states (agent_id, activity_code, started_at, ended_at) VALUES (?, ?, ?, ?)")
                .bind::<Nullable<Text>, _>(s.agent_id.as_deref())
                .bind::<Nullable<Text>, _>(s.activity_code.as_deref())
                .bind::<Text, _>(&s.started_at)
                .bind::<Nullable<Text>, _>(s.ended_at.as_deref())
                .execute(c)?;
        }
        diesel::QueryResult::Ok(())
    })?;
    Ok(())
}

/// The demo's config file text. Paths are absolute so the file works from any directory.
pub fn config_text(wfm_db: &Path, telephony_db: &Path, sql_file: &Path) -> String {
    format!(
        r#"# Written by `acdsync demo`. Every setting is described in the README ("Configuration").
[wfm]
database_url = "sqlite://{wfm}"

[[system]]
name = "{DEMO_SYSTEM}"
time_zone = "{DEMO_TIME_ZONE}"
sql_file = "{sql}"
# SQLite ODBC streams rows only with StepAPI=1 and no bound parameters: hence window_parameters = "literal".
connection_string = "Driver=SQLite3;Database={tel};StepAPI=1"
window_parameters = "literal"
"#,
        wfm = wfm_db.display(),
        sql = sql_file.display(),
        tel = telephony_db.display(),
    )
}

pub fn run(opts: &DemoOptions) -> anyhow::Result<DemoOutcome> {
    std::fs::create_dir_all(&opts.dir)
        .with_context(|| format!("creating {}", opts.dir.display()))?;
    let dir = opts
        .dir
        .canonicalize()
        .with_context(|| format!("resolving {}", opts.dir.display()))?;
    let telephony_db = dir.join("telephony.db");
    let wfm_db = dir.join("wfm.db");
    let sql_file = dir.join("generic_sessions.sql");
    let config_path = dir.join("acdsync.toml");
    let there: Vec<String> = [&config_path, &sql_file, &telephony_db, &wfm_db]
        .iter()
        .filter(|p| p.exists())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    if !there.is_empty() && !opts.force {
        return Err(crate::error::Failure::Usage(format!(
            "demo --dir {} already holds {}: choose another --dir, or pass --force to write the sample again (wfm.db is then synced into, not replaced)",
            dir.display(),
            there.join(", ")
        ))
        .into());
    }

    let states = sample_states(opts.day, opts.agents);
    write_sample_database(&telephony_db, &states)?;
    std::fs::write(&sql_file, GENERIC_SESSIONS_SQL)
        .with_context(|| format!("writing {}", sql_file.display()))?;
    std::fs::write(&config_path, config_text(&wfm_db, &telephony_db, &sql_file))
        .with_context(|| format!("writing {}", config_path.display()))?;

    let config = Config::load(&config_path)?;
    let mut store = Store::open(&config.database_url, Create::IfMissing)?;
    store.migrate()?;
    let system = &config.systems[0];
    let report = sync::sync(&mut store, system, Target::Days(Days::one(opts.day)))?;
    Ok(DemoOutcome {
        config_path,
        telephony_db,
        wfm_db,
        source_rows: states.len(),
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_a_realistic_day_and_the_same_every_time() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let a = sample_states(day, 50);
        assert_eq!(a, sample_states(day, 50));
        let agents: std::collections::BTreeSet<_> =
            a.iter().filter_map(|s| s.agent_id.clone()).collect();
        assert_eq!(agents.len(), 50);
        let codes: std::collections::BTreeSet<_> =
            a.iter().filter_map(|s| s.activity_code.clone()).collect();
        assert!(codes.len() >= 4, "{codes:?}");
        assert!(
            a.iter().any(|s| s.ended_at.is_none()),
            "someone is still logged in"
        );
        assert!(
            a.iter().any(|s| s.started_at.as_str() < "2026-03-29"
                && s.ended_at.as_deref() > Some("2026-03-29")),
            "a night shift crosses midnight"
        );
        assert!(a.len() > 50 * 5);
    }
}
