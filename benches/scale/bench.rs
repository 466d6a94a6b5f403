//! One run of the bench: `Bench` holds what its sections share (the arguments, the paths, the counter that
//! numbers the logs, the table's rows and notes); `Bench::run` generates the source and runs the sections
//! in order.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::bail;

use crate::db::{psql_i64, recreate_database, INC_DB, SRC_DB};
use crate::measure::{load_average, measure, Measured};
use crate::report::{thousands, Row};
use crate::source::generate_source;
use crate::store::Store;
use crate::{RunArgs, StoreChoice};

/// The state of one bench run, shared by its sections (each in its own module, as `impl Bench`).
pub struct Bench {
    pub args: RunArgs,
    pub repo: PathBuf,
    pub work: PathBuf,
    pub logs: PathBuf,
    pub acdsync: PathBuf,
    pub bench_exe: PathBuf,
    pub started: Instant,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
    /// Numbers the measured processes: their logs are `logs/NNN-name.out` / `.err`.
    pub step: u32,
    /// 1-minute load average when the bench started (later ones include the bench's own work).
    pub load_start: f64,
}

impl Bench {
    pub fn new(args: RunArgs) -> anyhow::Result<Bench> {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let abs = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                repo.join(p)
            }
        };
        let work = abs(&args.work_dir);
        let logs = work.join("logs");
        let bench_exe = std::env::current_exe()?;
        let acdsync = match &args.acdsync {
            Some(p) => abs(p),
            // target/release/deps/scale-HASH -> target/release/acdsync
            None => bench_exe
                .parent()
                .and_then(Path::parent)
                .map(|d| d.join("acdsync"))
                .filter(|p| p.exists())
                .unwrap_or_else(|| repo.join("target/release/acdsync")),
        };
        if !acdsync.exists() {
            bail!(
                "acdsync binary not found at {} (cargo build --release, or --acdsync PATH)",
                acdsync.display()
            );
        }
        if work.to_string_lossy().contains('\'') {
            bail!("--work-dir must not contain a quote");
        }
        if let Some(dir) = abs(&args.out).parent() {
            fs::create_dir_all(dir)?;
        }
        if logs.exists() {
            fs::remove_dir_all(&logs)?;
        }
        fs::create_dir_all(&logs)?;
        Ok(Bench {
            args,
            repo,
            work,
            logs,
            acdsync,
            bench_exe,
            started: Instant::now(),
            rows: Vec::new(),
            notes: Vec::new(),
            step: 0,
            load_start: load_average(),
        })
    }

    pub fn say(&self, msg: &str) {
        eprintln!("[{:7.1}s] {msg}", self.started.elapsed().as_secs_f64());
    }

    pub fn measure(&mut self, cmd: &mut Command, label: &str) -> anyhow::Result<Measured> {
        measure(cmd, &self.logs, label)
    }

    pub fn label(&mut self, name: &str) -> String {
        self.step += 1;
        format!("{:03}-{name}", self.step)
    }

    pub fn stores(&self) -> Vec<Store> {
        match self.args.store {
            StoreChoice::Postgres => vec![Store::Postgres],
            StoreChoice::Sqlite => vec![Store::Sqlite],
            StoreChoice::Both => vec![Store::Postgres, Store::Sqlite],
        }
    }

    pub fn sql_file(&self, name: &str) -> PathBuf {
        self.repo.join("benches/sql").join(name)
    }

    /// The whole bench: the source, (a) the floors, (b) (c) on each store, the changes and (d), the
    /// incremental section, the memory section, then the table.
    pub fn run(&mut self) -> anyhow::Result<()> {
        let a = self.args.clone();
        self.say(&format!(
            "acdsync scale bench: {} sessions, {} agents, {} codes, day {} ({} day(s) in the source), acdsync = {}",
            thousands(a.sessions as i64),
            thousands(a.agents as i64),
            a.codes,
            a.date,
            a.days,
            self.acdsync.display()
        ));
        self.say(&format!("generating the source database {SRC_DB}"));
        let t = Instant::now();
        generate_source(SRC_DB, a.sessions, a.agents, a.codes, a.date, a.days)?;
        let total = psql_i64(SRC_DB, "SELECT count(*) FROM acd_agent_states;")?;
        self.say(&format!(
            "generated {} rows in {:.1}s",
            thousands(total),
            t.elapsed().as_secs_f64()
        ));
        self.notes.push(format!(
            "Source: {} rows in `acd_agent_states` ({} day(s) of shifts ending {} plus the night shifts of the evening before), generated in {:.1} s.",
            thousands(total),
            a.days,
            a.date,
            t.elapsed().as_secs_f64()
        ));
        if !a.no_incremental {
            recreate_database(INC_DB, Some(SRC_DB))?;
        }

        let floors = self.floors(SRC_DB, a.sessions, true)?;

        let stores = self.stores();
        for &store in &stores {
            self.first_and_unchanged(store, &floors)?;
        }
        let changes = self.apply_changes(a.sessions, a.agents, a.date)?;
        for &store in &stores {
            self.changed_rerun(store, &floors, &changes)?;
        }
        if !a.no_incremental {
            let total = self.prepare_incremental()?;
            for &store in &stores {
                self.incremental(store, total)?;
            }
        }
        if a.memory {
            self.memory()?;
        }
        self.report()
    }
}
