//! The measured sync steps on the generated day: (b) the first full sync into a fresh store, (c) a re-run
//! with nothing changed, (d) a re-run after the source changed (`source.rs`).

use std::path::Path;

use anyhow::bail;

use crate::bench::Bench;
use crate::db::SRC_DB;
use crate::floors::Floors;
use crate::measure::Samples;
use crate::report::{thousands, verdict, Row, TARGET_FIRST_SYNC, TARGET_UNCHANGED};
use crate::source::Changes;
use crate::store::{ImportRun, Store};

impl Bench {
    /// (b) and (c) on `store`; the store is left as the last first sync and the re-runs made it, for (d).
    pub fn first_and_unchanged(&mut self, store: Store, floors: &Floors) -> anyhow::Result<()> {
        let config = self.write_config(store, SRC_DB, false)?;
        self.first_sync(store, &config, floors)?;
        self.unchanged_rerun(store, &config, floors)
    }

    /// (b) first full sync of the day, `--runs` times, each into a fresh store (the median is reported;
    /// the last run's store is the one (c) and (d) go on with).
    fn first_sync(&mut self, store: Store, config: &Path, floors: &Floors) -> anyhow::Result<()> {
        let n = thousands(self.args.sessions as i64);
        let mut firsts = Vec::new();
        let mut samples = Samples::default();
        for _ in 0..self.args.runs.max(1) {
            self.fresh_store(store)?;
            let m = self.migrate(store, config)?;
            if m.code != 0 {
                bail!(
                    "acdsync migrate ({}) failed: {}",
                    store.name(),
                    m.stderr_tail(3)
                );
            }
            let synced = self.sync(store, config, "first-sync")?;
            samples.add(&synced.0);
            firsts.push(synced);
        }
        // The verdict is the first failed run's, else the last run's.
        let pick = firsts
            .iter()
            .position(|(m, run)| Self::sync_failed(m, run).is_some())
            .unwrap_or(firsts.len() - 1);
        let (m, run) = firsts.swap_remove(pick);
        let mut r = Row::new(format!("(b) first full sync N={n}"), store.name());
        r.secs = Some(samples.median_secs());
        r.cpu = Some(samples.median_cpu());
        r.rss_mb = Some(samples.rss_mb);
        r.ratio = Some(samples.median_secs() / (floors.fetch + floors.copy_in));
        if let Some(run) = &run {
            r.rows_read = Some(run.rows_read);
            r.written = run.describe();
        }
        if store == Store::Postgres {
            r.target = format!("≤ {TARGET_FIRST_SYNC} × (fetch + \\copy in)");
        }
        r.verdict = match Self::sync_failed(&m, &run) {
            Some(f) => f,
            None => {
                let run = run.as_ref().expect("checked");
                Self::first_sync_verdict(store, run, r.ratio, floors)
            }
        };
        self.rows.push(r);
        Ok(())
    }

    /// The verdict of a first sync that succeeded: all the window's rows inserted and, on PostgreSQL, in
    /// time.
    fn first_sync_verdict(
        store: Store,
        run: &ImportRun,
        ratio: Option<f64>,
        floors: &Floors,
    ) -> String {
        let complete = run.inserted == floors.window_rows && run.rows_read == floors.window_rows;
        let fast = store != Store::Postgres || ratio.unwrap_or(f64::NAN) <= TARGET_FIRST_SYNC;
        match (complete, store) {
            (false, _) => format!(
                "FAIL (inserted {} of {} rows)",
                run.inserted, floors.window_rows
            ),
            (true, Store::Postgres) if fast => "PASS".into(),
            (true, Store::Postgres) => "FAIL (time; rows OK)".into(),
            (true, Store::Sqlite) => "rows OK".into(),
        }
    }

    /// (c) re-run with nothing changed: it changes no state, so it is repeated.
    fn unchanged_rerun(
        &mut self,
        store: Store,
        config: &Path,
        floors: &Floors,
    ) -> anyhow::Result<()> {
        let n = thousands(self.args.sessions as i64);
        let mut samples = Samples::default();
        let mut fail = None;
        let mut last = None;
        for _ in 0..self.args.runs {
            let (m, run) = self.sync(store, config, "unchanged-rerun")?;
            samples.add(&m);
            if let Some(f) = Self::sync_failed(&m, &run) {
                fail.get_or_insert(f);
            }
            if let Some(run) = run {
                if run.written() != 0 && fail.is_none() {
                    fail = Some(format!("FAIL (wrote {} rows)", run.written()));
                }
                last = Some(run);
            }
        }
        let mut r = Row::new(format!("(c) re-run, nothing changed N={n}"), store.name());
        r.secs = Some(samples.median_secs());
        r.cpu = Some(samples.median_cpu());
        r.rss_mb = Some(samples.rss_mb);
        r.ratio = Some(samples.median_secs() / floors.fetch);
        if let Some(run) = &last {
            r.rows_read = Some(run.rows_read);
            r.written = run.describe();
        }
        if store == Store::Postgres {
            r.target = format!("≤ {TARGET_UNCHANGED} × fetch, 0 rows");
        } else {
            r.target = "0 rows".into();
        }
        r.verdict = match fail {
            Some(f) => f,
            None if store == Store::Postgres => {
                if r.ratio.unwrap_or(f64::NAN) <= TARGET_UNCHANGED {
                    "PASS".into()
                } else {
                    "FAIL (time; 0 rows OK)".into()
                }
            }
            None => "PASS".into(),
        };
        self.rows.push(r);
        Ok(())
    }

    /// (d) the re-run after `apply_changes`: it must write exactly the changes.
    pub fn changed_rerun(
        &mut self,
        store: Store,
        floors: &Floors,
        ch: &Changes,
    ) -> anyhow::Result<()> {
        let config = self.work.join(format!("bench-{}.toml", store.short()));
        let (m, run) = self.sync(store, &config, "changed-rerun")?;
        let n = thousands(self.args.sessions as i64);
        let mut r = Row::new(
            format!("(d) re-run after 1 % changed, 0.5 % new, 0.1 % removed N={n}"),
            store.name(),
        );
        r.secs = Some(m.secs);
        r.cpu = Some(m.cpu_secs);
        r.rss_mb = Some(m.rss_mb());
        r.ratio = Some(m.secs / floors.fetch);
        r.target = format!(
            "ins {} / upd {} / del {}",
            thousands(ch.inserted),
            thousands(ch.updated),
            thousands(ch.deleted)
        );
        if let Some(run) = &run {
            r.rows_read = Some(run.rows_read);
            r.written = run.describe();
        }
        r.verdict = match Self::sync_failed(&m, &run) {
            Some(f) => f,
            None => {
                let run = run.as_ref().expect("checked");
                verdict(
                    run.inserted == ch.inserted
                        && run.updated == ch.updated
                        && run.deleted == ch.deleted,
                )
            }
        };
        self.rows.push(r);
        Ok(())
    }
}
