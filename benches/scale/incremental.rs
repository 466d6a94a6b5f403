//! The incremental mode at the start and at the end of the day: the same number of new rows synced by an
//! incremental run when the day has just begun and when it is nearly over (the copy of the source made by
//! `source.rs`, fed the day's rows in start order).

use std::path::Path;

use anyhow::bail;

use crate::bench::Bench;
use crate::db::{psql, ts, INC_DB};
use crate::measure::{median, Measured};
use crate::report::{thousands, verdict, Row, TARGET_INCREMENTAL};
use crate::store::{ImportRun, Store};

/// The day's rows as the section feeds them to the source: the first `loaded` rows of `bench_day` are in
/// `acd_agent_states`; `step` more come before each incremental run, `reps` runs at each end of the day.
struct DayFeed {
    loaded: i64,
    step: i64,
    reps: i64,
}

impl DayFeed {
    /// Appends the rows of `bench_day` after the loaded ones up to `upto`, in start order.
    fn load_to(&mut self, upto: i64) -> anyhow::Result<()> {
        let loaded = self.loaded;
        psql(
            INC_DB,
            &format!(
                "INSERT INTO acd_agent_states (agent_id, activity_code, started_at, ended_at)
                 SELECT agent_id, activity_code, started_at, ended_at FROM bench_day
                 WHERE ord > {loaded} AND ord <= {upto} ORDER BY ord;
                 ANALYZE acd_agent_states;"
            ),
        )?;
        self.loaded = upto;
        Ok(())
    }
}

/// A measured `acdsync sync` and the import run it recorded.
type Synced = (Measured, Option<ImportRun>);

impl Bench {
    /// The incremental section on `store`, with the day's `total` rows waiting in `bench_day`
    /// (`prepare_incremental`).
    pub fn incremental(&mut self, store: Store, total: i64) -> anyhow::Result<()> {
        let n = self.args.sessions as i64;
        let step = ((n as f64) * 0.005).round().max(1.0) as i64;
        let start_rows = ((n as f64) * 0.01).round().max(1.0) as i64;
        let reps = self.args.runs as i64;
        let day = self.args.date.and_hms_opt(0, 0, 0).expect("midnight");
        let d0 = ts(day);
        self.fresh_store(store)?;
        let config = self.write_config(store, INC_DB, true)?;
        let m = self.migrate(store, &config)?;
        let label = format!(
            "incremental mode: end of day / start of day, N={}",
            thousands(n)
        );
        if m.code != 0 {
            return self.incremental_unavailable(store, &label, &m);
        }
        // The source holds the rows that started before the day; the day's rows wait in bench_day.
        psql(
            INC_DB,
            &format!(
                "DELETE FROM acd_agent_states WHERE started_at >= '{d0}';
                 VACUUM (ANALYZE) acd_agent_states;"
            ),
        )?;
        if start_rows + 2 * reps * step > total {
            bail!("too few sessions for the incremental section");
        }
        let mut feed = DayFeed {
            loaded: 0,
            step,
            reps,
        };
        let Some(start) = self.start_of_day(store, &config, &label, &mut feed, start_rows)? else {
            return Ok(());
        };
        let Some(end) = self.end_of_day(store, &config, &label, &mut feed, total)? else {
            return Ok(());
        };
        self.incremental_rows(store, label, step, &start, &end);
        Ok(())
    }

    /// Start of day: the first 1 % of the day's rows (`start_rows`), one full sync, then increments of
    /// 0.5 %. None when the full sync failed (its row is in the table).
    fn start_of_day(
        &mut self,
        store: Store,
        config: &Path,
        label: &str,
        feed: &mut DayFeed,
        start_rows: i64,
    ) -> anyhow::Result<Option<Vec<Synced>>> {
        feed.load_to(start_rows)?;
        let (m, run) = self.sync(store, config, "incremental-start-full")?;
        if m.code == 78 {
            self.incremental_unavailable(store, label, &m)?;
            return Ok(None);
        }
        if let Some(f) = Self::sync_failed(&m, &run) {
            let mut r = Row::new(label, store.name());
            r.verdict = format!("{f} at the first (full) sync of the start of the day");
            self.rows.push(r);
            return Ok(None);
        }
        self.increments(store, config, feed, "incremental-start")
            .map(Some)
    }

    /// End of day: a fresh store synced in full with all but the last 0.5 % increments of the day's `total`
    /// rows, then those increments. None when the full sync failed (its row is in the table).
    fn end_of_day(
        &mut self,
        store: Store,
        config: &Path,
        label: &str,
        feed: &mut DayFeed,
        total: i64,
    ) -> anyhow::Result<Option<Vec<Synced>>> {
        self.fresh_store(store)?;
        let m = self.migrate(store, config)?;
        if m.code != 0 {
            bail!("acdsync migrate failed: {}", m.stderr_tail(3));
        }
        feed.load_to(total - feed.reps * feed.step)?;
        psql(INC_DB, "VACUUM (ANALYZE) acd_agent_states;")?;
        let (m, run) = self.sync(store, config, "incremental-end-full")?;
        if let Some(f) = Self::sync_failed(&m, &run) {
            let mut r = Row::new(label, store.name());
            r.verdict = format!("{f} at the full sync of the end of the day");
            self.rows.push(r);
            return Ok(None);
        }
        self.increments(store, config, feed, "incremental-end")
            .map(Some)
    }

    /// `reps` incremental runs (`acdsync sync` without a day), each after `step` more rows.
    fn increments(
        &mut self,
        store: Store,
        config: &Path,
        feed: &mut DayFeed,
        name: &str,
    ) -> anyhow::Result<Vec<Synced>> {
        let mut runs = Vec::new();
        for _ in 0..feed.reps {
            let upto = feed.loaded + feed.step;
            feed.load_to(upto)?;
            runs.push(self.sync_with(store, config, name, false)?);
        }
        Ok(runs)
    }

    /// A row for the incremental runs at each end of the day, then the row of the end / start ratio.
    fn incremental_rows(
        &mut self,
        store: Store,
        label: String,
        step: i64,
        start: &[Synced],
        end: &[Synced],
    ) {
        let mut rows = Vec::new();
        let mut all_ok = true;
        for (name, runs) in [("start", start), ("end", end)] {
            let secs: Vec<f64> = runs.iter().map(|(m, _)| m.secs).collect();
            let cpu: Vec<f64> = runs.iter().map(|(m, _)| m.cpu_secs).collect();
            let mut r = Row::new(
                format!(
                    "incremental run at the {name} of the day, +{} new rows (0.5 %)",
                    thousands(step)
                ),
                store.name(),
            );
            r.secs = Some(median(&secs));
            r.cpu = Some(median(&cpu));
            r.rss_mb = Some(runs.iter().map(|(m, _)| m.rss_mb()).fold(0.0, f64::max));
            let mut fail = None;
            for (m, run) in runs.iter() {
                if let Some(f) = Self::sync_failed(m, run) {
                    fail.get_or_insert(f);
                } else if let Some(run) = run {
                    if run.inserted != step || run.updated != 0 || run.deleted != 0 {
                        fail.get_or_insert(format!("FAIL (wrote {})", run.describe()));
                    }
                }
            }
            if let Some((_, Some(run))) = runs.last() {
                r.rows_read = Some(run.rows_read);
                r.written = run.describe();
            }
            r.target = format!("ins {}", thousands(step));
            all_ok &= fail.is_none();
            r.verdict = fail.unwrap_or_else(|| "rows OK".into());
            // An incremental run reads the changes, not the day: say so when it read far more.
            if r.rows_read.is_some_and(|read| read > 2 * step) {
                r.verdict
                    .push_str(" (read the whole window: ran as a full sync?)");
            }
            rows.push((r, median(&secs)));
        }
        let ratio = rows[1].1 / rows[0].1;
        let mut r = Row::new(label, store.name());
        r.ratio = Some(ratio);
        r.target = format!("≤ {TARGET_INCREMENTAL}");
        r.verdict = if all_ok {
            verdict(ratio <= TARGET_INCREMENTAL)
        } else {
            "FAIL (rows)".into()
        };
        for (row, _) in rows {
            self.rows.push(row);
        }
        self.rows.push(r);
    }

    fn incremental_unavailable(
        &mut self,
        store: Store,
        label: &str,
        m: &Measured,
    ) -> anyhow::Result<()> {
        let why = m.stderr_tail(1);
        self.say(&format!(
            "{}: incremental mode not available (exit {}): {why}",
            store.name(),
            m.code
        ));
        let mut r = Row::new(label, store.name());
        r.target = format!("≤ {TARGET_INCREMENTAL}");
        r.verdict = format!("not available (acdsync exit {})", m.code);
        self.rows.push(r);
        self.notes.push(format!(
            "Incremental mode ({}): acdsync rejected the `[system.incremental]` config (exit {}): `{}`",
            store.name(),
            m.code,
            why.replace('`', "'")
        ));
        Ok(())
    }
}
