//! `--memory`: the peak RSS of the first sync and of the unchanged re-run at each of `--memory-sizes`, and
//! its growth from the smallest size to the largest (it should not grow with the day).

use anyhow::bail;

use crate::bench::Bench;
use crate::db::SRC_DB;
use crate::report::{thousands, verdict, Row, TARGET_MEMORY_GROWTH};
use crate::source::generate_source;

impl Bench {
    pub fn memory(&mut self) -> anyhow::Result<()> {
        let sizes = self.args.memory_sizes.clone();
        let stores = self.stores();
        // (store, step) -> [(sessions, rss MB)]
        let mut seen: Vec<(String, String, u64, f64)> = Vec::new();
        for &size in &sizes {
            let agents = self.args.memory_agents.unwrap_or((size / 30).max(1));
            self.say(&format!(
                "memory: generating {} sessions over {} agents",
                thousands(size as i64),
                thousands(agents as i64)
            ));
            generate_source(SRC_DB, size, agents, self.args.codes, self.args.date, 1)?;
            let floors = self.floors(SRC_DB, size, false)?;
            seen.push((
                "source".into(),
                "raw ODBC fetch".into(),
                size,
                self.rows.last().and_then(|r| r.rss_mb).unwrap_or(f64::NAN),
            ));
            let n = thousands(size as i64);
            for &store in &stores {
                self.fresh_store(store)?;
                let config = self.write_config(store, SRC_DB, false)?;
                let m = self.migrate(store, &config)?;
                if m.code != 0 {
                    bail!("acdsync migrate failed: {}", m.stderr_tail(3));
                }
                for (step, name) in [
                    ("memory-first-sync", "first sync"),
                    ("memory-unchanged", "unchanged re-run"),
                ] {
                    let (m, run) = self.sync(store, &config, step)?;
                    let mut r = Row::new(format!("memory: {name} N={n}"), store.name());
                    r.secs = Some(m.secs);
                    r.cpu = Some(m.cpu_secs);
                    r.rss_mb = Some(m.rss_mb());
                    r.ratio = Some(m.secs / floors.fetch);
                    if let Some(run) = &run {
                        r.rows_read = Some(run.rows_read);
                        r.written = run.describe();
                    }
                    r.verdict = Self::sync_failed(&m, &run).unwrap_or_else(|| "ran".into());
                    seen.push((store.name().into(), name.into(), size, m.rss_mb()));
                    self.rows.push(r);
                }
            }
        }
        // Growth of peak RSS from the smallest to the largest size.
        let (Some(&lo), Some(&hi)) = (sizes.iter().min(), sizes.iter().max()) else {
            return Ok(());
        };
        if lo == hi {
            return Ok(());
        }
        let keys: Vec<(String, String)> = seen
            .iter()
            .map(|(s, w, _, _)| (s.clone(), w.clone()))
            .fold(Vec::new(), |mut v, k| {
                if !v.contains(&k) {
                    v.push(k);
                }
                v
            });
        for (store, what) in keys {
            let at = |size: u64| {
                seen.iter()
                    .find(|(s, w, n, _)| *s == store && *w == what && *n == size)
                    .map(|x| x.3)
            };
            if let (Some(a), Some(b)) = (at(lo), at(hi)) {
                let mut r = Row::new(
                    format!(
                        "memory growth: {what}, peak RSS N={} / N={} ({b:.1} / {a:.1} MB)",
                        thousands(hi as i64),
                        thousands(lo as i64)
                    ),
                    &store,
                );
                r.ratio = Some(b / a);
                r.target = format!("≤ {TARGET_MEMORY_GROWTH} (flat in N)");
                r.verdict = verdict(b / a <= TARGET_MEMORY_GROWTH);
                self.rows.push(r);
            }
        }
        Ok(())
    }
}
