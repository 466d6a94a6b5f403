//! What to sync, and when: the days a target covers, and the rounds of `sync --watch` (today every
//! interval; after local midnight, one last full sync of the day before, until a round that ran it
//! succeeds). Library code: the CLI only starts it and reports.

use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::config::ExternalSystemConfig;
use crate::error::exit;
use crate::window::Days;

/// What to sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A full sync of these local days.
    Days(Days),
    /// Today: incremental (the changes since the watermark, whatever day they belong to) when the system is
    /// configured for it, has a watermark and had a successful full sync within `full_sync_every`;
    /// otherwise a full sync of today.
    Today,
}

impl Target {
    /// Today for a system in zone `tz` at `now`: in full (`--full`) as a day, else `Today`.
    pub fn today(full: bool, tz: Tz, now: DateTime<Utc>) -> Target {
        if full {
            Target::Days(Days::of(tz, now))
        } else {
            Target::Today
        }
    }

    /// The local days the target covers for a system in zone `tz`, at `now`.
    pub fn days(self, tz: Tz, now: DateTime<Utc>) -> Days {
        match self {
            Target::Days(d) => d,
            Target::Today => Days::of(tz, now),
        }
    }
}

/// One sync of a round.
pub type Job<'a> = (&'a ExternalSystemConfig, Target);

/// The systems `sync --watch` keeps in step, and the last local day each was synced for.
pub struct Watch<'a> {
    systems: Vec<(&'a ExternalSystemConfig, Option<NaiveDate>)>,
    /// `--full`: today in full every round, never by changes.
    full: bool,
}

/// The jobs of one round, and the day it is for each system.
pub struct Round<'a> {
    pub jobs: Vec<Job<'a>>,
    today: Vec<NaiveDate>,
}

impl<'a> Watch<'a> {
    pub fn new(systems: &[&'a ExternalSystemConfig], full: bool) -> Watch<'a> {
        Watch {
            systems: systems.iter().map(|s| (*s, None)).collect(),
            full,
        }
    }

    /// The round to run at `now`: for each system, the day before when the day has changed since its
    /// last round, then today.
    pub fn round(&self, now: DateTime<Utc>) -> Round<'a> {
        let mut jobs = Vec::new();
        let mut today = Vec::with_capacity(self.systems.len());
        for (system, last_day) in &self.systems {
            let day = Days::of(system.time_zone, now).first;
            if let Some(before) = last_day.filter(|d| *d < day) {
                jobs.push((*system, Target::Days(Days::one(before))));
            }
            jobs.push((*system, Target::today(self.full, system.time_zone, now)));
            today.push(day);
        }
        Round { jobs, today }
    }

    /// After a round: the day before is done only when the round that synced it succeeded; otherwise
    /// the next round syncs it again.
    pub fn finished(&mut self, round: Round<'a>, succeeded: bool) {
        for ((_, last_day), day) in self.systems.iter_mut().zip(round.today) {
            if succeeded {
                *last_day = Some(day);
            } else {
                last_day.get_or_insert(day);
            }
        }
    }
}

/// Exit codes that stop a watch: nothing will change by trying again.
fn fatal(code: u8) -> bool {
    matches!(code, exit::CONFIG | exit::SCHEMA_BEHIND | exit::USAGE)
}

/// Runs a round every `interval` (measured from the start of the last one) until `stop` is set. A round
/// that fails is reported (`on_failure`) and the next one tries again; a failure with a fatal exit code
/// (bad config, schema behind) ends the watch with that error.
pub fn watch(
    mut watch: Watch<'_>,
    interval: Duration,
    mut run_round: impl FnMut(&[Job<'_>]) -> anyhow::Result<u8>,
    mut on_failure: impl FnMut(&anyhow::Error),
) -> anyhow::Result<u8> {
    let stop = || crate::stop::requested().is_some();
    while !stop() {
        let started = Instant::now();
        let round = watch.round(Utc::now());
        let succeeded = match run_round(&round.jobs) {
            Ok(code) if code == exit::OK => true,
            Ok(_) if crate::stop::requested().is_some() => false,
            Ok(code) => {
                tracing::warn!(
                    exit_code = code,
                    "a system failed in this round; the next round tries again"
                );
                false
            }
            Err(e) if fatal(crate::error::exit_code(&e)) => return Err(e),
            // SIGTERM or SIGINT stopped the round at a safe point: the loop ends below.
            Err(e) if crate::error::interrupted(&e) => false,
            Err(e) => {
                on_failure(&e);
                false
            }
        };
        watch.finished(round, succeeded);
        while !stop() && started.elapsed() < interval {
            std::thread::sleep(Duration::from_millis(100).min(interval));
        }
    }
    tracing::info!("stopping on signal");
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::query::{QueryKind, SourceQuery, WindowParameters};

    fn system(name: &str, tz: &str) -> ExternalSystemConfig {
        let sql = "SELECT a, b, c, d FROM t WHERE c >= {window_start} AND c < {window_end}";
        let query = SourceQuery::parse(std::path::Path::new("q.sql"), sql, QueryKind::Window);
        ExternalSystemConfig::new(
            name,
            tz,
            query.unwrap(),
            "Driver=x",
            WindowParameters::Bound,
        )
        .unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn targets(round: &Round<'_>) -> Vec<(String, Target)> {
        round
            .jobs
            .iter()
            .map(|(s, t)| (s.name.clone(), *t))
            .collect()
    }

    #[test]
    fn a_target_covers_its_days_or_the_local_day_of_now() {
        let d = Days::one(day("2026-01-10"));
        let now = at("2026-01-14 23:30");
        assert_eq!(Target::Days(d).days(chrono_tz::UTC, now), d);
        assert_eq!(
            Target::Today.days(chrono_tz::UTC, now).first,
            day("2026-01-14")
        );
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        assert_eq!(Target::Today.days(tokyo, now).first, day("2026-01-15"));
    }

    #[test]
    fn a_watch_round_syncs_today_and_once_past_midnight_the_day_before() {
        let (paris, tokyo) = (
            system("paris", "Europe/Paris"),
            system("tokyo", "Asia/Tokyo"),
        );
        let mut w = Watch::new(&[&paris, &tokyo], false);
        // Given a first round on the 14th (UTC 14:00): today for both.
        let first = w.round(at("2026-01-14 14:00"));
        assert_eq!(
            targets(&first),
            [
                ("paris".into(), Target::Today),
                ("tokyo".into(), Target::Today)
            ]
        );
        w.finished(first, true);
        // When it is past midnight in Tokyo only: Tokyo's 14th gets a last full sync before today.
        let second = w.round(at("2026-01-14 16:00"));
        assert_eq!(
            targets(&second),
            [
                ("paris".into(), Target::Today),
                ("tokyo".into(), Target::Days(Days::one(day("2026-01-14")))),
                ("tokyo".into(), Target::Today),
            ]
        );
        // A failed round syncs the day before again next time.
        w.finished(second, false);
        let third = w.round(at("2026-01-14 16:05"));
        assert_eq!(third.jobs.len(), 3, "the 14th again for Tokyo");
        w.finished(third, true);
        assert_eq!(w.round(at("2026-01-14 16:10")).jobs.len(), 2);
    }

    #[test]
    fn a_full_watch_syncs_today_as_days() {
        let paris = system("paris", "Europe/Paris");
        let w = Watch::new(&[&paris], true);
        let round = w.round(at("2026-01-14 23:30"));
        assert_eq!(
            targets(&round),
            [("paris".into(), Target::Days(Days::one(day("2026-01-15"))))]
        );
    }
}
