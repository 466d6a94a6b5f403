//! acdsync as a measured child process: the config file of a step, `acdsync migrate`, `acdsync sync`
//! with the run's counts read back from `import_runs`, and what counts as a failed run.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bench::Bench;
use crate::db::odbc_connection_string;
use crate::measure::Measured;
use crate::store::{ImportRun, Store};

/// The time zone of the generated local times: the system's `time_zone` in the configs written here.
pub const TIME_ZONE: &str = "Europe/Paris";

impl Bench {
    /// Writes a config file for `store` and returns its path.
    pub fn write_config(
        &self,
        store: Store,
        src_db: &str,
        incremental: bool,
    ) -> anyhow::Result<PathBuf> {
        let q = |p: PathBuf| format!("{:?}", p.display().to_string());
        let mut cfg = format!(
            "# Written by benches/scale/sync.rs\n[wfm]\ndatabase_url = {:?}\n\n[[system]]\nname = \"bench\"\ntime_zone = \"{TIME_ZONE}\"\nsql_file = {}\nconnection_string = {:?}\nwindow_parameters = \"bound\"\n",
            self.database_url(store),
            q(self.sql_file(if incremental {
                "bench_sessions_incremental.sql"
            } else {
                "bench_sessions.sql"
            })),
            odbc_connection_string(src_db),
        );
        if incremental {
            write!(
                cfg,
                "\n[system.incremental]\nsql_file = {}\nwatermark = \"integer\"\nfull_sync_every = \"1h\"\n",
                q(self.sql_file("bench_changes.sql"))
            )?;
        }
        let path = self.work.join(format!(
            "bench-{}{}.toml",
            store.short(),
            if incremental { "-incremental" } else { "" }
        ));
        fs::write(&path, cfg)?;
        Ok(path)
    }

    pub fn acdsync_cmd(&self, config: &Path) -> Command {
        let mut c = Command::new(&self.acdsync);
        c.arg("--config").arg(config);
        // The bench's config decides: never a WFM URL or config from the caller's environment.
        for v in [
            "ACDSYNC_DATABASE_URL",
            "ACDSYNC_CONFIG",
            "ACDSYNC_LOG_FORMAT",
            "RUST_LOG",
        ] {
            c.env_remove(v);
        }
        c
    }

    pub fn migrate(&mut self, store: Store, config: &Path) -> anyhow::Result<Measured> {
        let label = self.label(&format!("{}-migrate", store.short()));
        let mut c = self.acdsync_cmd(config);
        c.arg("migrate");
        self.measure(&mut c, &label)
    }

    /// `acdsync sync --date D`, measured; the run's counts from import_runs.
    pub fn sync(
        &mut self,
        store: Store,
        config: &Path,
        name: &str,
    ) -> anyhow::Result<(Measured, Option<ImportRun>)> {
        self.sync_with(store, config, name, true)
    }

    /// `acdsync sync` (with `--date D` when `dated`): an incremental system with a watermark and a recent
    /// full sync reads only its changes when no day is named.
    pub fn sync_with(
        &mut self,
        store: Store,
        config: &Path,
        name: &str,
        dated: bool,
    ) -> anyhow::Result<(Measured, Option<ImportRun>)> {
        let label = self.label(&format!("{}-{name}", store.short()));
        let mut c = self.acdsync_cmd(config);
        c.arg("sync");
        if dated {
            c.args(["--date", &self.args.date.to_string()]);
        }
        let m = self.measure(&mut c, &label)?;
        let run = self.last_run(store).ok();
        self.say(&format!(
            "{} {name}: exit {}, {:.3}s, {:.1} MB, {}",
            store.name(),
            m.code,
            m.secs,
            m.rss_mb(),
            run.as_ref()
                .map(|r| format!(
                    "{} read, {} written, {} unchanged",
                    r.rows_read,
                    r.describe(),
                    r.unchanged
                ))
                .unwrap_or_else(|| "no import run".into())
        ));
        Ok((m, run))
    }

    pub fn sync_failed(m: &Measured, run: &Option<ImportRun>) -> Option<String> {
        if m.code != 0 {
            return Some(format!("FAIL (exit {}: {})", m.code, m.stderr_tail(1)));
        }
        match run {
            Some(r) if r.status == "succeeded" => None,
            Some(r) => Some(format!("FAIL (import run {})", r.status)),
            None => Some("FAIL (no import run)".into()),
        }
    }
}
