//! Command-line interface (clap). `main.rs` parses, sets up logging and calls `run`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::ExternalSystemConfig;
use crate::config::{Config, DatabaseUrl, DATABASE_URL_ENV};
use crate::demo::{self, DemoOptions};
use crate::error::{exit, Failure};
use crate::report;
use crate::secrets::redact;
use crate::store::{Create, Store};
use crate::sync::{self, Days, Target};

#[derive(Debug, Parser)]
#[command(
    name = "acdsync",
    version,
    about = "Imports agents' sessions and activity codes from ACD reporting databases (ODBC) into a WFM database"
)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "ACDSYNC_CONFIG",
        default_value = "acdsync.toml"
    )]
    pub config: PathBuf,

    /// Log format on standard error: text for people, json for log collectors.
    #[arg(long, global = true, env = "ACDSYNC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the embedded migrations to the WFM database (safe on every deploy; waits for a running sync).
    Migrate {
        /// The WFM database URL (postgres://… or sqlite://FILE); overrides the config file.
        #[arg(long, env = DATABASE_URL_ENV, hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Sync each configured external system (or those named) for the given local day(s).
    Sync(SyncArgs),
    /// Run the whole job on sample data: a telephony SQLite database read over ODBC, an SQLite WFM database.
    Demo {
        /// Folder for the demo's files (sample database, config, WFM database).
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        /// Number of agents in the sample.
        #[arg(long, default_value_t = 50)]
        agents: u32,
        /// The sample day (default: today in Europe/Paris).
        #[arg(long)]
        date: Option<NaiveDate>,
    },
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Sync only this system (repeatable). Default: every system in the config file.
    #[arg(long = "system", value_name = "NAME")]
    pub systems: Vec<String>,
    /// The local day to sync (YYYY-MM-DD). Default: today in each system's time zone.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub date: Option<NaiveDate>,
    /// First local day of a range (with --to).
    #[arg(long, requires = "to")]
    pub from: Option<NaiveDate>,
    /// Last local day of a range, included (with --from).
    #[arg(long, requires = "from")]
    pub to: Option<NaiveDate>,
    /// A full sync of the window even for a system in incremental mode (which a plain `sync` of today runs
    /// incrementally once it has a watermark).
    #[arg(long)]
    pub full: bool,
    /// Keep running: sync today every INTERVAL (e.g. 30s, 5m, 1h) until SIGTERM or SIGINT, for a
    /// Deployment rather than a CronJob. After local midnight the day before gets one last full sync.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval, conflicts_with_all = ["date", "from", "to"])]
    pub watch: Option<std::time::Duration>,
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let d =
        humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (write e.g. 30s, 5m, 1h)"))?;
    if d < std::time::Duration::from_secs(1) {
        return Err("the interval must be at least 1s".into());
    }
    Ok(d)
}

impl SyncArgs {
    fn days(&self) -> Result<Option<Days>, Failure> {
        match (self.date, self.from, self.to) {
            (Some(d), _, _) => Ok(Some(Days::one(d))),
            (None, Some(first), Some(last)) if first <= last => Ok(Some(Days { first, last })),
            (None, Some(first), Some(last)) => Err(Failure::Usage(format!(
                "--from {first} is after --to {last}"
            ))),
            _ => Ok(None),
        }
    }
}

/// Runs a parsed command; the result is the process exit code. Errors are printed here, once.
pub fn run(cli: Cli) -> u8 {
    let result = match cli.command {
        Command::Migrate { database_url } => migrate(&cli.config, database_url),
        Command::Sync(args) => sync_command(&cli.config, &args),
        Command::Demo { dir, agents, date } => demo_command(dir, agents, date),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = crate::error::exit_code(&e);
            let text = redact(&format!("{e:#}"));
            tracing::error!(exit_code = code, error = %text, "acdsync failed");
            eprintln!("acdsync: error: {text}");
            code
        }
    }
}

fn migrate(config_path: &Path, database_url: Option<String>) -> anyhow::Result<u8> {
    let url = match database_url {
        Some(u) => DatabaseUrl::new(u)?,
        None => Config::load_database_url(config_path)?,
    };
    let mut store = Store::open(&url, Create::IfMissing)?;
    let applied = store.migrate()?;
    if applied.is_empty() {
        println!("{}: schema up to date, no migration to apply", store.name());
    } else {
        println!(
            "{}: applied {} migration(s): {}",
            store.name(),
            applied.len(),
            applied.join(", ")
        );
    }
    tracing::info!(database = %store.name(), applied = applied.len(), "migrate finished");
    Ok(exit::OK)
}

fn sync_command(config_path: &Path, args: &SyncArgs) -> anyhow::Result<u8> {
    let days = args.days()?;
    let config = Config::load(config_path)?;
    for name in &args.systems {
        if !config.systems.iter().any(|s| &s.name == name) {
            let known: Vec<&str> = config.systems.iter().map(|s| s.name.as_str()).collect();
            return Err(Failure::Config(format!(
                "--system {name:?} is not in {} (systems there: {})",
                config_path.display(),
                known.join(", ")
            ))
            .into());
        }
    }
    let systems: Vec<_> = config
        .systems
        .iter()
        .filter(|s| args.systems.is_empty() || args.systems.contains(&s.name))
        .collect();
    if systems.is_empty() {
        return Err(Failure::Config(format!(
            "{} lists no [[system]] to sync",
            config_path.display()
        ))
        .into());
    }
    let target = |system: &ExternalSystemConfig| match days {
        Some(d) => Target::Days(d),
        None if args.full => Target::Days(Days::today(system.time_zone)),
        None => Target::Today,
    };
    match args.watch {
        None => {
            let jobs: Vec<_> = systems.iter().map(|s| (*s, target(s))).collect();
            sync_round(&config, &jobs)
        }
        Some(interval) => watch(&config, &systems, interval, args.full),
    }
}

/// One sync of each (system, target), under one run lock. Returns the first failure's exit code, or 0.
fn sync_round(config: &Config, jobs: &[(&ExternalSystemConfig, Target)]) -> anyhow::Result<u8> {
    let mut store = Store::open(&config.database_url, Create::Never)?;
    store.check_schema()?;
    store.lock(false)?;
    let mut first_failure: Option<u8> = None;
    for (system, target) in jobs {
        let days = match target {
            Target::Days(d) => *d,
            Target::Today => Days::today(system.time_zone),
        };
        let span = tracing::info_span!("sync", system = %system.name, first_day = %days.first, last_day = %days.last);
        let _enter = span.enter();
        let started = std::time::Instant::now();
        match sync::sync(&mut store, system, *target) {
            Ok(r) => {
                let c = &r.counts;
                tracing::info!(
                    run_id = r.run_id,
                    mode = r.mode.name(),
                    read = c.read,
                    inserted = c.inserted,
                    updated = c.updated,
                    deleted = c.deleted,
                    unchanged = c.unchanged,
                    rejected = c.rejected,
                    new_agent_ids = c.new_agent_ids,
                    new_activity_codes = c.new_activity_codes,
                    watermark = r.watermark.as_deref().unwrap_or(""),
                    seconds = started.elapsed().as_secs_f64(),
                    "sync finished"
                );
                print!("{}", report::render(&r));
            }
            Err(e) => {
                let code = crate::error::exit_code(&e);
                let text = redact(&format!("{e:#}"));
                tracing::error!(exit_code = code, error = %text, "sync failed; nothing was written for this system");
                eprintln!(
                    "acdsync: system {:?}: sync failed, nothing written: {text}",
                    system.name
                );
                first_failure.get_or_insert(code);
            }
        }
    }
    Ok(first_failure.unwrap_or(exit::OK))
}

/// `sync --watch`: a round every `interval` (measured from the start of the last one) until SIGTERM or
/// SIGINT, which end the process after the round under way (exit 0). The run lock is taken for each
/// round and released between rounds, so a manual `sync --date` or a `migrate` can get in. A round that
/// fails is logged and the next one tries again; a schema that is behind or a bad config stops the watch.
fn watch(
    config: &Config,
    systems: &[&ExternalSystemConfig],
    interval: std::time::Duration,
    full: bool,
) -> anyhow::Result<u8> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("handling SIGTERM/SIGINT")?;
    }
    tracing::info!(interval = %humantime::format_duration(interval), systems = systems.len(), "watching: a sync every interval until SIGTERM");
    // The last local day each system was synced for: after midnight, that day gets a last full sync.
    let mut last_day: Vec<Option<NaiveDate>> = vec![None; systems.len()];
    while !stop.load(Ordering::SeqCst) {
        let round_started = std::time::Instant::now();
        let mut jobs = Vec::new();
        let mut days = Vec::with_capacity(systems.len());
        for (i, system) in systems.iter().enumerate() {
            let today = Days::today(system.time_zone).first;
            if let Some(day) = last_day[i].filter(|d| *d < today) {
                jobs.push((*system, Target::Days(Days::one(day))));
            }
            jobs.push((
                *system,
                if full {
                    Target::Days(Days::one(today))
                } else {
                    Target::Today
                },
            ));
            days.push(today);
        }
        match sync_round(config, &jobs) {
            // The day before is done only when the round that synced it succeeded; otherwise the next
            // round syncs it again.
            Ok(exit::OK) => {
                for (i, today) in days.into_iter().enumerate() {
                    last_day[i] = Some(today);
                }
            }
            Ok(code) => {
                for (i, today) in days.into_iter().enumerate() {
                    last_day[i].get_or_insert(today);
                }
                tracing::warn!(
                    exit_code = code,
                    "a system failed in this round; the next round tries again"
                );
            }
            Err(e) => {
                for (i, today) in days.into_iter().enumerate() {
                    last_day[i].get_or_insert(today);
                }
                let code = crate::error::exit_code(&e);
                if matches!(code, exit::CONFIG | exit::SCHEMA_BEHIND | exit::USAGE) {
                    return Err(e);
                }
                let text = redact(&format!("{e:#}"));
                tracing::error!(exit_code = code, error = %text, "round failed; trying again next interval");
                eprintln!(
                    "acdsync: round failed, trying again in {}: {text}",
                    humantime::format_duration(interval)
                );
            }
        }
        while !stop.load(Ordering::SeqCst) && round_started.elapsed() < interval {
            std::thread::sleep(std::time::Duration::from_millis(100).min(interval));
        }
    }
    tracing::info!("stopping on signal");
    Ok(exit::OK)
}

fn demo_command(dir: PathBuf, agents: u32, date: Option<NaiveDate>) -> anyhow::Result<u8> {
    let tz: chrono_tz::Tz = demo::DEMO_TIME_ZONE.parse().expect("a valid zone");
    let day = date.unwrap_or_else(|| Days::today(tz).first);
    let out = demo::run(&DemoOptions { dir, agents, day }).context("the demo failed")?;
    println!("Sample telephony database: {} ({} rows in acd_agent_states, read through the SQLite ODBC driver)", out.telephony_db.display(), out.source_rows);
    println!("WFM database:              {}", out.wfm_db.display());
    println!("Config written:            {}", out.config_path.display());
    println!();
    print!("{}", report::render(&out.report));
    println!();
    println!("Next:");
    println!("  sqlite3 -header -column {} \"SELECT * FROM external_activity ORDER BY started_at LIMIT 10\"", out.wfm_db.display());
    println!(
        "  sqlite3 -header -column {} \"SELECT * FROM rejected_rows\"",
        out.wfm_db.display()
    );
    println!(
        "  ./target/release/acdsync --config {} sync --date {}    # again: nothing changes",
        out.config_path.display(),
        day
    );
    Ok(exit::OK)
}
